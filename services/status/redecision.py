"""Re-deciding captives: gather what is recorded, compute each one's timeline of decisions, and
append a StatusDetermined wherever the recorded timeline says something else.

One code path serves every cause (a registration, a legal finding, a tribunal event, a conflict
fact affecting thousands, a new rulebook), reading and writing in bulk so that one conflict fact
re-decides 10,000 captives in one transaction."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
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
from services.status.timeline import Recorded, to_emit
from shared.contracts import EventMetadata
from shared.contracts.envelope import Causes, cause_of
from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import LegalStatus, StatusDetermined
from shared.eventstore import EventStore, StreamAppend
from shared.platform.db import rows_where_in

SERVICE_ACTOR = "status-service"
SERVICE_AGENCY = "detaining-state/legal"


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


def redecide(session: Session, store: EventStore, captive_ids: list[str] | None, *, cause: Causes) -> int:
    """Bring the given captives' (all, for None) recorded decisions in line with their facts.
    Returns how many StatusDetermined events were appended. `cause`: the event behind them all,
    or each captive's own."""
    take_decision_lock(session)
    everyone = histories(session, captive_ids)
    if not everyone:
        return 0
    recorded = recorded_timelines(session, None if captive_ids is None else [h.captive_id for h in everyone])
    pending: list[tuple[CaptiveHistory, list]] = []
    for history in everyone:
        emits = to_emit(recorded.get(history.captive_id, []), history.timeline())
        if emits:
            pending.append((history, emits))
    if not pending:
        return 0
    versions = store.stream_versions(session, [history.captive_id for history, _ in pending])
    appends = []
    for history, emits in pending:
        version = versions[history.captive_id]
        for moment, decision, previous in emits:
            determined = StatusDetermined(
                captive_id=history.captive_id,
                status=decision.status,
                rulebook_version=decision.rulebook_version,
                rules=list(decision.rules),
                facts=list(decision.facts),
                previous_status=LegalStatus(previous) if previous else None,
            )
            metadata = EventMetadata.caused_by(
                cause_of(cause, history.captive_id), actor=SERVICE_ACTOR, agency=SERVICE_AGENCY, occurred_at=moment
            )
            appends.append(StreamAppend(history.captive_id, version, [determined], metadata))
            version += 1
    return len(store.append_batch(session, appends))
