"""How the disposition service reacts to intake's and status's events, once its projector has
recorded the fact: re-compute the captive's exchange eligibility, and stop what can no longer go
ahead."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.disposition.eligibility import SERVICE_ACTOR, SERVICE_AGENCY, gather, recompute
from services.disposition.facts import DispositionFacts
from services.disposition.projector import CAPTIVE_FACTS
from services.disposition.rules import DID_NOT_INSIST_ON_RETURN, VERIFIED_WISH, Verdict, disposition
from services.disposition.workflow import PENDING, Disposition, DispositionStage, dispositions_of
from shared.contracts import DecodedEvent, EventEnvelope, EventMetadata
from shared.contracts.disposition import DispositionStopped
from shared.contracts.status import RuleApplied
from shared.eventstore import EventStore, StreamAppend

# The facts after which a pending disposition may have to stop: a wish changed, or custody ended.
STOPPING_FACTS = {"WishDeclared", "MovementRecorded"}


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


def stop_pending(session: Session, store: EventStore, causes: dict[str, EventEnvelope]) -> int:
    """Stop each pending disposition of these captives that the rules now block for good: he
    died or left custody (D1), or, before he was handed over, the verified wish it relied on was
    withdrawn (D3, D13). Other blocks (a risk to assess again, a prosecution) leave it pending:
    its next step is refused until they clear."""
    facts = gather(session, list(causes))
    appends = []
    for captive_id, cause in causes.items():
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
            metadata = EventMetadata.caused_by(cause, actor=SERVICE_ACTOR, agency=SERVICE_AGENCY)
            appends.append(
                StreamAppend(captive_id, stored[-1].envelope.stream_version if stored else 0, stops, metadata)
            )
    if not appends:
        return 0
    return len(store.append_batch(session, appends))


def handlers(store: EventStore):
    def on_captive_fact(session: Session, event: DecodedEvent) -> None:
        on_captives_facts(session, [event])

    def on_captives_facts(session: Session, events: list[DecodedEvent]) -> None:
        """One fact about each of several captives (a consumer's poll): one re-computation."""
        causes, stopping = {}, {}
        for event in events:
            causes[event.payload.captive_id] = event.envelope
            if event.envelope.type in STOPPING_FACTS:
                stopping[event.payload.captive_id] = event.envelope
        if stopping:
            stop_pending(session, store, stopping)
        recompute(session, store, list(causes), cause=causes)

    on_captive_fact.many = on_captives_facts

    # Conflict facts are projected only: cessation and resumption of hostilities are read by the
    # repatriation rules when a disposition is checked; exchange eligibility (exchanges during
    # hostilities) does not read them, so there is nothing to re-compute.
    return dict.fromkeys(CAPTIVE_FACTS, on_captive_fact)
