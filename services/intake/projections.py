"""The intake read model, built only from intake's own events, so replaying the stream rebuilds
it exactly. The API applies each event it appends through `project`, in the same transaction;
replay applies them in batches (shared/readmodels.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from services.intake.custody import CustodyState, after
from services.intake.tables import captives
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.intake import (
    END_OF_CUSTODY,
    CaptiveRegistered,
    CaptureCardAction,
    CaptureCardRecorded,
    MovementKind,
    MovementRecorded,
    NotificationRecipient,
    NotificationSent,
)
from shared.readmodels import rows

NOTIFIED_COLUMN = {
    NotificationRecipient.NATIONAL_INFORMATION_BUREAU: "nib_notified_at",
    NotificationRecipient.CENTRAL_TRACING_AGENCY: "cta_notified_at",
}


def project(session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
    captive_id = envelope.subject
    if isinstance(payload, CaptiveRegistered):
        rows(session).insert(captives, registered_row(envelope, payload))
        return
    row = rows(session).get(captives, {"captive_id": captive_id})
    if row is None:
        raise NoResultFound(f"{envelope.type} {envelope.id} for {captive_id}, who was never registered")
    changes: dict = {"stream_version": envelope.stream_version}
    at = envelope.occurred_at
    match payload:
        case MovementRecorded():
            changes["custody_state"] = after(CustodyState(row["custody_state"]), payload.kind).value
            changes["custody_since"] = at
            if payload.kind is MovementKind.ARRIVED_AT_CAMP:
                changes["first_arrival_at"] = _earliest(row["first_arrival_at"], at)
            if payload.kind in END_OF_CUSTODY:
                changes["custody_ended_at"] = _earliest(row["custody_ended_at"], at)
            if payload.kind is MovementKind.RECAPTURED:
                changes["custody_ended_at"] = None
        case CaptureCardRecorded() if payload.action is not CaptureCardAction.OFFERED:
            changes["card_settled_at"] = _earliest(row["card_settled_at"], at)
        case NotificationSent():
            column = NOTIFIED_COLUMN[payload.recipient]
            changes[column] = _earliest(row[column], at)
    rows(session).update(captives, {"captive_id": captive_id}, **changes)


def registered_row(envelope: EventEnvelope, payload: CaptiveRegistered) -> dict:
    """The read model's row of a newly registered captive (a batch of registrations inserts many)."""
    return dict(
        captive_id=envelope.subject,
        stream_version=envelope.stream_version,
        nationality=payload.nationality,
        claimed_affiliation=payload.claimed_affiliation.value,
        captured_at=payload.capture.captured_at,
        custody_state=CustodyState.CAPTURED.value,
        custody_since=payload.capture.captured_at,
    )


def _earliest(known: datetime | None, new: datetime) -> datetime:
    return new if known is None or new < known else known
