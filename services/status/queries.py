"""The reads the status service's policies and its read routes share: each captive's recorded
history (what the rules decide from), the timeline of decisions recorded for him, and who a
state's acknowledgement can re-decide. The pure core that decides is services/status/timeline.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from services.status.history import CaptiveHistory, Dated
from services.status.tables import (
    captive_facts,
    conflict_facts,
    decision_lock,
    decisions,
    force_memberships,
    legal_facts,
    rulebook_adoptions,
)
from services.status.timeline import Recorded
from shared.contracts.intake import ClaimedAffiliation
from shared.platform.db import rows_where_in
from shared.web.deps import NotFound
from shared.web.http import iso


def take_decision_lock(session: Session) -> None:
    """Serialise re-decisions (a row lock on PostgreSQL, the write lock on SQLite)."""
    session.execute(
        sa.update(decision_lock).where(decision_lock.c.name == "decisions").values(counter=decision_lock.c.counter + 1)
    )


def histories(session: Session, captive_ids: list[str] | None) -> list[CaptiveHistory]:
    """The recorded history of the given captives (all, for None)."""
    conflict = [
        Dated(row.effective_at, row.event_id, row.kind, row.data, row.stream_version or 0)
        for row in session.execute(sa.select(conflict_facts)).all()
    ]
    rulebooks = [
        Dated(row.effective_at, row.event_id, "RulebookAdopted", {"version": row.version})
        for row in session.execute(sa.select(rulebook_adoptions)).all()
    ]
    legal = defaultdict(list)
    for row in rows_where_in(
        session, sa.select(legal_facts).order_by(legal_facts.c.effective_at), legal_facts.c.captive_id, captive_ids
    ):
        legal[row.captive_id].append(Dated(row.effective_at, row.event_id, row.kind, row.data, row.stream_version or 0))
    memberships = defaultdict(list)
    for row in rows_where_in(
        session,
        sa.select(force_memberships).order_by(force_memberships.c.effective_at),
        force_memberships.c.captive_id,
        captive_ids,
    ):
        memberships[row.captive_id].append(
            Dated(
                row.effective_at,
                row.event_id,
                "ForceMembership",
                {
                    "force": row.force,
                    "force_state": row.force_state,
                    "integrated_in_forces_of": row.integrated_in_forces_of,
                },
                row.stream_version or 0,
            )
        )
    return [
        CaptiveHistory(
            captive_id=row.captive_id,
            captured_at=row.captured_at,
            nationality=row.nationality,
            claimed_affiliation=ClaimedAffiliation(row.claimed_affiliation),
            registration_event_id=row.registration_event_id,
            legal=legal[row.captive_id],
            memberships=memberships[row.captive_id],
            conflict=conflict,
            rulebooks=rulebooks,
        )
        for row in rows_where_in(
            session,
            sa.select(captive_facts).order_by(captive_facts.c.captive_id),
            captive_facts.c.captive_id,
            captive_ids,
        )
    ]


def recorded_timelines(session: Session, captive_ids: list[str] | None) -> dict[str, list[Recorded]]:
    found: dict[str, list[Recorded]] = defaultdict(list)
    for row in rows_where_in(
        session, sa.select(decisions).order_by(decisions.c.stream_version), decisions.c.captive_id, captive_ids
    ):
        key = (row.status, row.rulebook_version, tuple((rule["rule_id"], rule["finding"]) for rule in row.rules))
        found[row.captive_id].append(Recorded(row.effective_from, row.stream_version, key, row.status))
    return found


def captives_of_state(session: Session, state: str) -> list[str]:
    """Who an acknowledgement of `state` can re-decide: every captive whose recorded membership (at
    any time) is of that state's forces or integrated in them. Never selected by nationality."""
    memberships = force_memberships.c
    found = session.execute(
        sa.select(memberships.captive_id)
        .where(sa.or_(memberships.force_state == state, memberships.integrated_in_forces_of == state))
        .distinct()
    ).scalars()
    return sorted(found)


def decision_view(row) -> dict[str, Any]:
    return {
        "captive_id": row.captive_id,
        "status": row.status,
        "previous_status": row.previous_status,
        "rulebook_version": row.rulebook_version,
        "effective_from": iso(row.effective_from),
        "recorded_at": iso(row.recorded_at),
        "rules": row.rules,
        "facts": row.facts,
        "event_id": row.event_id,
        "stream_version": row.stream_version,
    }


def status_as_of(session: Session, captive_id: str, moment: datetime, known_at: datetime | None = None) -> JSONResponse:
    """The decision in force at `moment`, among those recorded by `known_at` (default: all).
    Two timelines: "on 2025-05-20 (known_at), what did we know of the status on 2025-03-01 (as_of)?"."""
    conditions = [decisions.c.captive_id == captive_id, decisions.c.effective_from <= moment]
    if known_at is not None:
        conditions.append(decisions.c.recorded_at <= known_at)
    row = session.execute(
        sa.select(decisions)
        .where(*conditions)
        .order_by(decisions.c.effective_from.desc(), decisions.c.stream_version.desc())
        .limit(1)
    ).first()
    if row is None:
        known = session.execute(
            sa.select(captive_facts.c.captured_at).where(captive_facts.c.captive_id == captive_id)
        ).scalar()
        if known is None:
            raise NotFound(f"no status for captive {captive_id} (unknown, or its registration is still on its way)")
        if known_at is not None and known <= moment:
            raise NotFound(f"nothing was recorded about captive {captive_id} by {iso(known_at)}")
        raise NotFound(f"captive {captive_id} was not yet in our hands on {iso(moment)} (captured {iso(known)})")
    view = {**decision_view(row), "as_of": iso(moment), "known_at": iso(known_at) if known_at else None}
    return JSONResponse(view, headers={"ETag": f'"{row.stream_version}"'})
