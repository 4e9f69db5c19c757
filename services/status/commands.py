"""What the status service decides when it is asked to record something: one `decide` per kind
of write, each returning the event to append and the answer (shared/commands/pipeline.py). The
pipeline appends it, the store projects it, and the re-decision policy (services/status/policies.py)
re-decides the captives it affects, all in one transaction.

Refusals: 422 when a fact cannot be true as dated, 409 when it contradicts what is recorded
(a conflict's hostilities, the tribunal's stage or its guarantees, a rulebook already in force);
nothing is appended then."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from services.status import tribunal
from services.status.conflict import ConflictFactRefused, ConflictRecord, Entry, conflict_of
from services.status.history import Dated
from services.status.requests import RulebookRequest
from services.status.rulebook import RULEBOOKS
from services.status.tables import captive_facts, conflict_facts, rulebook_adoptions
from shared.commands.idempotency import Answer
from shared.commands.pipeline import Decision
from shared.contracts import EventPayload
from shared.contracts.envelope import utc_now
from shared.contracts.status import CONFLICT_STREAM, ConflictFactRecorded, RulebookAdopted, TribunalRulingReviewed
from shared.contracts.withheld import SEALED_KEY, withhold
from shared.eventstore import ConcurrencyConflict, EventStore, StreamAppend
from shared.platform.errors import DomainConflict
from shared.web.deps import NotFound
from shared.web.http import Command, When, iso, not_in_future, parse_if_match

MakeEvent = Callable[[Session], EventPayload]


def record(command: Command, body: When, stream: str, make_event: MakeEvent, if_match: str | None = None):
    """Append the event `make_event` decides to `stream`, as of the body's `occurred_at` (not in
    the future), in one idempotent transaction; with If-Match, only if the stream is still at
    that version (409), else a lost race is decided again from a fresh read."""
    now = utc_now()
    moment = body.occurred_at or now
    not_in_future(moment, now)
    expected = parse_if_match(if_match)
    store = command.runtime.store
    metadata = command.metadata(moment)

    def decide(session: Session) -> Decision[Answer]:
        version = store.stream_version(session, stream)
        if expected is not None and expected != version:
            raise ConcurrencyConflict(stream, expected, version)
        event = make_event(session)
        return Decision(
            [StreamAppend(stream, version, [event], metadata)],
            lambda envelopes, reacted: answered(stream, envelopes[0], reacted),
        )

    return command.handle(body, decide, retry_conflicts=expected is None)


def answered(stream: str, envelope, reacted) -> Answer:
    body = {
        "stream": stream,
        "stream_version": envelope.stream_version,
        "event_id": envelope.id,
        "decisions_changed": reacted.get("decisions_changed", 0),
    }
    return Answer(201, body, {"ETag": f'"{envelope.stream_version}"'})


def refused(loc: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", loc), "msg": message}])


# -- conflict facts and rulebooks -------------------------------------------------------------------


def conflict_record(session: Session, conflict: str) -> ConflictRecord:
    """The recorded facts of one conflict, from the read model (written with each fact)."""
    entries = [
        Entry(row.effective_at, row.stream_version or 0, row.event_id, ConflictFactRecorded.model_validate(row.data))
        for row in session.execute(sa.select(conflict_facts)).all()
        if conflict_of(row.data) == conflict
    ]
    return ConflictRecord.of(conflict, entries)


def conflict_fact(store: EventStore, fact: ConflictFactRecorded, occurred_at: datetime) -> MakeEvent:
    """The fact, unless it cannot be true as dated (422) or contradicts the hostilities recorded (409)."""

    def checked(session: Session) -> ConflictFactRecorded:
        record = conflict_record(session, fact.conflict)
        next_order = store.stream_version(session, CONFLICT_STREAM) + 1
        try:
            record.with_fact(Entry(occurred_at, next_order, None, fact))
        except ConflictFactRefused as why:
            raise refused("occurred_at", str(why)) from None
        return fact

    return checked


def known_rulebook(body: RulebookRequest) -> None:
    if body.version not in RULEBOOKS:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "version"),
                    "msg": f"unknown rulebook {body.version!r}; known: {sorted(RULEBOOKS)}",
                }
            ]
        )


def adoption(body: RulebookRequest) -> MakeEvent:
    """The adoption, unless that rulebook is the one in force already (409)."""

    def adopted(session: Session) -> RulebookAdopted:
        latest = (
            session.execute(
                sa.select(rulebook_adoptions.c.version).order_by(rulebook_adoptions.c.effective_at.desc()).limit(1)
            ).scalar()
            or "v1"
        )
        if latest == body.version:
            raise DomainConflict(f"rulebook {body.version} is already the one in force")
        return RulebookAdopted(version=body.version, reason=body.reason)

    return adopted


# -- a captive's findings and tribunal --------------------------------------------------------------


def about_captive(captive_id: str, body: When, make_event: MakeEvent) -> MakeEvent:
    """A fact about a captive this service knows (404), not dated before his capture (422)."""

    def checked(session: Session) -> EventPayload:
        captured_at = session.execute(
            sa.select(captive_facts.c.captured_at).where(captive_facts.c.captive_id == captive_id)
        ).scalar()
        if captured_at is None:
            raise NotFound(f"no captive {captive_id} known to the status service")
        if body.occurred_at is not None and body.occurred_at < captured_at:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", "occurred_at"),
                        "msg": f"{iso(body.occurred_at)} is before the capture at {iso(captured_at)}",
                    }
                ]
            )
        return make_event(session)

    return checked


def record_about(
    command: Command, captive_id: str, body: When, if_match: str | None, make_event: MakeEvent
) -> JSONResponse:
    return record(command, body, captive_id, about_captive(captive_id, body, make_event), if_match)


def tribunal_of(session: Session, store: EventStore, captive_id: str) -> tribunal.Tribunal:
    """The captive's tribunal, folded from his own tribunal events in recorded order."""
    return tribunal.fold(
        Dated(stored.envelope.occurred_at, stored.envelope.id, stored.envelope.type, published(stored.envelope.data))
        for stored in store.read_stream(session, captive_id)
        if stored.envelope.type in tribunal.TRIBUNAL_EVENTS
    )


def published(data: dict) -> dict:
    """An event's data as the read models hold it (shared/privacy/keyring.py `as_published`): a sealed
    value is there as `{"withheld": "sealed"}`, so the tribunal is folded here from what the
    status rules fold it from."""
    return withhold(data) if SEALED_KEY in data else data


def tribunal_step(
    command: Command,
    captive_id: str,
    body: When,
    if_match: str | None,
    step: tribunal.Step,
    make_event: Callable[[tribunal.Tribunal], EventPayload],
) -> JSONResponse:
    """One step of the Art. 5 tribunal: refused with 409 unless the table of
    services/status/tribunal.py lets it follow the stage the tribunal is in, and, for a ruling or
    a review, unless a ruling that he is not a POW it would leave standing has the tribunal's
    guarantees on record (tribunal.missing_guarantees). Nothing is appended when refused."""

    def checked(session: Session) -> EventPayload:
        current = tribunal_of(session, command.runtime.store, captive_id)
        at = body.occurred_at or utc_now()
        try:
            current.check(step, captive_id, at)
        except tribunal.StepRefused as why:
            raise refused(why.field, str(why)) from None
        event = make_event(current)
        if step in (tribunal.Step.RULE, tribunal.Step.REVIEW):
            current.check_guarantees(step, event.model_dump(mode="json"), captive_id, at)
        return event

    return record_about(command, captive_id, body, if_match, checked)


def reviewed(captive_id: str, body) -> Callable[[tribunal.Tribunal], EventPayload]:
    """A review of the ruling that stands, unless it cannot be made of that ruling (422)."""

    def review(current: tribunal.Tribunal) -> TribunalRulingReviewed:
        try:
            current.check_review(body.outcome, body.ground, body.gc_iv_nationality_test_met)
        except tribunal.StepRefused as why:
            raise refused(why.field, str(why)) from None
        return TribunalRulingReviewed(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))

    return review
