"""How the disposition service reacts to events, once its projector has recorded them
(shared/commands/policy.py): it stops what can no longer go ahead, then re-computes the exchange
eligibility of the captives they affect."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.disposition.facts import DispositionFacts
from services.disposition.projector import CAPTIVE_FACTS
from services.disposition.queries import counterparts, gather
from services.disposition.rules import (
    DID_NOT_INSIST_ON_RETURN,
    VERIFIED_WISH,
    Verdict,
    disposition,
    exchange_eligibility,
)
from services.disposition.tables import eligibility
from services.disposition.workflow import PENDING, Disposition, DispositionStage, dispositions_of
from shared.commands.policy import Policies, Policy
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.disposition import DispositionStopped, ExchangeEligibilityChanged, ExchangeListExecuted
from shared.contracts.envelope import Causes, cause_of
from shared.contracts.status import RuleApplied
from shared.eventstore import EventStore, StreamAppend
from shared.platform.db import rows_where_in


class DispositionService(Policy):
    actor = "disposition-service"
    agency = "detaining-state/coordination-hq"


def stopping(found: Disposition, facts: DispositionFacts, verdict: Verdict) -> list[RuleApplied] | None:
    """Why a pending disposition must stop for good, or None: he died or left custody, or (before
    a hand-over to the commission, where choosing is the point) the verified wish it relied on is
    gone."""
    wish_gone = found.stage is not DispositionStage.WITH_COMMISSION and verdict.blocks(
        VERIFIED_WISH, DID_NOT_INSIST_ON_RETURN
    )
    if not (facts.dead or not facts.in_custody or wish_gone):
        return None
    return [r for r in verdict.blocked_by if r.rule_id in ("D1", "D3", "D13")] or verdict.blocked_by


class Stopping(DispositionService):
    """Stop each pending disposition of these captives that the rules now block for good: he
    died or left custody (D1), or, before he was handed over, the verified wish it relied on was
    withdrawn (D3, D13). Other blocks (a risk to assess again, a prosecution) leave it pending:
    its next step is refused until they clear."""

    name = "stopping"
    order = 1  # before eligibility, as a stopped disposition no longer counts
    # A wish changed, or custody ended.
    reacts_to = frozenset({"WishDeclared", "MovementRecorded"})

    def react(
        self, session: Session, store: EventStore, captive_ids: list[str] | None, causes: Causes
    ) -> list[StreamAppend]:
        facts = gather(session, captive_ids)
        appends = []
        for captive_id in captive_ids:
            if captive_id not in facts:
                continue
            stored = store.read_stream(session, captive_id)
            pending = [
                found
                for found in dispositions_of(captive_id, ((s.envelope, s.event.payload) for s in stored)).values()
                if found.stage in PENDING
            ]
            stops = []
            for found in pending:
                verdict = disposition(found.kind, facts[captive_id], found.destination)
                why = stopping(found, facts[captive_id], verdict)
                if why is not None:
                    stops.append(
                        DispositionStopped(
                            captive_id=captive_id,
                            disposition_id=found.disposition_id,
                            blocked_by=why,
                            decided_at=verdict.at,
                            events_used=list(verdict.events_used),
                        )
                    )
            if stops:
                metadata = self.caused_by(cause_of(causes, captive_id))
                appends.append(
                    StreamAppend(captive_id, stored[-1].envelope.stream_version if stored else 0, stops, metadata)
                )
        return appends


class Eligibility(DispositionService):
    """Re-compute the captives' exchange eligibility: an ExchangeEligibilityChanged only where the
    answer or its reasons changed, so a redelivered event, or a fact that changes nothing,
    appends nothing."""

    name = "eligibility"
    order = 2
    reacts_to = frozenset(
        {
            *CAPTIVE_FACTS,  # from intake and status
            "RiskAssessed",
            "ReleaseDuringProceedingsConsented",
            "CustodyEnded",
            "ExchangeListCreated",
            "ExchangeListExecuted",
        }
    )
    answer_key = "eligibility_changes"

    def affected(self, session: Session, envelope: EventEnvelope, payload: EventPayload) -> list[str] | None:
        match payload:
            case ExchangeListExecuted():
                return [*payload.captive_ids, *(entry.captive_id for entry in payload.withheld)]
        if envelope.type == "ExchangeListCreated":
            return list(payload.captive_ids)
        return [envelope.subject]  # an event of his own stream

    def react(
        self, session: Session, store: EventStore, captive_ids: list[str] | None, causes: Causes
    ) -> list[StreamAppend]:
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
                            decided_at=verdict.at,
                            events_used=list(verdict.events_used),
                        )
                    )
        if not changed:
            return []
        versions = store.stream_versions(session, sorted({event.captive_id for event in changed}))
        appends = []
        for event in changed:
            metadata = self.caused_by(cause_of(causes, event.captive_id))
            appends.append(StreamAppend(event.captive_id, versions[event.captive_id], [event], metadata))
            versions[event.captive_id] += 1
        return appends


policies = Policies(Stopping(), Eligibility())
