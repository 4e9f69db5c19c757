"""Gathering the disposition facts of many captives at once, and re-computing their exchange
eligibility: an ExchangeEligibilityChanged is appended only where the answer or its reasons
changed, so a redelivered event, or a fact that changes nothing, appends nothing."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.disposition import projections
from services.disposition.rules import Assurance, DeclaredWish, DispositionFacts, Risk, exchange_eligibility
from services.disposition.tables import (
    assurances,
    captives,
    conflict,
    eligibility,
    list_entries,
    partner_claims,
    risks,
)
from shared.contracts import EventMetadata
from shared.contracts.disposition import ExchangeEligibilityChanged, RiskOutcome
from shared.contracts.envelope import Causes, cause_of
from shared.contracts.intake import InterviewSetting, Wish
from shared.db import rows_where_in
from shared.eventstore import EventStore, StreamAppend

SERVICE_ACTOR = "disposition-service"
SERVICE_AGENCY = "detaining-state/coordination-hq"


def gather(session: Session, captive_ids: list[str]) -> dict[str, DispositionFacts]:
    """The facts of each known captive among `captive_ids` (unknown ids are left out)."""
    risk_rows = defaultdict(dict)
    for row in rows_where_in(session, sa.select(risks), risks.c.captive_id, captive_ids):
        risk_rows[row.captive_id][row.destination] = Risk(
            RiskOutcome(row.outcome), row.onward_state, row.diplomatic_assurances, row.event_id
        )
    claims = defaultdict(dict)
    for row in rows_where_in(session, sa.select(partner_claims), partner_claims.c.captive_id, captive_ids):
        claims[row.captive_id][row.state] = row.event_id
    assured = {
        row.state: Assurance(
            row.willing_and_able, row.accepts_for_resettlement, row.neutral_accommodation_agreement, row.event_id
        )
        for row in session.execute(sa.select(assurances)).all()
    }
    ceased = session.execute(sa.select(conflict).where(conflict.c.fact == "HOSTILITIES_CEASED")).first()
    found = {}
    for row in rows_where_in(session, sa.select(captives), captives.c.captive_id, captive_ids):
        wish = row.wish
        found[row.captive_id] = DispositionFacts(
            captive_id=row.captive_id,
            home_state=row.nationality,
            registration_event_id=row.registration_event_id,
            status=row.status,
            status_event_id=row.status_event_id,
            in_custody=row.in_custody,
            custody_event_id=row.custody_event_id,
            wish=DeclaredWish(
                Wish(wish["wish"]),
                wish.get("third_state"),
                InterviewSetting(wish["provenance"]["setting"]),
                wish["provenance"]["free_and_informed"],
                wish["event_id"],
            )
            if wish
            else None,
            risks=risk_rows[row.captive_id],
            seriously_wounded_or_sick=row.seriously_wounded_or_sick,
            medical_event_id=row.medical_event_id,
            assurances=assured,
            partner_claims=claims[row.captive_id],
            hostilities_ceased=ceased is not None,
            hostilities_event_id=ceased.event_id if ceased else None,
        )
    return found


def counterparts(session: Session, facts: dict[str, DispositionFacts]) -> dict[str, set[str]]:
    """The states each captive's eligibility is kept for: his own, every state assessed for
    him, and the counterpart of every exchange list he is on."""
    found = {captive_id: ({f.home_state} if f.home_state else set()) | set(f.risks) for captive_id, f in facts.items()}
    for row in rows_where_in(session, sa.select(list_entries), list_entries.c.captive_id, list(facts)):
        found[row.captive_id].add(row.counterpart_state)
    return found


def recompute(session: Session, store: EventStore, captive_ids: list[str], *, cause: Causes) -> int:
    """Append ExchangeEligibilityChanged where an answer changed; return how many. `cause`: the
    event behind them all, or each captive's own."""
    facts = gather(session, captive_ids)
    if not facts:
        return 0
    current = {
        (row.captive_id, row.counterpart_state): (row.eligible, row.reasons)
        for row in rows_where_in(session, sa.select(eligibility), eligibility.c.captive_id, list(facts))
    }
    changed: list[ExchangeEligibilityChanged] = []
    for captive_id, states in counterparts(session, facts).items():
        for state in sorted(states):
            verdict = exchange_eligibility(facts[captive_id], state)
            reasons = [reason.model_dump(mode="json") for reason in verdict.reasons]
            if current.get((captive_id, state)) != (verdict.allowed, reasons):
                changed.append(
                    ExchangeEligibilityChanged(
                        captive_id=captive_id,
                        counterpart_state=state,
                        eligible=verdict.allowed,
                        reasons=verdict.reasons,
                        facts=list(verdict.facts),
                    )
                )
    if not changed:
        return 0
    versions = store.stream_versions(session, sorted({event.captive_id for event in changed}))
    appends = []
    for event in changed:
        metadata = EventMetadata.caused_by(
            cause_of(cause, event.captive_id), actor=SERVICE_ACTOR, agency=SERVICE_AGENCY
        )
        appends.append(StreamAppend(event.captive_id, versions[event.captive_id], [event], metadata))
        versions[event.captive_id] += 1
    envelopes = store.append_batch(session, appends)
    projections.record_eligibility(session, list(zip(envelopes, changed, strict=True)))
    return len(envelopes)
