"""The reads the disposition service's policies and its read routes share: the dated facts of many
captives at once, each one's facts folded as they stood at a moment, and the states his
eligibility is kept for. The pure cores that decide are services/disposition/facts.py and rules.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.disposition.facts import Dated, DispositionFacts, fold
from services.disposition.tables import fact_log, list_entries
from shared.platform.db import rows_where_in


def dated_facts(session: Session, captive_ids: list[str]) -> tuple[dict[str, list[Dated]], list[Dated]]:
    """Each captive's dated facts, and the global ones (states, the conflict)."""

    def dated(row) -> Dated:
        return Dated(row.event_id, row.kind, row.effective_at, row.recorded_at, row.data, row.stream_version)

    own: dict[str, list[Dated]] = defaultdict(list)
    for row in rows_where_in(session, sa.select(fact_log), fact_log.c.captive_id, captive_ids):
        own[row.captive_id].append(dated(row))
    shared = [dated(row) for row in session.execute(sa.select(fact_log).where(fact_log.c.captive_id.is_(None))).all()]
    return own, shared


def gather(
    session: Session, captive_ids: list[str], at: datetime | None = None, known_at: datetime | None = None
) -> dict[str, DispositionFacts]:
    """The facts of each registered captive among `captive_ids` as they stood at `at` (default:
    the latest moment anything about him was recorded), as known at `known_at` (default: all
    recorded). Captives not registered by then are left out."""
    own, shared = dated_facts(session, captive_ids)
    found = {}
    for captive_id, facts in own.items():
        moment = at or latest_known(facts, shared)
        folded = fold(captive_id, [*facts, *shared], moment, known_at)
        if folded.registration_event_id is not None:
            found[captive_id] = folded
    return found


def latest_known(facts: list[Dated], shared: list[Dated]) -> datetime:
    """The moment an answer from the recorded facts alone stands for: the latest recording."""
    return max(fact.recorded_at for fact in (*facts, *shared))


def counterparts(session: Session, facts: dict[str, DispositionFacts]) -> dict[str, set[str]]:
    """The states each captive's eligibility is kept for: the state he depends on and the one
    recorded as his nationality, every state assessed for him or claiming him, and the
    counterpart of every exchange list he is on."""
    found = {
        captive_id: {state for state in (f.home_state, f.nationality) if state} | set(f.risks) | set(f.partner_claims)
        for captive_id, f in facts.items()
    }
    for row in rows_where_in(session, sa.select(list_entries), list_entries.c.captive_id, list(facts)):
        found[row.captive_id].add(row.counterpart_state)
    return found
