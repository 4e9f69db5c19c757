"""How the status service reacts to events: it re-decides the captives they affect. One policy
serves every cause (a registration or a force membership from intake, a legal finding, a tribunal
step, a conflict fact affecting thousands, a new rulebook), reading and writing in bulk so that one
conflict fact re-decides 10,000 captives in one transaction (shared/commands/policy.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.status.conflict import HOSTILITIES
from services.status.history import CaptiveHistory
from services.status.queries import captives_of_state, histories, recorded_timelines, take_decision_lock
from services.status.timeline import to_emit
from services.status.tribunal import TRIBUNAL_EVENTS
from shared.commands.policy import Policies, Policy
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.envelope import Causes, cause_of
from shared.contracts.status import DEFAULT_CONFLICT, ConflictFactRecorded, LegalStatus, StatusDetermined
from shared.eventstore import EventStore, StreamAppend


class Redecision(Policy):
    """Bring the recorded decisions of the captives an event affects in line with their facts:
    a StatusDetermined wherever the timeline computed from what is recorded says something else."""

    name = "redecision"
    # Wishes are deliberately not among them: a captive cannot renounce POW rights (GC III Art. 7, R10).
    reacts_to = frozenset(
        {
            "CaptiveRegistered",
            "ForceMembershipRecorded",
            "LegalFindingRecorded",
            *TRIBUNAL_EVENTS,
            "ConflictFactRecorded",
            "RulebookAdopted",
        }
    )
    actor = "status-service"
    agency = "detaining-state/legal"
    answer_key = "decisions_changed"

    def affected(self, session: Session, envelope: EventEnvelope, payload: EventPayload) -> list[str] | None:
        match payload:
            case ConflictFactRecorded() if payload.conflict != DEFAULT_CONFLICT or payload.kind in HOSTILITIES:
                return []  # status is decided in the default conflict, and hostilities do not bear on it
            case ConflictFactRecorded():
                # An acknowledgement of a state re-decides those of its forces; of every state, everyone.
                return captives_of_state(session, payload.state) if payload.state else None
        if envelope.type == "RulebookAdopted":
            return None  # every captive is re-decided under it
        return [envelope.subject]  # an event of his own stream

    def react(
        self, session: Session, store: EventStore, captive_ids: list[str] | None, causes: Causes
    ) -> list[StreamAppend]:
        take_decision_lock(session)
        everyone = histories(session, captive_ids)
        if not everyone:
            return []
        recorded = recorded_timelines(session, None if captive_ids is None else [h.captive_id for h in everyone])
        pending: list[tuple[CaptiveHistory, list]] = []
        for history in everyone:
            emits = to_emit(recorded.get(history.captive_id, []), history.timeline())
            if emits:
                pending.append((history, emits))
        if not pending:
            return []
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
                metadata = self.caused_by(cause_of(causes, history.captive_id), occurred_at=moment)
                appends.append(StreamAppend(history.captive_id, version, [determined], metadata))
                version += 1
        return appends


policies = Policies(Redecision())
