"""Exchange lists: created, checked, proposed, approved by another person and executed, each entry
checked against the rules again at every step; what each step decides (shared/commands/pipeline.py)."""

from __future__ import annotations

import secrets
from datetime import datetime

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from services.disposition.commands import at, created, metadata_for, one_append, write
from services.disposition.dispositions import a_person, hand_over_of, not_before_what_is_known, refusal, two_persons
from services.disposition.queries import gather, list_of
from services.disposition.requests import LateStep, ListRequest
from services.disposition.rules import HandOver, exchange_eligibility
from services.disposition.workflow import (
    ExchangeList,
)
from shared.broker.clients import MAX_MESSAGE_BYTES
from shared.contracts import EventMetadata
from shared.contracts.disposition import (
    CustodyEnded,
    DispositionKind,
    ExchangeListApproved,
    ExchangeListChecked,
    ExchangeListCreated,
    ExchangeListExecuted,
    ExchangeListProposed,
    ExchangeListStepRefused,
    ListEntryResult,
    ListStep,
    list_stream,
)
from shared.contracts.status import RuleApplied
from shared.eventstore import StreamAppend
from shared.platform.errors import DomainConflict
from shared.runtime.runtime import ServiceRuntime
from shared.web.http import Command


def late_list_step(session: Session, found: ExchangeList, body: LateStep) -> None:
    if body.occurred_at is not None:
        at = body.occurred_at
        not_before_what_is_known(session, f"exchange list {found.list_id}", found.last_at, list(found.captive_ids), at)


def check_entries(
    session: Session,
    captive_ids: list[str],
    counterpart: str,
    at: datetime | None = None,
    hand_over: HandOver | None = None,
) -> list[ListEntryResult]:
    """Each entry checked against the exchange rules at `at` (at the exchange itself, `hand_over`
    asks for recently confirmed wishes too), all facts gathered in a few queries."""
    facts = gather(session, captive_ids, at)
    unknown = RuleApplied(rule_id="D0", article="GC III Art. 122", finding="BLOCKED: not a registered captive")
    results = []
    for captive_id in captive_ids:
        if captive_id not in facts:
            results.append(ListEntryResult(captive_id=captive_id, eligible=False, blocked_by=[unknown]))
            continue
        verdict = exchange_eligibility(facts[captive_id], counterpart, hand_over)
        results.append(ListEntryResult(captive_id=captive_id, eligible=verdict.allowed, blocked_by=verdict.blocked_by))
    return results


def _entries(results: list[ListEntryResult]) -> str:
    return "; ".join(
        f"{result.captive_id}: " + ", ".join(f"{r.rule_id} {r.finding}" for r in result.blocked_by)
        for result in results
    )


def list_step(command: Command, list_id: str, body: LateStep | None, step: ListStep, decide) -> JSONResponse:
    """A step of an exchange list: the transition table first (409 if it cannot follow), not dated
    before what is known, then `decide(session, the list, metadata)`, carried out by `write`."""
    body = body or LateStep()
    metadata = metadata_for(command, body)

    def produce(session: Session):
        found = list_of(command.runtime, session, list_id)
        found.next_stage(step)
        late_list_step(session, found, body)
        return decide(session, found, metadata)

    return write(command, body, produce)


def refuse_list_step(
    runtime: ServiceRuntime,
    session: Session,
    metadata: EventMetadata,
    list_id: str,
    step: ListStep,
    detail: str,
    blocked: list[ListEntryResult],
):
    parts = in_parts(blocked)
    refused = [
        ExchangeListStepRefused(
            list_id=list_id, step=step, reason=detail[:4000], blocked=part, part=number, parts=len(parts)
        )
        for number, part in enumerate(parts, start=1)
    ]
    blocked_rules = [rule for result in blocked for rule in result.blocked_by]

    def answer(envelopes):
        response = refusal(detail, blocked_rules)(envelopes)
        response.body["blocked"] = [result.model_dump(mode="json") for result in blocked]
        return response

    stream = list_stream(list_id)
    return [StreamAppend(stream, runtime.store.stream_version(session, stream), refused, metadata)], answer


def create_list(
    body: ListRequest,
    command: Command,
):
    metadata = metadata_for(command, body)

    def produce(session: Session):
        list_id = f"XL-{secrets.token_hex(5).upper()}"
        event = ExchangeListCreated(list_id=list_id, **body.model_dump(exclude={"occurred_at"}))
        return [StreamAppend(list_stream(list_id), 0, [event], metadata)], lambda envelopes: created(
            envelopes, list_id=list_id
        )

    return write(command, body, produce)


def check_list(
    list_id: str,
    command: Command,
    body: LateStep | None = None,
):
    runtime = command.runtime

    def decide(session: Session, found: ExchangeList, metadata: EventMetadata):
        results = check_entries(session, list(found.captive_ids), found.counterpart_state, at(metadata))
        parts = in_parts(results)
        checked = [
            ExchangeListChecked(list_id=list_id, results=part, part=number, parts=len(parts))
            for number, part in enumerate(parts, start=1)
        ]

        def answer(envelopes):
            eligible = sum(result.eligible for result in results)
            return created(
                envelopes,
                eligible=eligible,
                blocked=len(results) - eligible,
                results=[result.model_dump(mode="json") for result in results],
            )

        stream = list_stream(list_id)
        return [StreamAppend(stream, runtime.store.stream_version(session, stream), checked, metadata)], answer

    return list_step(command, list_id, body, ListStep.CHECK, decide)


# How much of a check's results one ExchangeListChecked holds (as JSON): a quarter of the largest
# record the broker takes, which leaves room for the envelope and for sealing.
CHECK_PART_BYTES = MAX_MESSAGE_BYTES // 4


def in_parts(results: list[ListEntryResult], budget: int = CHECK_PART_BYTES) -> list[list[ListEntryResult]]:
    """Consecutive runs of `results`, each at most `budget` bytes of JSON (one result alone may
    pass it: a result is bounded by its rules), and at least one run, empty for an empty list."""
    parts: list[list[ListEntryResult]] = [[]]
    size = 0
    for result in results:
        length = len(result.model_dump_json())
        if parts[-1] and size + length > budget:
            parts.append([])
            size = 0
        parts[-1].append(result)
        size += length
    return parts


def propose_list(
    list_id: str,
    command: Command,
    body: LateStep | None = None,
):
    a_person(command.caller, "propose")
    runtime = command.runtime

    def decide(session: Session, found: ExchangeList, metadata: EventMetadata):
        eligible = [result.captive_id for result in found.check_results if result.eligible]
        if not eligible:
            raise DomainConflict(f"no entry of exchange list {list_id} is eligible")
        event = ExchangeListProposed(list_id=list_id, captive_ids=eligible, check_event_id=found.check_event_id)
        return [one_append(runtime, session, list_stream(list_id), event, metadata)], lambda envelopes: created(
            envelopes, proposed=len(eligible)
        )

    return list_step(command, list_id, body, ListStep.PROPOSE, decide)


def approve_list(
    list_id: str,
    command: Command,
    body: LateStep | None = None,
):
    runtime = command.runtime

    def decide(session: Session, found: ExchangeList, metadata: EventMetadata):
        two_persons(found.proposer, command.caller)
        results = check_entries(session, list(found.proposed_ids), found.counterpart_state, at(metadata))
        now_blocked = [result for result in results if not result.eligible]
        if now_blocked:
            detail = f"{len(now_blocked)} entries became ineligible since the check: {_entries(now_blocked)}"
            return refuse_list_step(runtime, session, metadata, list_id, ListStep.APPROVE, detail, now_blocked)
        event = ExchangeListApproved(
            list_id=list_id, proposed_by=found.proposed_by, captive_ids=list(found.proposed_ids)
        )
        return [one_append(runtime, session, list_stream(list_id), event, metadata)], created

    return list_step(command, list_id, body, ListStep.APPROVE, decide)


def execute_list(
    list_id: str,
    command: Command,
    body: LateStep | None = None,
):
    runtime = command.runtime

    def decide(session: Session, found: ExchangeList, metadata: EventMetadata):
        hand_over = hand_over_of(runtime)
        results = check_entries(session, list(found.proposed_ids), found.counterpart_state, at(metadata), hand_over)
        exchanged = [result.captive_id for result in results if result.eligible]
        withheld = [result for result in results if not result.eligible]
        if not exchanged:
            detail = f"no approved entry of exchange list {list_id} is eligible now: {_entries(withheld)}"
            return refuse_list_step(runtime, session, metadata, list_id, ListStep.EXECUTE, detail, withheld)
        versions = runtime.store.stream_versions(session, exchanged)
        parts = in_parts(withheld)
        executed = [
            ExchangeListExecuted(
                list_id=list_id,
                captive_ids=exchanged if number == 1 else [],
                withheld=part,
                part=number,
                parts=len(parts),
                wish_confirmation_days=hand_over.wish_confirmation_days,
            )
            for number, part in enumerate(parts, start=1)
        ]
        stream = list_stream(list_id)
        appends = [StreamAppend(stream, runtime.store.stream_version(session, stream), executed, metadata)]
        appends += [
            StreamAppend(
                captive_id,
                versions[captive_id],
                [
                    CustodyEnded(
                        captive_id=captive_id,
                        kind=DispositionKind.EXCHANGE,
                        destination=found.counterpart_state,
                        disposition_id=list_id,
                    )
                ],
                metadata,
            )
            for captive_id in exchanged
        ]
        return appends, lambda envelopes: created(
            envelopes,
            exchanged=len(exchanged),
            withheld=[result.model_dump(mode="json") for result in withheld],
        )

    return list_step(command, list_id, body, ListStep.EXECUTE, decide)
