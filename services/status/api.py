"""The status service's HTTP API (v1): statuses (current, as of a date, history), conflict-level
facts, rulebook adoptions, legal findings and the Art. 5 tribunal."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Path, Query
from fastapi.responses import JSONResponse

from services.status import commands, tribunal
from services.status.conflict import conflict_of
from services.status.queries import decision_view, status_as_of
from services.status.requests import (
    ConflictFactRequest,
    ConveningRequest,
    FindingRequest,
    HearingRequest,
    ReviewRequest,
    RulebookRequest,
    RulingRequest,
)
from services.status.rulebook import RULEBOOKS, RULES
from services.status.tables import conflict_facts, decisions, rulebook_adoptions
from shared.auth.roles import AgencyKind, Scope
from shared.auth.standing import person_of
from shared.contracts.envelope import utc_now
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.status import (
    CONFLICT_STREAM,
    RULEBOOK_STREAM,
    ConflictFactRecorded,
    LegalFindingRecorded,
    TribunalConvened,
    TribunalHearingHeld,
    TribunalRuled,
)
from shared.web.deps import DbSession, NotFound
from shared.web.http import (
    IfMatch,
    Writer,
    iso,
    parse_as_of,
)
from shared.web.routes import Routes

routes = Routes("status")
router = routes.router

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]
AsOf = Annotated[
    str | None, Query(description="a date (2025-03-01, read as 00:00 UTC) or a datetime with a zone; default now")
]


# -- reads --------------------------------------------------------------------------------------


@routes.read("/captives/{captive_id}", Scope.STATUS_READ, 404)
def get_status(captive_id: CaptiveId, session: DbSession) -> JSONResponse:
    """The captive's legal status now, with the rules and facts behind it."""
    return status_as_of(session, captive_id, utc_now())


@routes.read("/captives/{captive_id}/status", Scope.STATUS_READ, 404)
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


@routes.read("/captives/{captive_id}/decisions", Scope.STATUS_READ, 404)
def get_decisions(captive_id: CaptiveId, session: DbSession) -> list[dict[str, Any]]:
    """Every decision recorded for the captive, in the order it was recorded."""
    rows = session.execute(
        sa.select(decisions).where(decisions.c.captive_id == captive_id).order_by(decisions.c.stream_version)
    ).all()
    if not rows:
        raise NotFound(f"no decisions for captive {captive_id}")
    return [decision_view(row) for row in rows]


@routes.read("/rulebooks", Scope.STATUS_READ)
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


@routes.read("/conflict-facts", Scope.STATUS_READ)
def get_conflict_facts(session: DbSession) -> list[dict[str, Any]]:
    rows = session.execute(sa.select(conflict_facts).order_by(conflict_facts.c.effective_at)).all()
    return [
        {"event_id": row.event_id, "effective_at": iso(row.effective_at), **row.data, "conflict": conflict_of(row.data)}
        for row in rows
    ]


# -- writes: each decided in services/status/commands.py ---------------------------------------


@routes.write("/conflict-facts", Scope.STATUS_FACTS, 409, 413)
def record_conflict_fact(body: ConflictFactRequest, command: Writer):
    """A conflict-level fact of one conflict (`conflict`, default "main"): a state acknowledged as
    a party or co-belligerent, the conflict being international (its earliest such fact is its
    beginning), or active hostilities having ceased or resumed (with one party, or with every
    party), effective from `occurred_at`. Refused with 422 when it cannot be true as dated, with
    409 when it contradicts the hostilities already recorded (docs/legal-basis.md). Every captive
    it affects is re-decided; each whose decision changes gets a StatusDetermined."""
    fact = ConflictFactRecorded(**body.model_dump(exclude={"occurred_at"}))
    checked = commands.conflict_fact(command.runtime.store, fact, body.occurred_at)
    return commands.record(command, body, CONFLICT_STREAM, checked)


@routes.write("/rulebooks", Scope.STATUS_RULEBOOK, 409, 413)
def adopt_rulebook(body: RulebookRequest, command: Writer):
    """Adopt a rulebook version from `occurred_at` on: every captive is re-decided under it."""
    commands.known_rulebook(body)
    return commands.record(command, body, RULEBOOK_STREAM, commands.adoption(body))


@routes.write("/captives/{captive_id}/findings", Scope.STATUS_FACTS, 404, 409, 413)
def record_finding(captive_id: CaptiveId, body: FindingRequest, command: Writer, if_match: IfMatch = None):
    """A legal officer's finding that a status rule reads: spying, failure to distinguish, another
    Art. 4 category, or a mercenary on all six criteria."""
    finding = LegalFindingRecorded(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
    return commands.record_about(command, captive_id, body, if_match, lambda _s: finding)


@routes.write(
    "/captives/{captive_id}/tribunal/convening",
    Scope.STATUS_CONVENE,
    404,
    409,
    413,
    also=[person_of(AgencyKind.DETAINING_STATE, AgencyKind.TRIBUNAL, step="convening an Art. 5 tribunal")],
)
def convene_tribunal(captive_id: CaptiveId, body: ConveningRequest, command: Writer, if_match: IfMatch = None):
    """Convene a competent tribunal (GC III Art. 5(2)), with the notice given to the captive.
    Only a person of the detaining state's agencies or of a tribunal, signed in as himself, may
    (403 otherwise). 409 unless no tribunal is convened for him yet (stage NONE)."""
    return commands.tribunal_step(
        command,
        captive_id,
        body,
        if_match,
        tribunal.Step.CONVENE,
        lambda _t: TribunalConvened(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"})),
    )


@routes.write(
    "/captives/{captive_id}/tribunal/hearings",
    Scope.STATUS_TRIBUNAL,
    404,
    409,
    413,
    also=[person_of(AgencyKind.TRIBUNAL, step="a tribunal's hearing")],
)
def hold_hearing(captive_id: CaptiveId, body: HearingRequest, command: Writer, if_match: IfMatch = None):
    """A hearing: whether the captive was present (or why not: absence_reason), the language it
    was held in and a language he speaks, the interpreter, the evidence examined. A hearing without
    him and without a reason is recorded but does not count as his hearing (see the ruling). Only
    a person of a tribunal, signed in as himself, may record it (403 otherwise). 409 unless the
    tribunal is convened or has already heard him, and has not ruled."""
    return commands.tribunal_step(
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


@routes.write(
    "/captives/{captive_id}/tribunal/ruling",
    Scope.STATUS_TRIBUNAL,
    404,
    409,
    413,
    also=[person_of(AgencyKind.TRIBUNAL, step="a tribunal's ruling")],
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
    return commands.tribunal_step(
        command,
        captive_id,
        body,
        if_match,
        tribunal.Step.RULE,
        lambda _t: TribunalRuled(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"})),
    )


@routes.write(
    "/captives/{captive_id}/tribunal/review",
    Scope.STATUS_TRIBUNAL,
    404,
    409,
    413,
    also=[person_of(AgencyKind.TRIBUNAL, step="a review of a tribunal's ruling")],
)
def review(captive_id: CaptiveId, body: ReviewRequest, command: Writer, if_match: IfMatch = None):
    """Review of the ruling that stands: upheld, or reversed with written reasons (reversing a
    POW ruling names the ground and the GC IV test, as a NOT_POW ruling does). 409 unless the
    tribunal has ruled, and 409 (naming each one missing) when it would leave standing a ruling
    that he is not a POW (a reversal of a POW ruling, or upholding a NOT_POW one) without the
    tribunal's guarantees on record, as for the ruling. Only a person of a tribunal, signed in as
    himself, may record it (403)."""

    reviewed = commands.reviewed(captive_id, body)
    return commands.tribunal_step(command, captive_id, body, if_match, tribunal.Step.REVIEW, reviewed)
