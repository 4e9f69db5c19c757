"""What intake decides when it is asked to record something: a registration (one, or a batch of a
mass capture), a later fact about a captive, and the guards that refuse a fact his record does
not allow. Each returns the events to append and the answer (shared/commands/pipeline.py): the
pipeline appends them, the store projects them, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from services.intake.checks import fact_time_problems, problem, registration_problems
from services.intake.custody import CustodyConflict, CustodyState, LeftCustody, after
from services.intake.queries import load_record
from services.intake.record import CaptiveRecord
from services.intake.requests import (
    STILL_RECORDED,
    AmendmentRequest,
    BatchRegistration,
    MovementRequest,
    NotificationRequest,
    ProsecutionRequest,
    RegistrationRequest,
    Written,
)
from services.intake.tables import captives
from shared.commands.idempotency import Answer
from shared.commands.pipeline import Decision
from shared.contracts import EventPayload
from shared.contracts.envelope import EventEnvelope, utc_now
from shared.contracts.identifiers import new_captive_id
from shared.contracts.intake import (
    CaptiveRegistered,
    IdentityAmended,
    MovementKind,
    MovementRecorded,
    NotificationSent,
    ProsecutionRecorded,
    ProsecutionStage,
)
from shared.eventstore import ConcurrencyConflict, StreamAppend
from shared.platform.errors import DomainConflict
from shared.web.http import Command, When, iso, parse_if_match

# fact(his record, when it happened) -> the event, or a refusal
MakeFact = Callable[[CaptiveRecord, datetime], EventPayload]


def written(envelope: EventEnvelope) -> Answer:
    body = Written(captive_id=envelope.subject, stream_version=envelope.stream_version, event_id=envelope.id)
    return Answer(
        201, body.model_dump(), {"ETag": f'"{envelope.stream_version}"', "Location": f"/v1/captives/{envelope.subject}"}
    )


# -- later facts ----------------------------------------------------------------------------------


def record_fact(
    command: Command, captive_id: str, body: When, make_event: MakeFact, if_match: str | None = None
) -> JSONResponse:
    """Append one fact about an existing captive. With If-Match the write is refused (409) if the
    record moved on; without it the fact is appended to whatever is current, and a race with
    another write is decided again from a fresh read (facts add to the record, they do not
    overwrite)."""
    expected = parse_if_match(if_match)
    runtime = command.runtime

    def decide(session: Session) -> Decision[Answer]:
        # His row first, locked until commit: a hand-over the consumer applies meanwhile waits
        # for this write, or this write waits for it and then sees it (services/intake/projections.py).
        session.execute(sa.select(captives.c.captive_id).where(captives.c.captive_id == captive_id).with_for_update())
        record = load_record(runtime, session, captive_id)
        if record.left_custody is not None and type(body) not in STILL_RECORDED:
            raise LeftCustody(captive_id, record.left_custody)
        if expected is not None and expected != record.stream_version:
            raise ConcurrencyConflict(captive_id, expected, record.stream_version)
        now = utc_now()
        occurred_at = body.occurred_at or now
        if problems := fact_time_problems(occurred_at, record.captured_at, now):
            raise RequestValidationError(problems)
        event = make_event(record, occurred_at)
        append = StreamAppend(captive_id, record.stream_version, [event], command.metadata(occurred_at))
        return Decision([append], lambda envelopes, _reacted: written(envelopes[0]))

    return command.handle(body, decide, retry_conflicts=expected is None)


def fact_of(model: type[EventPayload], captive_id: str, body: When) -> EventPayload:
    """The event of `model` with the body's fields (its time is the envelope's)."""
    return model(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))


def plain(model: type[EventPayload]) -> Callable[[str, When], MakeFact]:
    """A fact his record cannot refuse (beyond custody and time, checked for every fact)."""
    return lambda captive_id, body: lambda _record, _at: fact_of(model, captive_id, body)


def amendment(captive_id: str, body: AmendmentRequest) -> MakeFact:
    return lambda record, _at: IdentityAmended(
        captive_id=captive_id,
        field=body.field,
        previous=record.identity[body.field],
        current=body.current,
        reason=body.reason,
    )


def movement(captive_id: str, body: MovementRequest) -> MakeFact:
    """Movements are recorded in time order and must follow from the current state; a transfer
    waits while the journey may endanger his recovery (Arts. 46-47), unless his safety demands it."""

    def moved(record: CaptiveRecord, at: datetime) -> MovementRecorded:
        if record.last_movement_at is not None and at < record.last_movement_at:
            raise CustodyConflict(
                f"movements are recorded in time order: the last one is at "
                f"{record.last_movement_at.isoformat()}, this one at {at.isoformat()}"
            )
        after(record.custody, body.kind)  # raises CustodyConflict
        if body.kind is MovementKind.TRANSFERRED and record.fitness.holds_back and body.safety_demands_it is None:
            raise CustodyConflict(
                f"{captive_id} may not be transferred while his recovery may be endangered by the journey (GC III "
                f"Arts. 46-47): {record.fitness.finding}. Record a finding that he is fit to travel, or, if his "
                "safety imperatively demands the transfer, say why in safety_demands_it"
            )
        return fact_of(MovementRecorded, captive_id, body)

    return moved


def notification(captive_id: str, body: NotificationRequest) -> MakeFact:
    """A notification that names the event it reports names one of his that Arts. 122-123 require
    notified, and is not dated before it (422)."""

    def notified(record: CaptiveRecord, at: datetime) -> NotificationSent:
        if (concerning := body.concerning_event_id) is not None:
            where = ("body", "concerning_event_id")
            reported = record.reportable.get(concerning)
            if reported is None:
                raise RequestValidationError(
                    [
                        problem(
                            where,
                            f"{concerning} is not an event of {captive_id} that Arts. 122-123 require to be "
                            "notified (his registration, or a transfer, hospitalisation, escape, recapture, "
                            "death or release, a hand-over out of custody, or an assessment finding him "
                            "seriously wounded or sick)",
                        )
                    ]
                )
            if at < reported.occurred_at:
                raise RequestValidationError(
                    [
                        problem(
                            where,
                            f"the notification at {iso(at)} is before the {reported.kind} it reports "
                            f"({iso(reported.occurred_at)})",
                        )
                    ]
                )
        return fact_of(NotificationSent, captive_id, body)

    return notified


class ProceedingsConflict(DomainConflict):
    """The stage does not follow the proceedings' recorded stage; the API answers 409."""


def prosecution(captive_id: str, body: ProsecutionRequest) -> MakeFact:
    """Proceedings are opened before they are closed, not opened twice at once, never against the
    dead, and their stages are recorded in time order (409)."""

    def staged(record: CaptiveRecord, at: datetime) -> ProsecutionRecorded:
        name, known = body.proceedings_id, record.proceedings.get(body.proceedings_id)
        if body.stage is ProsecutionStage.OPENED:
            if known is not None and known.stage is ProsecutionStage.OPENED:
                raise ProceedingsConflict(f"proceedings {name} are already open (since {iso(known.since)})")
            if record.custody is CustodyState.DEAD:
                raise ProceedingsConflict(f"no proceedings can be opened against {captive_id}, who is DEAD")
        elif known is None:
            raise ProceedingsConflict(f"proceedings {name} were never opened: there is nothing to close")
        elif known.stage is ProsecutionStage.CLOSED:
            raise ProceedingsConflict(f"proceedings {name} were already closed (at {iso(known.since)})")
        if known is not None and at < known.since:
            raise ProceedingsConflict(
                f"the stages of proceedings {name} are recorded in time order: the last one is at "
                f"{iso(known.since)}, this one at {iso(at)}"
            )
        return fact_of(ProsecutionRecorded, captive_id, body)

    return staged


# -- registration ---------------------------------------------------------------------------------


def registration(command: Command, body: RegistrationRequest, now: datetime) -> StreamAppend:
    """A new captive's stream, under a random pseudonymous id."""
    captive_id = new_captive_id()
    event = CaptiveRegistered(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
    return StreamAppend(captive_id, 0, [event], command.metadata(body.occurred_at or now))


def register_one(command: Command, body: RegistrationRequest) -> JSONResponse:
    now = utc_now()
    if problems := registration_problems(body, body.occurred_at or now, now):
        raise RequestValidationError(problems)
    return _register(command, body, lambda: [registration(command, body, now)], lambda envelopes: written(envelopes[0]))


def register_batch(command: Command, body: BatchRegistration) -> JSONResponse:
    """Each item checked on its own: one result per item, in order (201 with the new id, or 422
    with its errors); a bad item does not stop the others."""
    now = utc_now()
    parsed = parsed_batch(body, now)

    def registrations() -> list[StreamAppend]:
        return [registration(command, item, now) for item in parsed if not isinstance(item, list)]

    def answer(appended: list[EventEnvelope]) -> Answer:
        envelopes = iter(appended)
        results = []
        for index, item in enumerate(parsed):
            if isinstance(item, list):
                results.append({"index": index, "status": 422, "errors": item})
            else:
                envelope = next(envelopes)
                results.append({"index": index, "status": 201, "captive_id": envelope.subject, "event_id": envelope.id})
        created = sum(result["status"] == 201 for result in results)
        return Answer(200, {"created": created, "rejected": len(results) - created, "results": results})

    return _register(command, body, registrations, answer)


def _register(
    command: Command,
    body,
    registrations: Callable[[], list[StreamAppend]],
    answer: Callable[[list[EventEnvelope]], Answer],
) -> JSONResponse:
    """Append new captives' streams in one statement; the store's projector inserts their rows in
    one more per table: a mass capture of a thousand costs a few round trips, not thousands."""

    def decide(_session: Session) -> Decision[Answer]:
        return Decision(registrations(), lambda envelopes, _reacted: answer(envelopes))

    return command.handle(body, decide, retry_conflicts=False)


def parsed_batch(body: BatchRegistration, now: datetime) -> list[RegistrationRequest | list]:
    """Each item of a batch registration checked on its own: the registration, or its errors
    (located in the batch) for a 422 of its own."""
    parsed: list[RegistrationRequest | list] = []
    for index, item in enumerate(body.captives):
        loc = ("body", "captives", index)
        try:
            registration = RegistrationRequest.model_validate(item)
        except ValidationError as error:
            parsed.append(
                [
                    {**e, "loc": (*loc, *e["loc"])}
                    for e in error.errors(include_url=False, include_input=False, include_context=False)
                ]
            )
            continue
        problems = registration_problems(registration, registration.occurred_at or now, now, loc)
        parsed.append(problems or registration)
    return parsed
