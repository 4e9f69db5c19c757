"""The status service's HTTP API (v1): statuses (current, as of a date, history), conflict-level
facts, rulebook adoptions, legal findings and the Art. 5 tribunal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from services.status import tribunal
from services.status.conflict import HOSTILITIES, ConflictFactRefused, ConflictRecord, Entry, conflict_of
from services.status.history import Dated
from services.status.redecision import redecide
from services.status.rulebook import RULEBOOKS, RULES
from services.status.tables import captive_facts, conflict_facts, decisions, force_memberships, rulebook_adoptions
from shared.auth.gate import allow
from shared.auth.roles import AgencyKind, Scope
from shared.auth.standing import person_of
from shared.commands.idempotency import Answer
from shared.contracts import EventPayload
from shared.contracts.envelope import utc_now
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.intake import LongText
from shared.contracts.status import (
    CONFLICT_STREAM,
    DEFAULT_CONFLICT,
    RULEBOOK_STREAM,
    ConflictFact,
    ConflictFactRecorded,
    EvidenceRef,
    LegalFinding,
    LegalFindingRecorded,
    RulebookAdopted,
    TribunalConvened,
    TribunalConvening,
    TribunalHearing,
    TribunalHearingHeld,
    TribunalOutcome,
    TribunalReview,
    TribunalRuled,
    TribunalRuling,
    TribunalRulingReviewed,
)
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import SEALED_KEY, ClientInput, withhold
from shared.eventstore import ConcurrencyConflict
from shared.platform.errors import DomainConflict
from shared.runtime.runtime import ServiceRuntime
from shared.web.deps import DbSession, NotFound
from shared.web.http import (
    MAX_EVIDENCE_REFS,
    Command,
    IfMatch,
    Moment,
    When,
    Writer,
    iso,
    not_in_future,
    parse_as_of,
    parse_if_match,
)
from shared.web.refusals import refusals

router = APIRouter(prefix="/v1", tags=["status"])

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]
AsOf = Annotated[
    str | None, Query(description="a date (2025-03-01, read as 00:00 UTC) or a datetime with a zone; default now")
]


class ConflictFactRequest(ConflictFact):
    """Refused with 422 when it cannot be true as dated (before 1949-08-12; before the beginning of
    its conflict; a cessation or resumption in a conflict with no recorded beginning; a beginning
    after facts already recorded), with 409 when it contradicts the hostilities recorded (a
    cessation of hostilities that stand ceased, a resumption of hostilities that are not)."""

    occurred_at: Moment = Field(description="when the fact takes effect, e.g. the acknowledgement's date")


class RulebookRequest(When):
    version: str = Field(min_length=1, max_length=32)
    reason: LongText


class FindingRequest(LegalFinding, When, ClientInput):
    evidence_refs: list[EvidenceRef] = tiered(DataTier.IDENTITY, default_factory=list, max_length=MAX_EVIDENCE_REFS)


class ConveningRequest(TribunalConvening, When, ClientInput):
    pass


class HearingRequest(TribunalHearing, When, ClientInput):
    evidence_refs: list[EvidenceRef] = tiered(DataTier.IDENTITY, default_factory=list, max_length=MAX_EVIDENCE_REFS)

    @model_validator(mode="after")
    def _absence_only_when_absent(self):
        if self.captive_present and (self.absence_reason is not None or self.absence_details is not None):
            raise ValueError("absence_reason and absence_details are given only when the captive was not present")
        if self.absence_details is not None and self.absence_reason is None:
            raise ValueError("absence_details needs the absence_reason it describes")
        return self


class RulingRequest(TribunalRuling, When, ClientInput):
    @model_validator(mode="after")
    def _ground_for_not_pow(self):
        if self.outcome is TribunalOutcome.NOT_POW and self.ground is None:
            raise ValueError(
                "ground is required for NOT_POW: FAILURE_TO_DISTINGUISH, ESPIONAGE, MERCENARY or NOT_A_COMBATANT"
            )
        return self


class ReviewRequest(TribunalReview, When, ClientInput):
    pass


# -- reads --------------------------------------------------------------------------------------


def decision_view(row) -> dict[str, Any]:
    return {
        "captive_id": row.captive_id,
        "status": row.status,
        "previous_status": row.previous_status,
        "rulebook_version": row.rulebook_version,
        "effective_from": iso(row.effective_from),
        "recorded_at": iso(row.recorded_at),
        "rules": row.rules,
        "facts": row.facts,
        "event_id": row.event_id,
        "stream_version": row.stream_version,
    }


def status_as_of(session: Session, captive_id: str, moment: datetime, known_at: datetime | None = None) -> JSONResponse:
    """The decision in force at `moment`, among those recorded by `known_at` (default: all).
    Two timelines: "on 2025-05-20 (known_at), what did we know of the status on 2025-03-01 (as_of)?"."""
    conditions = [decisions.c.captive_id == captive_id, decisions.c.effective_from <= moment]
    if known_at is not None:
        conditions.append(decisions.c.recorded_at <= known_at)
    row = session.execute(
        sa.select(decisions)
        .where(*conditions)
        .order_by(decisions.c.effective_from.desc(), decisions.c.stream_version.desc())
        .limit(1)
    ).first()
    if row is None:
        known = session.execute(
            sa.select(captive_facts.c.captured_at).where(captive_facts.c.captive_id == captive_id)
        ).scalar()
        if known is None:
            raise NotFound(f"no status for captive {captive_id} (unknown, or its registration is still on its way)")
        if known_at is not None and known <= moment:
            raise NotFound(f"nothing was recorded about captive {captive_id} by {iso(known_at)}")
        raise NotFound(f"captive {captive_id} was not yet in our hands on {iso(moment)} (captured {iso(known)})")
    view = {**decision_view(row), "as_of": iso(moment), "known_at": iso(known_at) if known_at else None}
    return JSONResponse(view, headers={"ETag": f'"{row.stream_version}"'})


@router.get("/captives/{captive_id}", dependencies=[allow(Scope.STATUS_READ)], responses=refusals(404))
def get_status(captive_id: CaptiveId, session: DbSession) -> JSONResponse:
    """The captive's legal status now, with the rules and facts behind it."""
    return status_as_of(session, captive_id, utc_now())


@router.get("/captives/{captive_id}/status", dependencies=[allow(Scope.STATUS_READ)], responses=refusals(404))
def get_status_as_of(
    captive_id: CaptiveId,
    session: DbSession,
    as_of: AsOf = None,
    known_at: Annotated[
        str | None, Query(description="only what had been recorded by then (default: everything recorded)")
    ] = None,
) -> JSONResponse:
    """The status and its trace that held on a date: as now known, or as known at `known_at`."""
    return status_as_of(
        session,
        captive_id,
        parse_as_of(as_of) if as_of else utc_now(),
        parse_as_of(known_at, "known_at") if known_at else None,
    )


@router.get("/captives/{captive_id}/decisions", dependencies=[allow(Scope.STATUS_READ)], responses=refusals(404))
def get_decisions(captive_id: CaptiveId, session: DbSession) -> list[dict[str, Any]]:
    """Every decision recorded for the captive, in the order it was recorded."""
    rows = session.execute(
        sa.select(decisions).where(decisions.c.captive_id == captive_id).order_by(decisions.c.stream_version)
    ).all()
    if not rows:
        raise NotFound(f"no decisions for captive {captive_id}")
    return [decision_view(row) for row in rows]


@router.get(
    "/rulebooks",
    dependencies=[allow(Scope.STATUS_READ)],
)
def get_rulebooks(session: DbSession) -> dict[str, Any]:
    """The rulebook versions this service knows, their rules, and which was adopted when."""
    adopted = session.execute(sa.select(rulebook_adoptions).order_by(rulebook_adoptions.c.effective_at)).all()
    return {
        "known_versions": sorted(RULEBOOKS),
        "rules": [{"rule_id": rule.rule_id, "article": rule.article, "summary": rule.summary} for rule in RULES],
        "adoptions": [
            {"version": row.version, "effective_at": iso(row.effective_at), "event_id": row.event_id} for row in adopted
        ],
    }


@router.get(
    "/conflict-facts",
    dependencies=[allow(Scope.STATUS_READ)],
)
def get_conflict_facts(session: DbSession) -> list[dict[str, Any]]:
    rows = session.execute(sa.select(conflict_facts).order_by(conflict_facts.c.effective_at)).all()
    return [
        {"event_id": row.event_id, "effective_at": iso(row.effective_at), **row.data, "conflict": conflict_of(row.data)}
        for row in rows
    ]


# -- writes -------------------------------------------------------------------------------------


def write_and_redecide(
    command: Command,
    body: BaseModel,
    *,
    stream: str,
    make_event: Callable[[Session], EventPayload],
    occurred_at: datetime | None,
    affected: Callable[[Session, EventPayload], list[str] | None],
    if_match: str | None = None,
) -> JSONResponse:
    """Append one event to `stream`, apply it, and re-decide the captives it affects, in one
    transaction (idempotent with an Idempotency-Key; retried on a race unless If-Match was sent)."""
    now = utc_now()
    moment = occurred_at or now
    not_in_future(moment, now)
    expected = parse_if_match(if_match)
    store = command.runtime.store

    def write(session: Session) -> Answer:
        version = store.stream_version(session, stream)
        if expected is not None and expected != version:
            raise ConcurrencyConflict(stream, expected, version)
        event = make_event(session)
        metadata = command.metadata(moment)
        [envelope] = store.append(session, stream, version, [event], metadata)
        changed = redecide(session, store, affected(session, event), cause=envelope)
        answer = {
            "stream": stream,
            "stream_version": envelope.stream_version,
            "event_id": envelope.id,
            "decisions_changed": changed,
        }
        return Answer(201, answer, {"ETag": f'"{envelope.stream_version}"'})

    return command.run(body, write, retry_conflicts=expected is None)


def captives_of_state(session: Session, state: str) -> list[str]:
    """Who an acknowledgement of `state` can re-decide: every captive whose recorded membership (at
    any time) is of that state's forces or integrated in them. Never selected by nationality."""
    memberships = force_memberships.c
    found = session.execute(
        sa.select(memberships.captive_id)
        .where(sa.or_(memberships.force_state == state, memberships.integrated_in_forces_of == state))
        .distinct()
    ).scalars()
    return sorted(found)


def conflict_record(session: Session, conflict: str) -> ConflictRecord:
    """The recorded facts of one conflict, from the read model (written with each fact)."""
    entries = [
        Entry(row.effective_at, row.stream_version or 0, row.event_id, ConflictFactRecorded.model_validate(row.data))
        for row in session.execute(sa.select(conflict_facts)).all()
        if conflict_of(row.data) == conflict
    ]
    return ConflictRecord.of(conflict, entries)


def refused(loc: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", loc), "msg": message}])


@router.post("/conflict-facts", dependencies=[allow(Scope.STATUS_FACTS)], status_code=201, responses=refusals(409, 413))
def record_conflict_fact(body: ConflictFactRequest, command: Writer):
    """A conflict-level fact of one conflict (`conflict`, default "main"): a state acknowledged as
    a party or co-belligerent, the conflict being international (its earliest such fact is its
    beginning), or active hostilities having ceased or resumed (with one party, or with every
    party), effective from `occurred_at`. Refused with 422 when it cannot be true as dated, with
    409 when it contradicts the hostilities already recorded (docs/legal-basis.md). Every captive
    it affects is re-decided; each whose decision changes gets a StatusDetermined."""
    fact = ConflictFactRecorded(**body.model_dump(exclude={"occurred_at"}))

    def checked(session: Session) -> ConflictFactRecorded:
        record = conflict_record(session, fact.conflict)
        next_order = store_version(session) + 1
        try:
            record.with_fact(Entry(body.occurred_at, next_order, None, fact))
        except ConflictFactRefused as why:
            raise refused("occurred_at", str(why)) from None
        return fact

    def store_version(session: Session) -> int:
        return command.runtime.store.stream_version(session, CONFLICT_STREAM)

    def affected(session: Session, recorded: ConflictFactRecorded) -> list[str] | None:
        if recorded.conflict != DEFAULT_CONFLICT or recorded.kind in HOSTILITIES:
            return []  # status is decided in the default conflict, and hostilities do not bear on it
        return captives_of_state(session, recorded.state) if recorded.state else None

    return write_and_redecide(
        command,
        body,
        stream=CONFLICT_STREAM,
        occurred_at=body.occurred_at,
        affected=affected,
        make_event=checked,
    )


@router.post("/rulebooks", dependencies=[allow(Scope.STATUS_RULEBOOK)], status_code=201, responses=refusals(409, 413))
def adopt_rulebook(body: RulebookRequest, command: Writer):
    """Adopt a rulebook version from `occurred_at` on: every captive is re-decided under it."""
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

    def adoption(session: Session) -> RulebookAdopted:
        latest = (
            session.execute(
                sa.select(rulebook_adoptions.c.version).order_by(rulebook_adoptions.c.effective_at.desc()).limit(1)
            ).scalar()
            or "v1"
        )
        if latest == body.version:
            raise DomainConflict(f"rulebook {body.version} is already the one in force")
        return RulebookAdopted(version=body.version, reason=body.reason)

    return write_and_redecide(
        command,
        body,
        stream=RULEBOOK_STREAM,
        occurred_at=body.occurred_at,
        make_event=adoption,
        affected=lambda _s, _e: None,
    )


def captive_write(
    command: Command, captive_id: str, body: When, if_match: str | None, make_event: Callable[[Session], EventPayload]
) -> JSONResponse:
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

    return write_and_redecide(
        command,
        body,
        stream=captive_id,
        occurred_at=body.occurred_at,
        make_event=checked,
        affected=lambda _s, _e: [captive_id],
        if_match=if_match,
    )


def tribunal_of(session: Session, runtime: ServiceRuntime, captive_id: str) -> tribunal.Tribunal:
    """The captive's tribunal, folded from his own tribunal events in recorded order."""
    return tribunal.fold(
        Dated(stored.envelope.occurred_at, stored.envelope.id, stored.envelope.type, published(stored.envelope.data))
        for stored in runtime.store.read_stream(session, captive_id)
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
        current = tribunal_of(session, command.runtime, captive_id)
        at = body.occurred_at or utc_now()
        try:
            current.check(step, captive_id, at)
        except tribunal.StepRefused as why:
            raise refused(why.field, str(why)) from None
        event = make_event(current)
        if step in (tribunal.Step.RULE, tribunal.Step.REVIEW):
            current.check_guarantees(step, event.model_dump(mode="json"), captive_id, at)
        return event

    return captive_write(command, captive_id, body, if_match, checked)


@router.post(
    "/captives/{captive_id}/findings",
    dependencies=[allow(Scope.STATUS_FACTS)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def record_finding(captive_id: CaptiveId, body: FindingRequest, command: Writer, if_match: IfMatch = None):
    """A legal officer's finding that a status rule reads: spying, failure to distinguish, another
    Art. 4 category, or a mercenary on all six criteria."""
    return captive_write(
        command,
        captive_id,
        body,
        if_match,
        lambda _s: LegalFindingRecorded(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"})),
    )


@router.post(
    "/captives/{captive_id}/tribunal/convening",
    dependencies=[
        allow(Scope.STATUS_CONVENE),
        person_of(AgencyKind.DETAINING_STATE, AgencyKind.TRIBUNAL, step="convening an Art. 5 tribunal"),
    ],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def convene_tribunal(captive_id: CaptiveId, body: ConveningRequest, command: Writer, if_match: IfMatch = None):
    """Convene a competent tribunal (GC III Art. 5(2)), with the notice given to the captive.
    Only a person of the detaining state's agencies or of a tribunal, signed in as himself, may
    (403 otherwise). 409 unless no tribunal is convened for him yet (stage NONE)."""
    return tribunal_step(
        command,
        captive_id,
        body,
        if_match,
        tribunal.Step.CONVENE,
        lambda _t: TribunalConvened(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"})),
    )


@router.post(
    "/captives/{captive_id}/tribunal/hearings",
    dependencies=[allow(Scope.STATUS_TRIBUNAL), person_of(AgencyKind.TRIBUNAL, step="a tribunal's hearing")],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def hold_hearing(captive_id: CaptiveId, body: HearingRequest, command: Writer, if_match: IfMatch = None):
    """A hearing: whether the captive was present (or why not: absence_reason), the language it
    was held in and a language he speaks, the interpreter, the evidence examined. A hearing without
    him and without a reason is recorded but does not count as his hearing (see the ruling). Only
    a person of a tribunal, signed in as himself, may record it (403 otherwise). 409 unless the
    tribunal is convened or has already heard him, and has not ruled."""
    return tribunal_step(
        command,
        captive_id,
        body,
        if_match,
        tribunal.Step.HEAR,
        lambda _t: TribunalHearingHeld(
            captive_id=captive_id,
            evidence_count=len(body.evidence_refs),
            **body.model_dump(exclude={"occurred_at"}),
        ),
    )


@router.post(
    "/captives/{captive_id}/tribunal/ruling",
    dependencies=[allow(Scope.STATUS_TRIBUNAL), person_of(AgencyKind.TRIBUNAL, step="a tribunal's ruling")],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def rule(captive_id: CaptiveId, body: RulingRequest, command: Writer, if_match: IfMatch = None):
    """The tribunal's ruling with written reasons; it overrides the presumption (R8). NOT_POW
    names its ground: FAILURE_TO_DISTINGUISH gives POW-equivalent protection (AP I Art. 44(4));
    ESPIONAGE, MERCENARY (AP I Arts. 46, 47) and NOT_A_COMBATANT give GC IV where its nationality
    test is met, otherwise AP I Art. 75. 409 unless the tribunal has heard him and not yet ruled.
    A ruling of NOT_POW removes the presumption, so it is refused (409, naming each one missing)
    unless the record shows the tribunal's guarantees (GC III Art. 5(2)): notice; a hearing with
    the captive present or his absence recorded with its reason; an interpreter where he does not
    speak the language of the proceedings; evidence examined at such a hearing; written reasons. A
    ruling of POW needs none. Only a person of a tribunal, signed in as himself, may rule (403)."""
    return tribunal_step(
        command,
        captive_id,
        body,
        if_match,
        tribunal.Step.RULE,
        lambda _t: TribunalRuled(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"})),
    )


@router.post(
    "/captives/{captive_id}/tribunal/review",
    dependencies=[allow(Scope.STATUS_TRIBUNAL), person_of(AgencyKind.TRIBUNAL, step="a review of a tribunal's ruling")],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def review(captive_id: CaptiveId, body: ReviewRequest, command: Writer, if_match: IfMatch = None):
    """Review of the ruling that stands: upheld, or reversed with written reasons (reversing a
    POW ruling names the ground and the GC IV test, as a NOT_POW ruling does). 409 unless the
    tribunal has ruled, and 409 (naming each one missing) when it would leave standing a ruling
    that he is not a POW (a reversal of a POW ruling, or upholding a NOT_POW one) without the
    tribunal's guarantees on record, as for the ruling. Only a person of a tribunal, signed in as
    himself, may record it (403)."""

    def reviewed(current: tribunal.Tribunal) -> TribunalRulingReviewed:
        try:
            current.check_review(body.outcome, body.ground, body.gc_iv_nationality_test_met)
        except tribunal.StepRefused as why:
            raise refused(why.field, str(why)) from None
        return TribunalRulingReviewed(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))

    return tribunal_step(command, captive_id, body, if_match, tribunal.Step.REVIEW, reviewed)
