"""A check of a long exchange list is recorded in parts, each an event the broker takes, and read
back as one check: the entries' results in order, under the id of its first part."""

from __future__ import annotations

from datetime import UTC, datetime

from services.disposition.exchange_lists import CHECK_PART_BYTES, in_parts
from services.disposition.workflow import ListStage, exchange_list
from shared.broker.clients import MAX_MESSAGE_BYTES, record_headers, record_size
from shared.contracts import EventEnvelope, encode
from shared.contracts.disposition import (
    ExchangeListChecked,
    ExchangeListCreated,
    ExchangeListExecuted,
    ExchangeListStepRefused,
    ListEntryResult,
    ListStep,
)
from shared.contracts.status import RuleApplied

AT = datetime(2025, 5, 16, tzinfo=UTC)


def results(count: int) -> list[ListEntryResult]:
    """Entries blocked by several rules with long findings: far more than 1 MiB together."""
    rules = [
        RuleApplied(rule_id=f"D{n}", article="GC III Arts. 118, 12(2)", finding=f"BLOCKED: {'real risk ' * 40}{n}")
        for n in range(1, 5)
    ]
    return [
        ListEntryResult(
            captive_id=f"CAP-0000-0000-{n:04d}", eligible=n % 7 == 0, blocked_by=[] if n % 7 == 0 else rules
        )
        for n in range(count)
    ]


def envelope(payload, version: int, event_id: str) -> EventEnvelope:
    return EventEnvelope(
        id=event_id,
        source="/services/disposition",
        type=payload.event_type,
        subject="list:XL-1",
        occurred_at=AT,
        recorded_at=AT,
        stream_version=version,
        schema_version=payload.schema_version,
        correlation_id="c-1",
        actor="Iryna Bondarenko",
        agency="ua-coordination-hq",
        previous_hash="0" * 64,
        data=payload.model_dump(mode="json"),
    )


def test_a_check_of_2000_entries_is_split_into_parts_each_within_the_brokers_limit():
    checked = results(2000)
    assert sum(len(result.model_dump_json()) for result in checked) > MAX_MESSAGE_BYTES
    parts = in_parts(checked)
    assert len(parts) > 1
    assert [result for part in parts for result in part] == checked
    for number, part in enumerate(parts, start=1):
        event = ExchangeListChecked(list_id="XL-1", results=part, part=number, parts=len(parts))
        raw = encode(envelope(event, number + 1, f"e-{number}"))
        assert record_size(b"list:XL-1", raw, record_headers("00-" + "1" * 32 + "-" + "2" * 16 + "-01", None)) < (
            MAX_MESSAGE_BYTES
        )
        assert sum(len(result.model_dump_json()) for result in part) <= CHECK_PART_BYTES


def test_a_short_list_is_checked_in_one_part_and_an_empty_check_still_has_one():
    assert in_parts(results(10)) == [results(10)]
    assert in_parts([]) == [[]]


def test_the_parts_read_back_as_one_check_under_the_first_parts_id():
    checked = results(2000)
    parts = in_parts(checked)
    created = ExchangeListCreated(
        list_id="XL-1", counterpart_state="RU", captive_ids=[r.captive_id for r in checked], agreement="Istanbul"
    )
    events = [(envelope(created, 1, "created"), created)]
    for number, part in enumerate(parts, start=1):
        event = ExchangeListChecked(list_id="XL-1", results=part, part=number, parts=len(parts))
        events.append((envelope(event, number + 1, f"check-{number}"), event))
    found = exchange_list("XL-1", events)
    assert found.stage is ListStage.CHECKED
    assert found.check_event_id == "check-1"
    assert list(found.check_results) == checked


def test_an_event_of_the_first_version_without_parts_reads_as_a_whole_check():
    old = ExchangeListChecked.model_validate({"list_id": "XL-1", "results": []})
    assert (old.part, old.parts) == (1, 1)


def _within_the_brokers_limit(event, version: int) -> bool:
    raw = encode(envelope(event, version, f"e-{version}"))
    return record_size(b"list:XL-1", raw, record_headers("00-" + "1" * 32 + "-" + "2" * 16 + "-01", None)) < (
        MAX_MESSAGE_BYTES
    )


def test_an_execution_that_withholds_2000_entries_is_recorded_in_parts_and_read_back_as_one():
    """Executing a long list whose entries became ineligible meanwhile must still be recordable:
    the withheld entries, with their reasons, would make one event larger than the broker takes."""
    withheld = [result for result in results(2000) if not result.eligible]
    exchanged = [f"CAP-0000-0001-{n:04d}" for n in range(3)]
    parts = in_parts(withheld)
    assert len(parts) > 1
    executed = [
        ExchangeListExecuted(
            list_id="XL-1",
            captive_ids=exchanged if number == 1 else [],
            withheld=part,
            part=number,
            parts=len(parts),
        )
        for number, part in enumerate(parts, start=1)
    ]
    assert all(_within_the_brokers_limit(event, number + 5) for number, event in enumerate(executed))
    state = exchange_list("XL-1", [])
    for number, event in enumerate(executed, start=1):
        state = state.apply(envelope(event, number, f"x-{number}"), event)
    assert state.stage is ListStage.EXECUTED
    assert state.executed_ids == tuple(exchanged)  # named by part 1, not undone by the others
    assert list(state.withheld) == withheld


def test_a_refusal_that_names_2000_blocked_entries_is_recorded_in_parts():
    blocked = [result for result in results(2000) if not result.eligible]
    parts = in_parts(blocked)
    refused = [
        ExchangeListStepRefused(
            list_id="XL-1", step=ListStep.EXECUTE, reason="none eligible", blocked=part, part=n, parts=len(parts)
        )
        for n, part in enumerate(parts, start=1)
    ]
    assert len(refused) > 1
    assert all(_within_the_brokers_limit(event, number + 5) for number, event in enumerate(refused))
    assert [result for event in refused for result in event.blocked] == blocked


def test_an_execution_or_refusal_of_the_first_version_without_parts_reads_as_whole():
    executed = ExchangeListExecuted.model_validate({"list_id": "XL-1", "captive_ids": ["CAP-0000-0000-0001"]})
    refused = ExchangeListStepRefused.model_validate({"list_id": "XL-1", "step": "EXECUTE", "reason": "r"})
    assert (executed.part, executed.parts, refused.part, refused.parts) == (1, 1, 1, 1)
