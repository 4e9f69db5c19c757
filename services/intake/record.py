"""A captive's intake record, folded from his events (pure; no I/O).

The same fold answers the API's reads and checks each new command against what is already
recorded. Every field lands in the section of its data tier (see shared/contracts/tiers.py), so a
reader who may see only some tiers can be given only those sections.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.intake.custody import HELD, CustodyState, Handover, after
from shared.contracts import DecodedEvent
from shared.contracts.fitness import Fitness, after_admission_to_hospital, after_finding
from shared.contracts.intake import (
    Art17Date,
    Art17Text,
    CaptiveRegistered,
    IdentityAmended,
    IdentityErased,
    MedicalAssessed,
    MovementKind,
    MovementRecorded,
    ProsecutionRecorded,
    ProsecutionStage,
)
from shared.contracts.standing import standing
from shared.contracts.tiers import DataTier, split_by_tier
from shared.contracts.withheld import Withheld

# Later facts are kept as lists, one entry per event, under these names.
FACT_LISTS = {
    "IdentityAmended": "amendments",
    "MedicalAssessed": "medical_assessments",
    "MovementRecorded": "movements",
    "IcrcVisitRecorded": "icrc_visits",
    "WishDeclared": "wishes",
    "CaptureCardRecorded": "capture_card",
    "NotificationSent": "notifications",
    "IdentityErased": "erasures",
    "ForceMembershipRecorded": "force_memberships",
    "ProsecutionRecorded": "prosecutions",
    "MediaExposureRecorded": "media_exposures",
}


@dataclass(frozen=True)
class Proceedings:
    """The last recorded stage of one proceedings_id, and when it took effect."""

    stage: ProsecutionStage
    since: datetime
    court: str


@dataclass(frozen=True)
class Reportable:
    """An event that Arts. 122-123 require to be notified: the capture, a movement of that kind, a
    hand-over out of custody, or an assessment finding him seriously wounded or sick (Art. 122(6))."""

    kind: str  # "CAPTURE", the MovementKind, the custody state a hand-over left him in, or SERIOUSLY_WOUNDED_OR_SICK
    occurred_at: datetime


SERIOUSLY_WOUNDED_OR_SICK = "SERIOUSLY_WOUNDED_OR_SICK"


@dataclass
class CaptiveRecord:
    captive_id: str
    stream_version: int = 0
    captured_at: datetime | None = None
    # Withheld where the events were not opened with the captive's key, or the key was destroyed.
    identity: dict[str, Art17Text | Art17Date | Withheld] = field(default_factory=dict)
    erased_at: datetime | None = None  # when his key was destroyed (IdentityErased)
    custody: CustodyState = CustodyState.CAPTURED
    custody_since: datetime | None = None
    last_movement_at: datetime | None = None
    # The hand-over that ended the detaining state's custody of him (the latest, if several: the
    # commission, then its release), from disposition.events.v1; None while he is held.
    left_custody: Handover | None = None
    proceedings: dict[str, Proceedings] = field(default_factory=dict)
    fitness: Fitness = Fitness()  # whether he may travel (Arts. 46-47): shared/contracts/fitness.py
    # event id -> what it reports, for the events a notification may say it concerns
    reportable: dict[str, Reportable] = field(default_factory=dict)
    tiers: dict[DataTier, dict[str, Any]] = field(default_factory=lambda: {tier: {} for tier in DataTier})

    def view(self) -> dict[str, Any]:
        reference = {
            "captive_id": self.captive_id,
            "captured_at": _iso(self.captured_at),  # protection runs from here (Art. 5(1))
            **self.tiers[DataTier.REFERENCE],
            "custody": {
                "state": self.custody.value,
                "since": _iso(self.custody_since),
                **(_left(self.left_custody) if self.left_custody else {}),
            },
            # proceedings still open (Arts. 115, 119(5)): he may be kept back from release
            "open_proceedings": sorted(
                name for name, item in self.proceedings.items() if item.stage is ProsecutionStage.OPENED
            ),
        }
        return {
            "captive_id": self.captive_id,
            "stream_version": self.stream_version,
            DataTier.REFERENCE.value: reference,
            **{tier.value: self.tiers[tier] for tier in DataTier if tier is not DataTier.REFERENCE},
        }


def fold(events: Iterable[DecodedEvent], handovers: Iterable[Handover] = ()) -> CaptiveRecord | None:
    """His record from his intake events, in order, then the hand-overs out of custody that
    disposition recorded for him, in their order. A hand-over comes last whatever its time: once
    one is recorded intake accepts no other fact about him but notifications, which do not move
    him. It applies whatever intake's own movements say (the hand-over happened; intake cannot
    refuse it): where they say he was no longer held (dead, escaped, released), the entry says
    so in `custody_before`, for a person to reconcile the two records."""
    record = None
    for event in events:
        envelope, payload = event.envelope, event.payload
        if record is None:
            record = CaptiveRecord(captive_id=envelope.subject)
        record.stream_version = envelope.stream_version
        match payload:
            case CaptiveRegistered():
                record.captured_at = payload.capture.captured_at
                record.custody_since = payload.capture.captured_at
                record.identity = {
                    name: getattr(payload, name)
                    for name in ("surname", "first_names", "rank", "date_of_birth", "service_number")
                }
                record.reportable[envelope.id] = Reportable("CAPTURE", payload.capture.captured_at)
                _place_fields(record, payload)
            case IdentityAmended():
                record.identity[payload.field] = payload.current
                record.tiers[DataTier.IDENTITY][payload.field] = payload.current.model_dump(mode="json")
            case IdentityErased():
                record.erased_at = envelope.occurred_at
            case MovementRecorded():
                if payload.kind is MovementKind.HOSPITALISED:
                    record.fitness = after_admission_to_hospital(envelope.id, envelope.occurred_at)
                record.custody = after(record.custody, payload.kind)
                record.custody_since = envelope.occurred_at
                record.last_movement_at = envelope.occurred_at
                if payload.kind in NOTIFIED_MOVEMENTS:
                    record.reportable[envelope.id] = Reportable(payload.kind.value, envelope.occurred_at)
            case ProsecutionRecorded():
                record.proceedings[payload.proceedings_id] = Proceedings(
                    payload.stage, envelope.occurred_at, payload.court
                )
            case MedicalAssessed():
                record.fitness = after_finding(
                    record.fitness, payload.fit_to_travel, standing(envelope), envelope.id, envelope.occurred_at
                )
                if payload.seriously_wounded_or_sick:
                    # Art. 122(6): the weekly reports on his health may name the assessment they follow.
                    record.reportable[envelope.id] = Reportable(SERIOUSLY_WOUNDED_OR_SICK, envelope.occurred_at)
        if envelope.type in FACT_LISTS:
            _append_fact(record, event)
    if record is not None:
        for left in handovers:
            _hand_over(record, left)
    return record


def _hand_over(record: CaptiveRecord, left: Handover) -> None:
    entry = {**_left(left), "occurred_at": _iso(left.at)}
    if record.custody not in HELD and record.left_custody is None:
        entry["custody_before"] = record.custody.value  # intake's own record says he was not held then
    record.custody = left.state
    record.custody_since = left.at
    record.left_custody = left
    record.reportable[left.event_id] = Reportable(left.state.value, left.at)
    record.tiers[DataTier.REFERENCE].setdefault("custody_handovers", []).append(entry)


def _left(left: Handover) -> dict[str, Any]:
    """A hand-over as the record shows it (every value reference tier)."""
    return {
        "event_id": left.event_id,
        "event_type": left.event_type,
        "destination": left.destination,
        "disposition_kind": left.disposition_kind,
        "disposition_id": left.disposition_id,
    }


# Movements Arts. 122-123 require to be notified (the capture is the other such event).
NOTIFIED_MOVEMENTS = {
    MovementKind.TRANSFERRED,
    MovementKind.HOSPITALISED,
    MovementKind.ESCAPED,
    MovementKind.RECAPTURED,
    MovementKind.DIED,
    MovementKind.RELEASED,
}


def _place_fields(record: CaptiveRecord, payload: CaptiveRegistered) -> None:
    for tier, part in split_by_tier(type(payload), payload.model_dump(mode="json")).items():
        for name, value in part.items():
            if name != "captive_id":
                record.tiers[tier][name] = value


def _append_fact(record: CaptiveRecord, event: DecodedEvent) -> None:
    """Split one event's fields by tier; each tier's part keeps the event id and times, so the
    parts of one event can be put back together by a reader who sees several tiers."""
    envelope, payload = event.envelope, event.payload
    parts = split_by_tier(type(payload), payload.model_dump(mode="json"))
    for tier, part in parts.items():
        part = {name: value for name, value in part.items() if name != "captive_id"}
        if not part:
            continue
        entry = {
            "event_id": envelope.id,
            "occurred_at": _iso(envelope.occurred_at),
            "recorded_at": _iso(envelope.recorded_at),
            "actor": envelope.actor,
            "agency": envelope.agency,
            **part,
        }
        record.tiers[tier].setdefault(FACT_LISTS[envelope.type], []).append(entry)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
