"""The per-stream hash chain: altering, removing, reordering or forging an event is detected,
and the first bad event is named."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime

import pytest

from shared.contracts import EventEnvelope, encode
from shared.evidence.chain import (
    ALTERED,
    BROKEN,
    DUPLICATE,
    GENESIS,
    NEXT,
    Chains,
    Link,
    event_hash,
    in_stream_order,
    judge,
    verify,
)

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
def test_reordered_events_are_judged_in_version_order_and_counted(order):
    """A stream's events out of position in the partition (what `captives reconcile` leaves) are
    judged in version order, and counted; a rewritten partition is the checkpoints' to catch."""
    raws = chained_stream()
    result = verify(records([raws[i] for i in order]))
    assert result.ok and result.out_of_position == 1


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
    assert "seen with other bytes" in altered.problems[0].reason and "altered copy" in altered.problems[0].reason


# -- the one rule the consumers, replay and verify share -------------------------------------


def test_a_stream_starts_at_version_1_with_the_genesis_prevhash_or_none_recorded_before_chaining():
    assert judge(1, GENESIS, "h1", None).follows
    assert judge(1, None, "h1", None).follows  # recorded before chaining began
    refused = judge(1, "f" * 64, "h1", None)
    assert refused.breaks and "000" in refused.reason


def test_a_stream_first_seen_past_version_1_breaks_unless_its_earlier_events_were_applied_unchecked():
    refused = judge(3, "f" * 64, "h3", None)
    assert refused.breaks and "versions 1-2 are missing" in refused.reason
    assert judge(3, "f" * 64, "h3", None, trust_first=True).follows


def test_stripping_the_prevhash_after_a_chained_event_breaks_the_chain_but_an_unchained_stream_goes_on():
    assert judge(2, None, "h2", Link(1, "h1", chained=True)).breaks
    assert judge(2, None, "h2", Link(1, "h1", chained=False)).follows


def test_an_exact_copy_is_a_duplicate_and_a_copy_with_other_bytes_is_altered():
    seen = Link(1, "h1")
    assert judge(1, GENESIS, "h1", Link(2, "h2"), seen).kind == DUPLICATE
    assert judge(1, GENESIS, "other", Link(2, "h2"), seen).kind == ALTERED


def test_what_does_not_follow_what_was_accepted_before_it_is_set_aside():
    # (An altered copy sent ahead of the real event takes its place: only checkpoints and the ACLs,
    # which keep forgers off the topic, cover the last event of a stream; see the module docstring.)
    raws = chained_stream()
    forged = raws[2].replace(b"Camp 3", b"Camp 9")
    chains = Chains()
    verdicts = [chains.judge(raw).kind for raw in [raws[0], raws[1], forged, raws[2], raws[3], raws[1]]]
    assert verdicts == [NEXT, NEXT, NEXT, ALTERED, BROKEN, DUPLICATE]
    assert chains.judge(b"not json") is None


def test_events_republished_after_later_ones_of_their_stream_verify_in_version_order():
    """`captives reconcile` after the oldest records of a partition were deleted: versions 1-2 of
    one stream come again after its versions 3-4, and after another stream's events."""
    one, two = chained_stream(subject="CAP-0000-0000-0001"), chained_stream(subject="CAP-0000-0000-0002")
    log = [one[2], two[0], one[3], two[1], two[2], two[3], one[0], one[1]]
    result = verify(records(log))
    assert result.ok and result.out_of_position == 2, [str(p) for p in result.problems]
    ordered = [r.value for r in in_stream_order(records(log))]
    assert [raw for raw in ordered if raw in one] == one and [raw for raw in ordered if raw in two] == two
    assert ordered[:3] == [two[0], two[1], two[2]]  # the other stream is not held up


def test_a_gap_still_counts_as_a_gap_after_reordering():
    one = chained_stream()
    [problem] = verify(records([one[2], one[3], one[0]])).problems  # version 2 never came back
    assert problem.event_id == "ev-3" and "version 3 follows version 1" in problem.reason


def test_reordering_passes_duplicates_and_foreign_records_through():
    one = chained_stream()
    log = [Record("t", 0, 0, b"k", b"not json"), one[0], one[0], one[1], one[1]]
    log = [r if isinstance(r, Record) else Record("intake.events.v1", 0, n, b"k", r) for n, r in enumerate(log)]
    assert [r.value for r in in_stream_order(log)] == [b"not json", one[0], one[0], one[1], one[1]]
    result = verify(log)
    assert result.ok and result.duplicates == 2
