"""Intake's HTTP API (v1): registration (one or a batch), the later facts, the record by data
tier, the event history, and overdue obligations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, get_args

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session

from services.intake import deadlines
from services.intake.checks import fact_time_problems, problem, registration_problems
from services.intake.custody import CustodyConflict, CustodyState, LeftCustody, after
from services.intake.obligations import NOTIFIED, Obligation, Overdue
from services.intake.projections import clock_facts_as_of, handovers_of
from services.intake.record import CaptiveRecord, fold
from services.intake.tables import captives
from shared.auth.access_log import record_access
from shared.auth.gate import CallerDep, allow
from shared.auth.roles import Scope
from shared.commands.idempotency import Answer
from shared.contracts import EventPayload, registered_types
from shared.contracts.envelope import EventEnvelope, utc_now
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN, new_captive_id
from shared.contracts.intake import (
    Art17Date,
    Art17Field,
    Art17Text,
    CaptiveRegistered,
    Capture,
    CaptureCard,
    CaptureCardAction,
    CaptureCardRecorded,
    DeclaredWish,
    DisclosureConsent,
    DisclosureConsentRecorded,
    ForceMembership,
    ForceMembershipRecorded,
    IcrcVisit,
    IcrcVisitRecorded,
    IdentityAmended,
    MediaExposure,
    MediaExposureRecorded,
    MedicalAssessed,
    MedicalAssessment,
    Movement,
    MovementKind,
    MovementRecorded,
    NotifiableField,
    Notification,
    NotificationSent,
    Prosecution,
    ProsecutionRecorded,
    ProsecutionStage,
    Registration,
    WishDeclared,
)
from shared.contracts.registry import declared_in
from shared.contracts.tiers import DataTier, field_tiers, tiered
from shared.contracts.withheld import ClientInput
from shared.eventstore import ConcurrencyConflict, StreamAppend
from shared.platform.errors import DomainConflict
from shared.runtime.runtime import ServiceRuntime
from shared.web.deps import DbSession, NotFound, Runtime
from shared.web.feed import redact
from shared.web.http import Command, IfMatch, Moment, When, Writer, iso, parse_as_of, parse_if_match
from shared.web.refusals import refusals

router = APIRouter(prefix="/v1", tags=["intake"])

MAX_BATCH = 1000

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]


# Request bodies reuse the event parts, whose identity-tier fields also accept the `withheld`
# marker (for sealed or erased data); ClientInput refuses it from clients (422 naming the field)
# and leaves it out of the schemas the OpenAPI document shows them.
class CaptureRequest(Capture, ClientInput):
    captured_at: Moment = tiered(DataTier.REFERENCE)


class ForceMembershipInput(ForceMembership, ClientInput):
    @model_validator(mode="after")
    def _embedded_in_another_party(self):
        if self.integrated_in_forces_of is not None and self.integrated_in_forces_of == self.force_state:
            raise ValueError(
                "integrated_in_forces_of names another party whose forces he was embedded in; "
                f"it cannot be the force's own state ({self.force_state})"
            )
        return self


class RegistrationRequest(Registration, When, ClientInput):
    capture: CaptureRequest = tiered(DataTier.IDENTITY)  # its parts carry their own tiers
    armed_force: ForceMembershipInput | None = tiered(DataTier.REFERENCE, None)  # its parts carry their own tiers


class BatchRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    captives: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"up to {MAX_BATCH} registrations; each is checked on its own"
    )


class AmendmentRequest(When):
    model_config = ConfigDict(extra="forbid")

    field: Art17Field
    current: Art17Text | Art17Date
    reason: str = Field(min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _value_fits_field(self):
        wants_date = self.field == "date_of_birth"
        if wants_date != isinstance(self.current, Art17Date):
            raise ValueError(f"{self.field} takes a {'date' if wants_date else 'text'} value")
        return self


class MedicalAssessmentRequest(MedicalAssessment, When, ClientInput):
    pass


class MovementRequest(Movement, When, ClientInput):
    @model_validator(mode="after")
    def _certificate_with_a_death_only(self):
        # Art. 120(1)-(2): a death is recorded with its certificate; other movements have none.
        if self.kind is MovementKind.DIED and self.death_certificate is None:
            raise ValueError("death_certificate is required for DIED (Art. 120: certificate_ref and issued_by)")
        if self.kind is not MovementKind.DIED and self.death_certificate is not None:
            raise ValueError(f"death_certificate belongs to a death; {self.kind.value} takes none")
        if self.kind is not MovementKind.TRANSFERRED and self.safety_demands_it is not None:
            raise ValueError(f"safety_demands_it belongs to a transfer (Art. 47); {self.kind.value} takes none")
        return self


class IcrcVisitRequest(IcrcVisit, When, ClientInput):
    pass


class WishRequest(DeclaredWish, When, ClientInput):
    pass


class DisclosureConsentRequest(DisclosureConsent, When, ClientInput):
    pass


class CaptureCardRequest(CaptureCard, When, ClientInput):
    @model_validator(mode="after")
    def _addressed(self):
        # Art. 70: one card to his family and one to the Central Prisoners of War Agency; each
        # sent card settles only its own addressee's obligation, a declined one both.
        if self.action is CaptureCardAction.SENT and self.addressee is None:
            raise ValueError("addressee is required when the card was SENT: FAMILY or CENTRAL_AGENCY (Art. 70)")
        if self.action is CaptureCardAction.DECLINED_BY_CAPTIVE and self.addressee is not None:
            raise ValueError("a card declined by the captive is declined for both addressees: send no addressee")
        return self


class NotificationRequest(Notification, When, ClientInput):
    # Each field at most once: a notification lists what it sent, not how often.
    fields_sent: list[NotifiableField] = tiered(
        DataTier.REFERENCE, min_length=1, max_length=len(get_args(NotifiableField))
    )


class ForceMembershipRequest(ForceMembershipInput, When):
    pass


class ProsecutionRequest(Prosecution, When, ClientInput):
    @model_validator(mode="after")
    def _offence_when_opened(self):
        if self.stage is ProsecutionStage.OPENED and self.offence is None:
            raise ValueError("offence is required when proceedings are OPENED (Art. 104: the charge)")
        if self.stage is ProsecutionStage.OPENED and self.outcome is not None:
            raise ValueError("outcome is recorded when the proceedings are CLOSED, not when they are OPENED")
        return self


class MediaExposureRequest(MediaExposure, When, ClientInput):
    pass


class Written(BaseModel):
    captive_id: str
    stream_version: int
    event_id: str


# Which writes stay open once he has left the detaining state's custody (exchanged, transferred to
# another Power, repatriated, released, handed to the neutral repatriation commission), keyed by
# the request each endpoint takes: only the notifications still owed for him (Arts. 122(5), 123:
# the bureau must still tell his family and the Agency where he went). Every other fact, a card,
# a medical assessment, an ICRC visit, a movement, a death, a correction of his identity, is no
# longer the detaining state's to record: 409 naming the hand-over (services/intake/custody.py).
STILL_RECORDED: frozenset[type[When]] = frozenset({NotificationRequest})


# -- helpers ------------------------------------------------------------------------------------


def load_record(runtime: ServiceRuntime, session: Session, captive_id: str) -> CaptiveRecord:
    stored = runtime.reveal(session, runtime.store.read_stream(session, captive_id))  # identity in clear
    record = fold((item.event for item in stored), handovers_of(session, captive_id))
    if record is None:
        raise NotFound(f"no captive {captive_id}")
    return record


def written(envelope: EventEnvelope) -> Answer:
    body = Written(captive_id=envelope.subject, stream_version=envelope.stream_version, event_id=envelope.id)
    return Answer(
        201, body.model_dump(), {"ETag": f'"{envelope.stream_version}"', "Location": f"/v1/captives/{envelope.subject}"}
    )


def record_fact(
    command: Command,
    captive_id: str,
    body: When,
    make_event: Callable[[CaptiveRecord, datetime], EventPayload],
    if_match: str | None = None,
) -> JSONResponse:
    """Append one fact about an existing captive. With If-Match the write is refused (409) if the
    record moved on; without it the fact is appended to whatever is current, and a race with
    another write is retried from a fresh read (facts add to the record, they do not overwrite)."""
    expected = parse_if_match(if_match)
    runtime = command.runtime

    def write(session: Session) -> Answer:
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
        metadata = command.metadata(occurred_at)
        [envelope] = runtime.store.append(session, captive_id, record.stream_version, [event], metadata)
        return written(envelope)

    return command.run(body, write, retry_conflicts=expected is None)


def _fact(model: type[EventPayload], body: When, captive_id: str) -> EventPayload:
    return model(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))


# -- registration -------------------------------------------------------------------------------


def _registration(command: Command, body: RegistrationRequest, now: datetime) -> StreamAppend:
    captive_id = new_captive_id()
    event = CaptiveRegistered(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
    metadata = command.metadata(body.occurred_at or now)
    return StreamAppend(captive_id, 0, [event], metadata)


def _register(command: Command, session: Session, registrations: list[StreamAppend]) -> list[EventEnvelope]:
    """Append new captives' streams in one statement; the store's projector inserts their rows
    in one more per table: a mass capture of a thousand costs a few round trips, not thousands."""
    return command.runtime.store.append_batch(session, registrations)


@router.post(
    "/captives",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(413),
)
def register_captive(body: RegistrationRequest, command: Writer):
    """Register a captive: the Art. 17 fields (each GIVEN, DECLINED or UNKNOWN), nationality,
    claimed affiliation, the capture, and, only with a consent and its purpose, Art. 122(4) details.
    The captive gets a random pseudonymous id."""
    now = utc_now()
    if problems := registration_problems(body, body.occurred_at or now, now):
        raise RequestValidationError(problems)

    def write(session: Session) -> Answer:
        [envelope] = _register(command, session, [_registration(command, body, now)])
        return written(envelope)

    return command.run(body, write)


@router.post("/captives:batch", dependencies=[allow(Scope.INTAKE_REGISTER)], status_code=200, responses=refusals(413))
def register_batch(body: BatchRegistration, command: Writer):
    """Register up to 1,000 captives at once (a mass capture). Each item is checked on its own:
    the answer has one result per item, in order (201 with the new id, or 422 with the errors),
    and a bad item does not stop the others."""
    now = utc_now()
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

    def write(session: Session) -> Answer:
        registrations = [_registration(command, item, now) for item in parsed if not isinstance(item, list)]
        envelopes = iter(_register(command, session, registrations))
        results = []
        for index, item in enumerate(parsed):
            if isinstance(item, list):
                results.append({"index": index, "status": 422, "errors": item})
            else:
                envelope = next(envelopes)
                results.append({"index": index, "status": 201, "captive_id": envelope.subject, "event_id": envelope.id})
        created = sum(result["status"] == 201 for result in results)
        return Answer(200, {"created": created, "rejected": len(results) - created, "results": results})

    return command.run(body, write)


# -- reads --------------------------------------------------------------------------------------


@router.get("/captives/{captive_id}", dependencies=[allow(Scope.INTAKE_READ)], responses=refusals(404))
def get_captive(
    captive_id: CaptiveId, runtime: Runtime, session: DbSession, request: Request, caller: CallerDep
) -> JSONResponse:
    """The captive's record, one section per data tier (reference, identity, medical,
    wishes_and_risk): the sections the caller's role may read; the others are named in
    `withheld_tiers`. Reading a sensitive section is recorded in the access log."""
    record = load_record(runtime, session, captive_id)
    view = record.view()
    sections = {tier.value for tier in DataTier}
    document = {key: value for key, value in view.items() if key not in sections or DataTier(key) in caller.tiers}
    if withheld := sorted(tier.value for tier in DataTier if tier not in caller.tiers):
        document["withheld_tiers"] = withheld
    record_access(runtime, request, caller, {tier for tier in caller.tiers if view[tier.value]}, [captive_id])
    return JSONResponse(document, headers={"ETag": f'"{record.stream_version}"'})


@router.get("/captives/{captive_id}/events", dependencies=[allow(Scope.INTAKE_READ)], responses=refusals(404))
def get_history(
    captive_id: CaptiveId, runtime: Runtime, session: DbSession, request: Request, caller: CallerDep
) -> list[dict[str, Any]]:
    """Every intake event about the captive, in order, as CloudEvents JSON, each with only the
    fields of the tiers the caller may read (the others named in `redacted`); identity opened
    with his key: erased values read {"withheld": "erased"}."""
    events = runtime.reveal(session, runtime.store.read_stream(session, captive_id))
    if not events:
        raise NotFound(f"no captive {captive_id}")
    documents, shown = [], set()
    for stored in events:
        document, tiers = redact(stored.event, caller.tiers)
        documents.append(document)
        shown |= tiers
    record_access(runtime, request, caller, shown, [captive_id])
    return documents


@router.get(
    "/overdue",
    dependencies=[allow(Scope.INTAKE_OVERVIEW)],
)
def get_overdue(
    session: DbSession,
    runtime: Runtime,
    request: Request,
    caller: CallerDep,
    as_of: Annotated[
        str | None, Query(description="a date (2025-02-01, read as 00:00 UTC) or a datetime with a zone; default now")
    ] = None,
):
    """The obligations overdue as of a moment, from the facts in effect then: the Art. 70
    capture cards (to his family and to the Central Prisoners of War Agency, within a week of
    each arrival at a camp, a hospital or another camp, and of a finding that he is seriously
    wounded or sick), the Arts. 122-123 notifications to the National Information Bureau and the
    Central Tracing Agency (of the capture and of each transfer, hospitalisation, escape,
    recapture, death and release, and of each hand-over out of custody: exchange, transfer to
    another Power, repatriation, release, hand-over to the neutral repatriation commission,
    carrying the fields each must carry) and the weekly Art. 122(6) reports on the health of
    the seriously wounded or sick. Each names its article, the event that started its clock and,
    for a notification that was sent without every required field, the fields it lacked. What a
    finding of serious wounds or sickness started is medical tier: listed only for callers who
    may read that tier (the others get `withheld_tiers`), and recorded in the access log."""
    moment = parse_as_of(as_of) if as_of else utc_now()
    # nothing is overdue before its window has run out, and every clock starts at or after capture
    captured_before = moment - deadlines.SHORTEST_WINDOW
    captives_facts = clock_facts_as_of(session, moment, captured_before)
    found = [item for facts in captives_facts for item in deadlines.overdue(facts, moment)]
    medical = DataTier.MEDICAL in caller.tiers
    if not medical:
        found = [item for item in found if not item.medical]
    if sick := sorted({item.captive_id for item in found if item.medical}):
        record_access(runtime, request, caller, {DataTier.MEDICAL}, sick)
    answer = {
        "as_of": iso(moment),
        "count": len(found),
        "overdue": [_overdue_item(item) for item in found],
    }
    if not medical:
        answer["withheld_tiers"] = [DataTier.MEDICAL.value]
    return answer


def _overdue_item(item: Overdue) -> dict[str, Any]:
    shown = {
        "captive_id": item.captive_id,
        "obligation": item.obligation,
        "to": item.to,
        "article": item.article,
        "trigger": item.trigger,
        "started_by": item.started_by,
        "started_at": iso(item.started_at),
        "due_at": iso(item.due_at),
        "days_overdue": item.days_overdue,
    }
    if item.obligation in NOTIFIED:
        shown |= {
            "required_fields": list(item.required_fields),
            "missing_fields": list(item.missing_fields),
            "insufficient_notifications": list(item.insufficient_notifications),
        }
    if item.obligation == Obligation.HEALTH_REPORT:
        # the week runs from the finding (first report) or from the report before it
        shown |= {"week_from": item.since, "week_from_at": iso(item.since_at)}
    return shown


@router.get(
    "/data-tiers",
    dependencies=[allow(Scope.INTAKE_READ)],
)
def get_data_tiers() -> dict[str, dict[str, str]]:
    """The data tier of every field of every intake event (what access control filters on)."""
    return {
        name: {field: tier.value for field, tier in field_tiers(model).items()}
        for (name, _version), model in sorted(registered_types().items())
        if declared_in(model, "shared.contracts.intake")
    }


# -- later facts --------------------------------------------------------------------------------


@router.post(
    "/captives/{captive_id}/identity-amendments",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413, 428),
)
def amend_identity(captive_id: CaptiveId, body: AmendmentRequest, command: Writer, if_match: IfMatch = None):
    """Correct one Art. 17 field. Requires If-Match: an amendment overwrites a value, so it must
    be based on the current version."""
    if if_match is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            'If-Match is required: send the captive\'s current version, e.g. If-Match: "3"',
        )

    def amendment(record: CaptiveRecord, _at: datetime) -> IdentityAmended:
        return IdentityAmended(
            captive_id=captive_id,
            field=body.field,
            previous=record.identity[body.field],
            current=body.current,
            reason=body.reason,
        )

    return record_fact(command, captive_id, body, amendment, if_match)


@router.post(
    "/captives/{captive_id}/medical-assessments",
    dependencies=[allow(Scope.INTAKE_MEDICAL)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def assess_health(captive_id: CaptiveId, body: MedicalAssessmentRequest, command: Writer, if_match: IfMatch = None):
    """Health at capture or a later assessment (Arts. 30-31); 'seriously wounded or sick' counts
    for direct repatriation when a mixed medical commission found it (Art. 110, Annex I)."""
    return record_fact(command, captive_id, body, lambda _r, _t: _fact(MedicalAssessed, body, captive_id), if_match)


@router.post(
    "/captives/{captive_id}/movements",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_movement(captive_id: CaptiveId, body: MovementRequest, command: Writer, if_match: IfMatch = None):
    """Arrival at a camp, transfer, hospital, escape, death or release. Movements are recorded
    in time order and must follow from the current state (nothing after a death or a release)."""

    def movement(record: CaptiveRecord, at: datetime) -> MovementRecorded:
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
        return _fact(MovementRecorded, body, captive_id)

    return record_fact(command, captive_id, body, movement, if_match)


@router.post(
    "/captives/{captive_id}/icrc-visits",
    dependencies=[allow(Scope.INTAKE_ICRC)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_icrc_visit(captive_id: CaptiveId, body: IcrcVisitRequest, command: Writer, if_match: IfMatch = None):
    """A visit by an ICRC delegate (Art. 126), and whether he saw the captive in private."""
    return record_fact(command, captive_id, body, lambda _r, _t: _fact(IcrcVisitRecorded, body, captive_id), if_match)


@router.post(
    "/captives/{captive_id}/wishes",
    dependencies=[allow(Scope.INTAKE_ICRC)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def declare_wish(captive_id: CaptiveId, body: WishRequest, command: Writer, if_match: IfMatch = None):
    """A wish about return (repatriate / stay / a named third state / undecided) with its
    provenance: who asked, through which interpreter, in what setting, free and informed or not."""
    return record_fact(command, captive_id, body, lambda _r, _t: _fact(WishDeclared, body, captive_id), if_match)


@router.post(
    "/captives/{captive_id}/capture-card",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_capture_card(captive_id: CaptiveId, body: CaptureCardRequest, command: Writer, if_match: IfMatch = None):
    """The Art. 70 capture card: offered, sent, or declined by the captive."""
    return record_fact(command, captive_id, body, lambda _r, _t: _fact(CaptureCardRecorded, body, captive_id), if_match)


@router.post(
    "/captives/{captive_id}/notifications",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_notification(captive_id: CaptiveId, body: NotificationRequest, command: Writer, if_match: IfMatch = None):
    """Information sent to the National Information Bureau or the Central Tracing Agency
    (Arts. 122-123), with exactly which fields were sent, and optionally which of his events
    (the registration, or a transfer, hospitalisation, escape, recapture, death or release, a
    hand-over out of custody recorded by the disposition service, or an assessment finding him
    seriously wounded or sick) it reports. Still accepted after he left custody: the
    notifications of where he went are owed then (Art. 122(5))."""

    def notification(record: CaptiveRecord, at: datetime) -> NotificationSent:
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
        return _fact(NotificationSent, body, captive_id)

    return record_fact(command, captive_id, body, notification, if_match)


@router.post(
    "/captives/{captive_id}/force-membership",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_force_membership(
    captive_id: CaptiveId, body: ForceMembershipRequest, command: Writer, if_match: IfMatch = None
):
    """Which armed force he belongs to (GC III Art. 4A(1); AP I Art. 43), established or
    corrected after registration; it holds from `occurred_at`. Status reads this, never his
    nationality, to decide whether he is a member of a party's armed forces."""
    return record_fact(
        command, captive_id, body, lambda _r, _t: _fact(ForceMembershipRecorded, body, captive_id), if_match
    )


class ProceedingsConflict(DomainConflict):
    """The stage does not follow the proceedings' recorded stage; the API answers 409."""


@router.post(
    "/captives/{captive_id}/prosecutions",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_prosecution(captive_id: CaptiveId, body: ProsecutionRequest, command: Writer, if_match: IfMatch = None):
    """Judicial proceedings against him opened (with the offence charged) or closed (with the
    outcome), Arts. 82-88, 99-108. While any are open he may be kept back from release,
    repatriation and transfer (Arts. 115, 119(5)). A proceedings_id is opened before it is
    closed, and not opened twice at once (409)."""

    def prosecution(record: CaptiveRecord, at: datetime) -> ProsecutionRecorded:
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
        return _fact(ProsecutionRecorded, body, captive_id)

    return record_fact(command, captive_id, body, prosecution, if_match)


@router.post(
    "/captives/{captive_id}/media-exposures",
    dependencies=[allow(Scope.INTAKE_REGISTER)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_media_exposure(captive_id: CaptiveId, body: MediaExposureRequest, command: Writer, if_match: IfMatch = None):
    """He was exposed to public curiosity (Art. 13(2): his identity or images published), or a
    wish not to return became public, at `occurred_at`: the risk of his return rises, and older
    risk assessments of the states concerned become stale."""
    return record_fact(
        command, captive_id, body, lambda _r, _t: _fact(MediaExposureRecorded, body, captive_id), if_match
    )


@router.post(
    "/captives/{captive_id}/disclosure-consents",
    dependencies=[allow(Scope.INTAKE_ICRC)],
    status_code=201,
    response_model=Written,
    responses=refusals(404, 409, 413),
)
def record_disclosure_consent(
    captive_id: CaptiveId, body: DisclosureConsentRequest, command: Writer, if_match: IfMatch = None
):
    """The captive's consent (given: true) or its withdrawal (given: false) to his case being
    disclosed to a partner state. A partner state sees a captive only while he wishes to go there
    and this consent stands."""
    return record_fact(
        command, captive_id, body, lambda _r, _t: _fact(DisclosureConsentRecorded, body, captive_id), if_match
    )
