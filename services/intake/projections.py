"""The intake read model, built from intake's own events and the hand-overs out of custody it
consumes from disposition.events.v1, so replaying both topics rebuilds it exactly. The event
store applies each event the API appends through `project`, in the same transaction; the
consumer applies each hand-over through `project_handover`; replay applies both in batches (shared/eventstore/rows.py).
All three through the service's projector (services/intake/projector.py).

Replay reads intake's topic before disposition's, so it applies a captive's hand-over after every
event of his, whenever they were recorded. Live, the only events of his appended after a
hand-over are notifications (the API refuses the rest), which do not touch his custody; a
hand-over sets the custody columns it owns without reading them; and an API write locks his row
first (services/intake/commands.py), so a movement and a hand-over racing each other end as replay
ends them. So the order live and the order replayed give the same rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from services.intake import deadlines
from services.intake.clock_facts import Assessed, CardRecorded, ClockFacts, LeftCustody, Moved, Notified
from services.intake.custody import CustodyState, Handover, after, handover
from services.intake.obligations import SICKNESS
from services.intake.tables import captives, clock_facts
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.disposition import CustodyEnded, HandedToRepatriationCommission
from shared.contracts.intake import (
    CaptiveRegistered,
    CaptureCardAction,
    CaptureCardRecorded,
    CardAddressee,
    MedicalAssessed,
    MovementKind,
    MovementRecorded,
    NotificationRecipient,
    NotificationSent,
)
from shared.eventstore.rows import rows


def project_registrations(session: Session, registered: list[tuple[EventEnvelope, CaptiveRegistered]]) -> None:
    """New captives: a mass capture of a thousand inserts their rows with one statement per table."""
    rows(session).insert(captives, *(registered_row(envelope, payload) for envelope, payload in registered))
    rows(session).insert(clock_facts, *(captured_row(envelope, payload) for envelope, payload in registered))


def project(session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
    captive_id = envelope.subject
    if isinstance(payload, CaptiveRegistered):
        project_registrations(session, [(envelope, payload)])
        return
    row = rows(session).get(captives, {"captive_id": captive_id})
    if row is None:
        raise NoResultFound(f"{envelope.type} {envelope.id} for {captive_id}, who was never registered")
    changes: dict = {"stream_version": envelope.stream_version}
    if (fact := clock_row(envelope, payload)) is not None:
        rows(session).insert(clock_facts, fact)
    if isinstance(payload, MovementRecorded):
        changes["custody_state"] = after(CustodyState(row["custody_state"]), payload.kind).value
        changes["custody_since"] = envelope.occurred_at
    rows(session).update(captives, {"captive_id": captive_id}, **changes)


def project_handover(
    session: Session, envelope: EventEnvelope, payload: CustodyEnded | HandedToRepatriationCommission
) -> None:
    """A hand-over out of custody, from disposition.events.v1 (the consumer's handler and replay's
    applier): a clock fact of its own (LEFT), and his custody state, set whatever it was."""
    left = handover(envelope.id, envelope.type, envelope.occurred_at, payload)
    captive_id = envelope.subject
    changes = {"custody_state": left.state.value, "custody_since": left.at}
    if not rows(session).update(captives, {"captive_id": captive_id}, **changes):
        raise NoResultFound(f"{envelope.type} {envelope.id} for {captive_id}, who was never registered here")
    rows(session).insert(
        clock_facts,
        _fact(
            envelope,
            "LEFT",
            left.state.value,
            destination=left.destination,
            detail={
                "event_type": left.event_type,
                "disposition_kind": left.disposition_kind,
                "disposition_id": left.disposition_id,
            },
        ),
    )


def handovers_of(session: Session, captive_id: str) -> list[Handover]:
    """The hand-overs out of custody recorded for him, in the order of his disposition stream."""
    found = session.execute(
        sa.select(clock_facts)
        .where(clock_facts.c.captive_id == captive_id, clock_facts.c.fact == "LEFT")
        .order_by(clock_facts.c.stream_version)
    ).all()
    return [_handover(row) for row in found]


def _handover(row) -> Handover:
    detail = row.detail or {}
    return Handover(
        event_id=row.event_id,
        event_type=detail.get("event_type", ""),
        at=row.occurred_at,
        state=CustodyState(row.kind),
        destination=row.destination,
        disposition_kind=detail.get("disposition_kind"),
        disposition_id=detail.get("disposition_id", ""),
    )


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


def captured_row(envelope: EventEnvelope, payload: CaptiveRegistered) -> dict:
    """The clocks' fact of his capture: the registration event, at the time he was captured."""
    return _fact(envelope, "CAPTURED", deadlines.CAPTURE, occurred_at=payload.capture.captured_at)


def clock_row(envelope: EventEnvelope, payload: EventPayload) -> dict | None:
    match payload:
        case MovementRecorded():
            return _fact(envelope, "MOVED", payload.kind.value)
        case CaptureCardRecorded():
            addressee = payload.addressee.value if payload.addressee else None
            return _fact(envelope, "CARD", payload.action.value, addressee=addressee)
        case NotificationSent():
            return _fact(
                envelope,
                "NOTIFIED",
                payload.recipient.value,
                fields_sent=list(payload.fields_sent),
                concerning_event_id=payload.concerning_event_id,
            )
        case MedicalAssessed():
            # Art. 70 "in case of sickness" and Art. 122(6) read whether he was found seriously
            # wounded or sick (medical tier, in clear in the event; the findings stay sealed).
            return _fact(envelope, "MEDICAL", SERIOUS if payload.seriously_wounded_or_sick else NOT_SERIOUS)
    return None


SERIOUS, NOT_SERIOUS = SICKNESS, "NOT_" + SICKNESS


def _fact(envelope: EventEnvelope, fact: str, kind: str, *, occurred_at: datetime | None = None, **values: Any):
    return {
        "event_id": envelope.id,
        "captive_id": envelope.subject,
        "stream_version": envelope.stream_version,
        "occurred_at": occurred_at or envelope.occurred_at,
        "fact": fact,
        "kind": kind,
        "addressee": None,
        "fields_sent": None,
        "concerning_event_id": None,
        "destination": None,
        "detail": None,
        **values,
    }


def clock_facts_as_of(session: Session, as_of: datetime, captured_before: datetime) -> list[ClockFacts]:
    """What the clocks read for every captive captured before `captured_before`, only the facts
    in effect at `as_of`, in each captive's event order (one query)."""
    query = (
        sa.select(clock_facts, captives.c.captured_at)
        .join(captives, captives.c.captive_id == clock_facts.c.captive_id)
        .where(captives.c.captured_at < captured_before, clock_facts.c.occurred_at <= as_of)
        .order_by(captives.c.captured_at, clock_facts.c.captive_id, clock_facts.c.stream_version)
    )
    found = session.execute(query).all()
    return [facts_of(captive_id, items) for captive_id, items in groupby(found, key=lambda row: row.captive_id)]


def facts_of(captive_id: str, found: Iterable) -> ClockFacts:
    registered, movements, cards, notifications, assessments, handovers = None, [], [], [], [], []
    for row in found:
        match row.fact:
            case "MEDICAL":
                assessments.append(Assessed(row.event_id, row.occurred_at, row.kind == SERIOUS))
            case "LEFT":
                handovers.append(LeftCustody(row.event_id, row.occurred_at, CustodyState(row.kind), row.destination))
            case "CAPTURED":
                registered = row
            case "MOVED":
                movements.append(Moved(row.event_id, row.occurred_at, MovementKind(row.kind)))
            case "CARD":
                addressee = CardAddressee(row.addressee) if row.addressee else None
                cards.append(CardRecorded(row.event_id, row.occurred_at, CaptureCardAction(row.kind), addressee))
            case "NOTIFIED":
                notifications.append(
                    Notified(
                        row.event_id,
                        row.occurred_at,
                        NotificationRecipient(row.kind),
                        frozenset(row.fields_sent or ()),
                        row.concerning_event_id,
                    )
                )
    if registered is None:
        raise NoResultFound(f"no capture among the clock facts of {captive_id}")
    return ClockFacts(
        captive_id=captive_id,
        registered_event_id=registered.event_id,
        captured_at=registered.occurred_at,
        movements=tuple(movements),
        cards=tuple(cards),
        notifications=tuple(notifications),
        assessments=tuple(assessments),
        handovers=tuple(handovers),
    )
