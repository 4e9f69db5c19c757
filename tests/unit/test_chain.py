"""The per-stream hash chain: altering, removing, reordering or forging an event is detected,
and the first bad event is named."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime

import pytest

from shared.chain import GENESIS, event_hash, verify
from shared.contracts import EventEnvelope, encode

Record = namedtuple("Record", "topic partition offset key value")


def chained_stream(n: int = 4, subject: str = "CAP-0000-0000-0001") -> list[bytes]:
    raws, previous = [], GENESIS
    for version in range(1, n + 1):
        envelope = EventEnvelope(
            id=f"ev-{version}",
            source="/services/intake",
            type="IcrcVisitRecorded",
            subject=subject,
            occurred_at=datetime(2025, 2, version, tzinfo=UTC),
            recorded_at=datetime(2025, 2, version, tzinfo=UTC),
            stream_version=version,
            schema_version=1,
            correlation_id="c",
            actor="a",
            agency="b",
            previous_hash=previous,
            data={"captive_id": subject, "delegate": "D", "place": f"Camp {version}", "private_interview": True},
        )
        raw = encode(envelope)
        raws.append(raw)
        previous = event_hash(raw)
    return raws


def records(raws: list[bytes]) -> list[Record]:
    return [Record("intake.events.v1", 0, offset, b"k", raw) for offset, raw in enumerate(raws)]


def test_an_intact_chain_verifies():
    result = verify(records(chained_stream() + chained_stream(subject="CAP-0000-0000-0002")))
    assert result.ok and (result.events, result.streams) == (8, 2)


def test_an_altered_event_is_named():
    raws = chained_stream()
    raws[1] = raws[1].replace(b"Camp 2", b"Camp 9")
    [problem] = verify(records(raws)).problems
    assert problem.event_id == "ev-3" and "version 2 was altered" in problem.reason
    assert problem.where == "intake.events.v1/0@2"


def test_a_removed_event_is_detected():
    raws = chained_stream()
    del raws[1]
    [problem] = verify(records(raws)).problems
    assert problem.event_id == "ev-3" and "missing" in problem.reason


@pytest.mark.parametrize("order", [[0, 2, 1, 3], [0, 1, 3, 2], [1, 0, 2, 3]])
def test_reordered_events_are_detected(order):
    raws = chained_stream()
    assert not verify(records([raws[i] for i in order])).ok


def test_a_forged_prevhash_is_detected():
    raws = chained_stream()
    raws[2] = raws[2].replace(event_hash(raws[1]).encode(), b"f" * 64)
    [problem] = verify(records(raws)).problems
    assert problem.event_id == "ev-3"


def test_an_exact_copy_re_sent_by_the_relay_is_harmless_but_an_altered_copy_is_not():
    raws = chained_stream()
    copied = verify(records([*raws, raws[1]]))
    assert copied.ok and copied.duplicates == 1
    altered = verify(records([*raws, raws[1].replace(b"Camp 2", b"Camp 7")]))
    assert "reordered or repeated" in altered.problems[0].reason
