"""What the disposition service decides when it is asked to record the facts it owns (risk
assessments, partner-state claims, assurances, consents, Art. 12 findings), and how every one of
its writes is carried out: `write` takes what a command decided (the events and the answer) through
the command pipeline (shared/commands/pipeline.py), where the store projects them and the policies
react. Dispositions are decided in dispositions.py, exchange lists in exchange_lists.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_extra_types.country import CountryAlpha2
from sqlalchemy.orm import Session

from services.disposition.queries import RISK_KEYS, disclose, facts_of, known_captive
from services.disposition.requests import (
    Art12MeasuresRequest,
    AssuranceRequest,
    ClaimRequest,
    ConsentRequest,
    ConventionFailureRequest,
    RiskRequest,
)
from shared.commands.idempotency import Answer
from shared.commands.pipeline import Decision
from shared.contracts import EventEnvelope, EventMetadata, EventPayload
from shared.contracts.disposition import (
    Art12MeasuresRecorded,
    ConventionFailureRecorded,
    PartnerStateClaimRecorded,
    ReleaseDuringProceedingsConsented,
    RiskAssessed,
    StateAssurance,
    StateAssuranceRecorded,
    state_stream,
)
from shared.contracts.envelope import utc_now
from shared.eventstore import StreamAppend
from shared.platform.errors import DomainConflict
from shared.runtime.runtime import ServiceRuntime
from shared.web.http import Command, When, iso, not_in_future


def write(
    command: Command,
    body: BaseModel,
    produce: Callable[[Session], tuple[list[StreamAppend], Callable[[list[EventEnvelope]], Answer]]],
) -> JSONResponse:
    """Append what `produce` returns (the store projects it) and let the service's policies react
    (services/disposition/policies.py), in one idempotent transaction; the answer says how many
    eligibility answers changed when the command's events bear on eligibility. Disposition's
    consumer appends eligibility answers to the same captive streams: a command that loses such a
    race is run again from a fresh read (its checks made again, not skipped)."""

    def decide(session: Session) -> Decision[Answer]:
        appends, answer = produce(session)

        def answered(envelopes: list[EventEnvelope], reacted: Mapping[str, int]) -> Answer:
            found = answer(envelopes)
            found.body.update(reacted)  # e.g. eligibility_changes
            return found

        return Decision(appends, answered)

    return disclosed(command, command.handle(body, decide))


def disclosed(command: Command, response: JSONResponse) -> JSONResponse:
    """A write's answer that carries wishes-and-risk findings (a refusal's `blocked_by`, a list
    check's reasons per entry, the withheld entries of an execution, a replayed answer alike) is a
    read of that tier: recorded in the access log before it leaves, or withheld from a caller who
    may not read it, exactly as a GET of the same findings would be."""
    document = orjson.loads(response.body)
    if not _carries(document, RISK_KEYS):
        return response
    named = command.request.path_params.get("captive_id")
    captive_ids = sorted(_captive_ids(document) | ({named} if named else set()))
    shown = disclose(command.request, command.caller, document, captive_ids)
    if shown is document:
        return response
    kept = {name: value for name, value in response.headers.items() if name not in ("content-length", "content-type")}
    return JSONResponse(shown, status_code=response.status_code, headers=kept)


def _carries(value: Any, keys: frozenset[str]) -> bool:
    if isinstance(value, dict):
        return any((k in keys and v) or _carries(v, keys) for k, v in value.items())
    if isinstance(value, list):
        return any(_carries(item, keys) for item in value)
    return False


def _captive_ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["captive_id"]} if isinstance(value.get("captive_id"), str) else set()
        return found.union(*(_captive_ids(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_captive_ids(item) for item in value))
    return set()


def one_append(
    runtime: ServiceRuntime, session: Session, stream: str, payload: EventPayload, metadata: EventMetadata
) -> StreamAppend:
    return StreamAppend(stream, runtime.store.stream_version(session, stream), [payload], metadata)


def metadata_for(command: Command, body: When | None = None) -> EventMetadata:
    now = utc_now()
    occurred_at = getattr(body, "occurred_at", None) or now
    not_in_future(occurred_at, now)
    return command.metadata(occurred_at)


def created(envelopes: list[EventEnvelope], **extra) -> Answer:
    first = envelopes[0]
    return Answer(201, {"stream": first.subject, "stream_version": first.stream_version, "event_id": first.id, **extra})


def captive_fact(command: Command, captive_id: str, body: When, model: type[EventPayload], guard=None) -> JSONResponse:
    """Append one fact about a captive disposition knows (404) to his stream; `guard(session,
    metadata)` may refuse it first."""
    runtime, metadata = command.runtime, metadata_for(command, body)

    def produce(session: Session):
        known_captive(session, captive_id)
        if guard is not None:
            guard(session, metadata)
        event = model(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
        return [one_append(runtime, session, captive_id, event, metadata)], created

    return write(command, body, produce)


def assess_risk(captive_id: str, body: RiskRequest, command: Command):
    return captive_fact(command, captive_id, body, RiskAssessed)


def record_claim(captive_id: str, body: ClaimRequest, command: Command):
    partner = command.caller.partner_state
    if partner is not None and body.state != partner:
        raise HTTPException(403, f"a liaison of {partner} may record only {partner}'s claims, not {body.state}'s")
    return captive_fact(command, captive_id, body, PartnerStateClaimRecorded)


def record_assurance(
    state: Annotated[CountryAlpha2, Path(description="the state giving the assurance (ISO 3166-1 alpha-2)")],
    body: AssuranceRequest,
    command: Command,
):
    assurance = StateAssurance(state=state, **body.model_dump(exclude={"occurred_at"}))
    return state_fact(command, body, state, StateAssuranceRecorded(**assurance.model_dump()))


def state_fact(command: Command, body: When, state: str, event: EventPayload) -> JSONResponse:
    """Append one fact about a state (what it assures, its failure to apply the Convention, the
    measures taken about it) to the state's stream."""
    runtime, metadata = command.runtime, metadata_for(command, body)

    def produce(session: Session):
        return [one_append(runtime, session, state_stream(state), event, metadata)], created

    return write(command, body, produce)


def consent_to_leave_during_proceedings(captive_id: str, body: ConsentRequest, command: Command):
    def open_proceedings(session: Session, metadata: EventMetadata) -> None:
        facts = facts_of(session, captive_id, at(metadata))
        if body.proceedings_id not in facts.open_prosecutions:
            raise DomainConflict(
                f"no judicial proceedings {body.proceedings_id} are open against {captive_id} at {iso(at(metadata))}"
            )

    return captive_fact(command, captive_id, body, ReleaseDuringProceedingsConsented, open_proceedings)


def record_convention_failure(
    state: Annotated[CountryAlpha2, Path(description="the Power the prisoners were transferred to")],
    body: ConventionFailureRequest,
    command: Command,
):
    event = ConventionFailureRecorded(state=state, **body.model_dump(exclude={"occurred_at"}))
    return state_fact(command, body, state, event)


def record_art12_measures(
    state: Annotated[CountryAlpha2, Path(description="the Power the prisoners were transferred to")],
    body: Art12MeasuresRequest,
    command: Command,
):
    event = Art12MeasuresRecorded(state=state, **body.model_dump(exclude={"occurred_at"}))
    return state_fact(command, body, state, event)


def at(metadata: EventMetadata) -> datetime:
    return metadata.occurred_at
