"""Disposition's read models, built from the upstream topics it consumes and its own events.
Rows are read and written through `rows(session)`, so replay can batch them (shared/eventstore/rows.py)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.disposition.tables import (
    assurances,
    captives,
    conflict,
    dispositions,
    eligibility,
    eligibility_history,
    exchange_lists,
    fact_log,
    list_entries,
    partner_claims,
    risks,
)
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.disposition import (
    CustodyEnded,
    DispositionApproved,
    DispositionCompleted,
    DispositionProposed,
    DispositionReferred,
    DispositionStopped,
    ExchangeEligibilityChanged,
    ExchangeListApproved,
    ExchangeListChecked,
    ExchangeListCreated,
    ExchangeListExecuted,
    ExchangeListProposed,
    HandedToRepatriationCommission,
    PartnerStateClaimRecorded,
    RiskAssessed,
    StateAssuranceRecorded,
)
from shared.contracts.intake import (
    END_OF_CUSTODY,
    CaptiveRegistered,
    MedicalAssessed,
    MovementKind,
    MovementRecorded,
    WishDeclared,
)
from shared.contracts.standing import commission_finding, standing
from shared.contracts.status import ConflictFactKind, ConflictFactRecorded, StatusDetermined
from shared.eventstore.rows import rows
from shared.privacy.keyring import as_published


def _upsert(session: Session, table: sa.Table, keys: dict, **values) -> None:
    rows(session).upsert(table, keys, **values)


def _captive(session: Session, captive_id: str, **values) -> None:
    _upsert(session, captives, {"captive_id": captive_id}, **values)


def _later(session: Session, captive_id: str, column: str, moment) -> bool:
    """Whether `moment` is at least as late as what the captive's row already holds in `column`
    (facts may arrive out of order; the latest in time wins)."""
    row = rows(session).get(captives, {"captive_id": captive_id})
    known = None if row is None else row[column]
    return known is None or moment >= known


# What the rules read of each kind of fact (services/disposition/facts.py): never its free text.
FACT_FIELDS: dict[str, dict] = {
    "CaptiveRegistered": {
        "nationality": True,
        "capture": {"captured_at"},
        "armed_force": {"force", "force_state", "integrated_in_forces_of"},
    },
    "ForceMembershipRecorded": {"force": True, "force_state": True, "integrated_in_forces_of": True},
    "StatusDetermined": {"status": True},
    "WishDeclared": {"wish": True, "third_state": True, "provenance": {"setting", "free_and_informed"}},
    "MedicalAssessed": {"seriously_wounded_or_sick": True, "by_mixed_medical_commission": True, "fit_to_travel": True},
    "MovementRecorded": {"kind": True},
    "ProsecutionRecorded": {"proceedings_id": True, "stage": True, "proceedings_kind": True},
    "ReleaseDuringProceedingsConsented": {"proceedings_id": True},
    "MediaExposureRecorded": {"kind": True},
    "ConflictFactRecorded": {"kind": True, "state": True, "conflict": True},
    "RiskAssessed": {
        "destination": True,
        "outcome": True,
        "onward_state": True,
        "would_hand_on": True,
        "onward_states": True,
        "diplomatic_assurances": True,
        "relies_on_assurances": True,
    },
    "StateAssuranceRecorded": {
        "state": True,
        "willing_and_able_to_apply_gc_iii": True,
        "accepts_for_resettlement": True,
        "neutral_accommodation_agreement": True,
        "repatriation_commission_agreement": True,
        "commission_explanation_days": True,
    },
    "PartnerStateClaimRecorded": {"state": True},
    "ConventionFailureRecorded": {"state": True, "notified_by": True},
    "Art12MeasuresRecorded": {"state": True, "measure": True},
    "CustodyEnded": {"kind": True, "destination": True},
    "HandedToRepatriationCommission": {"disposition_id": True, "explanation_days": True},
    "DispositionReferred": {"disposition_id": True, "referral_days": True},
}
GLOBAL_FACTS = {"ConflictFactRecorded", "StateAssuranceRecorded", "ConventionFailureRecorded", "Art12MeasuresRecorded"}


def fact_data(envelope: EventEnvelope, payload: EventPayload) -> dict:
    """What the rules read of a fact, with who verifiably recorded it: its legal weight comes from
    that (shared/contracts/standing.py), never from a field of the request."""
    data = payload.model_dump(mode="json", include=FACT_FIELDS[envelope.type])
    data["standing"] = standing(envelope).value
    if "provenance" in data:  # flattened: the rules read the setting and whether it was free
        data.update(data.pop("provenance"))
    if "capture" in data:
        data["captured_at"] = data.pop("capture")["captured_at"]
    return data


def fact_effective_at(envelope: EventEnvelope, payload: EventPayload):
    """When a fact takes effect: its event's time; a registration's, the capture it records (he
    is in our hands, and protected, from then on: GC III Art. 5(1))."""
    if isinstance(payload, CaptiveRegistered):
        return min(payload.capture.captured_at, envelope.occurred_at)
    return envelope.occurred_at


def record_fact(session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
    if envelope.type not in FACT_FIELDS:
        return
    rows(session).insert(
        fact_log,
        dict(
            event_id=envelope.id,
            captive_id=None if envelope.type in GLOBAL_FACTS else payload.captive_id,
            kind=envelope.type,
            effective_at=fact_effective_at(envelope, payload),
            recorded_at=envelope.recorded_at,
            stream_version=envelope.stream_version,
            data=fact_data(envelope, payload),
        ),
    )


def project_upstream(session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
    """Facts from intake.events.v1 and status.events.v1."""
    payload = as_published(envelope, payload)
    record_fact(session, envelope, payload)
    match payload:
        case CaptiveRegistered():
            _captive(
                session,
                payload.captive_id,
                registration_event_id=envelope.id,
                nationality=payload.nationality,
                captured_at=payload.capture.captured_at,
            )
        case WishDeclared() if _later(session, payload.captive_id, "wish_at", envelope.occurred_at):
            _captive(
                session,
                payload.captive_id,
                wish_at=envelope.occurred_at,
                # never his statement: free text stays in intake's events, sealed there
                wish={**payload.model_dump(mode="json", exclude={"statement"}), "event_id": envelope.id},
            )
        case MedicalAssessed() if commission_finding(
            standing(envelope), payload.by_mixed_medical_commission
        ) and _later(session, payload.captive_id, "medical_at", envelope.occurred_at):
            # Only the commission's own findings: another assessment neither makes nor unmakes one.
            _captive(
                session,
                payload.captive_id,
                medical_at=envelope.occurred_at,
                seriously_wounded_or_sick=payload.seriously_wounded_or_sick,
                medical_event_id=envelope.id,
            )
        case MovementRecorded() if payload.kind in END_OF_CUSTODY:
            _captive(session, payload.captive_id, in_custody=False, custody_event_id=envelope.id)
        case MovementRecorded() if payload.kind is MovementKind.RECAPTURED:
            _captive(session, payload.captive_id, in_custody=True, custody_event_id=None)
        case StatusDetermined():
            record_status(session, envelope, payload)
        case ConflictFactRecorded() if payload.kind is ConflictFactKind.HOSTILITIES_CEASED:
            _upsert(
                session, conflict, {"fact": payload.kind.value}, effective_at=envelope.occurred_at, event_id=envelope.id
            )


def record_status(session: Session, envelope: EventEnvelope, determined: StatusDetermined) -> None:
    known = rows(session).get(captives, {"captive_id": determined.captive_id})
    # The current status is the one that takes effect latest; a decision recorded later about an
    # earlier date (a retroactive finding), or an older event delivered late, does not replace it.
    if (
        known is not None
        and known["status_stream_version"] is not None
        and (
            (known["status_effective_from"], known["status_stream_version"])
            >= (envelope.occurred_at, envelope.stream_version)
        )
    ):
        return
    _captive(
        session,
        determined.captive_id,
        status=determined.status.value,
        status_rulebook_version=determined.rulebook_version,
        status_rules=[rule.model_dump(mode="json") for rule in determined.rules],
        status_event_id=envelope.id,
        status_stream_version=envelope.stream_version,
        status_effective_from=envelope.occurred_at,
    )


def project(session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
    """Disposition's own events."""
    payload = as_published(envelope, payload)  # what a replay reads: free text sealed
    record_fact(session, envelope, payload)
    match payload:
        case RiskAssessed():
            _upsert(
                session,
                risks,
                {"captive_id": payload.captive_id, "destination": payload.destination},
                outcome=payload.outcome.value,
                onward_state=payload.onward_state,
                diplomatic_assurances=payload.diplomatic_assurances,
                event_id=envelope.id,
                assessed_at=envelope.occurred_at,
            )
        case PartnerStateClaimRecorded():
            _upsert(
                session,
                partner_claims,
                {"captive_id": payload.captive_id, "state": payload.state},
                event_id=envelope.id,
            )
        case StateAssuranceRecorded():
            _upsert(
                session,
                assurances,
                {"state": payload.state},
                willing_and_able=payload.willing_and_able_to_apply_gc_iii,
                accepts_for_resettlement=payload.accepts_for_resettlement,
                neutral_accommodation_agreement=payload.neutral_accommodation_agreement,
                event_id=envelope.id,
            )
        case ExchangeEligibilityChanged():
            record_eligibility(session, [(envelope, payload)])
        case ExchangeListCreated():
            rows(session).insert(
                exchange_lists,
                dict(
                    list_id=payload.list_id,
                    counterpart_state=payload.counterpart_state,
                    agreement=payload.agreement,
                    captive_ids=payload.captive_ids,
                    stage="CREATED",
                ),
            )
            rows(session).insert(
                list_entries,
                *(
                    {
                        "list_id": payload.list_id,
                        "captive_id": captive_id,
                        "counterpart_state": payload.counterpart_state,
                    }
                    for captive_id in payload.captive_ids
                ),
            )
        case ExchangeListChecked() if payload.part > 1:  # the next results of the same check
            found = rows(session).get(exchange_lists, {"list_id": payload.list_id})
            earlier = list((found or {}).get("check_results") or [])
            _list(
                session,
                payload.list_id,
                check_results=earlier + [result.model_dump(mode="json") for result in payload.results],
            )
        case ExchangeListChecked():
            _list(
                session,
                payload.list_id,
                stage="CHECKED",
                check_event_id=envelope.id,
                check_results=[result.model_dump(mode="json") for result in payload.results],
            )
        case ExchangeListProposed():
            _list(
                session, payload.list_id, stage="PROPOSED", proposed_by=envelope.actor, proposed_ids=payload.captive_ids
            )
        case ExchangeListApproved():
            _list(session, payload.list_id, stage="APPROVED", approved_by=envelope.actor)
        case ExchangeListExecuted() if payload.part == 1:  # (later parts add withheld entries only)
            _list(session, payload.list_id, stage="EXECUTED", executed_ids=payload.captive_ids)
        case DispositionProposed():
            rows(session).insert(
                dispositions,
                dict(
                    disposition_id=payload.disposition_id,
                    captive_id=payload.captive_id,
                    kind=payload.kind.value,
                    destination=payload.destination,
                    stage="PROPOSED",
                    proposed_by=envelope.actor,
                ),
            )
        case DispositionApproved():
            _disposition(session, payload.disposition_id, stage="APPROVED", approved_by=envelope.actor)
        case HandedToRepatriationCommission():
            _disposition(session, payload.disposition_id, stage="WITH_COMMISSION")
        case DispositionReferred():
            _disposition(session, payload.disposition_id, stage="REFERRED")
        case DispositionCompleted():
            _disposition(session, payload.disposition_id, stage="COMPLETED", destination=payload.destination)
        case DispositionStopped():
            _disposition(session, payload.disposition_id, stage="STOPPED")
        case CustodyEnded():
            _captive(session, payload.captive_id, in_custody=False, custody_event_id=envelope.id)


def _list(session: Session, list_id: str, **values) -> None:
    rows(session).update(exchange_lists, {"list_id": list_id}, **values)


def _disposition(session: Session, disposition_id: str, **values) -> None:
    rows(session).update(dispositions, {"disposition_id": disposition_id}, **values)


def record_eligibility(session: Session, changed: list[tuple[EventEnvelope, ExchangeEligibilityChanged]]) -> None:
    """Many answers at once, as one fact about many captives produces them."""
    if not changed:
        return
    changed = [(envelope, as_published(envelope, payload)) for envelope, payload in changed]
    rows(session).insert(
        eligibility_history,
        *(
            {
                "event_id": envelope.id,
                "captive_id": payload.captive_id,
                "counterpart_state": payload.counterpart_state,
                "stream_version": envelope.stream_version,
                "eligible": payload.eligible,
                "reasons": [reason.model_dump(mode="json") for reason in payload.reasons],
                "facts": [fact.model_dump(mode="json") for fact in payload.facts],
                "effective_at": envelope.occurred_at,
                "recorded_at": envelope.recorded_at,
            }
            for envelope, payload in changed
        ),
    )
    for envelope, payload in changed:
        _upsert(
            session,
            eligibility,
            {"captive_id": payload.captive_id, "counterpart_state": payload.counterpart_state},
            eligible=payload.eligible,
            reasons=[reason.model_dump(mode="json") for reason in payload.reasons],
            event_id=envelope.id,
        )
