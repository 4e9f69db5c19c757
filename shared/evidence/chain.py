"""Tamper evidence, part one: every stream is hash-chained. Each event carries `prevhash`, the
SHA-256 of the exact bytes of the previous event of its stream (64 zeros for the first), so the
bytes of event n are committed to by event n+1. Altering, removing or reordering an event breaks
the chain at that point, and `verify` names the first bad event of each stream.

(Not yet: a change to the last event of a stream, or the removal of a stream's last events, is
only visible against a signed checkpoint over the whole topic; see issue 6.)

`judge` is the one rule, used three ways: `verify` (captives audit verify) over a whole topic, the
consumers before they apply a record (shared/eventstore/consumer.py: a record that breaks its
stream's chain is dead-lettered, never applied), and replay (which skips what the consumers set
aside). A chain can only prove what follows what: the first event of a new stream is accepted on
its own, so a forged first event is stopped by the broker's ACLs, not by the chain.

Events recorded before chaining began carry no `prevhash` ("unchained"): they are accepted at
the start of a stream, as they were written; once a stream has a chained event, a record without
`prevhash` breaks it (stripping the hash does not get a forgery in)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

GENESIS = "0" * 64


def event_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Link:
    """What is known of one event of a stream: its version, the hash of its bytes, and whether it
    carried a prevhash."""

    version: int
    hash: str
    chained: bool = True


@dataclass(frozen=True)
class Verdict:
    kind: str  # NEXT (it follows on), DUPLICATE (an exact copy of one seen), ALTERED, BROKEN
    reason: str = ""

    @property
    def follows(self) -> bool:
        return self.kind == NEXT

    @property
    def breaks(self) -> bool:
        return self.kind in (ALTERED, BROKEN)


NEXT, DUPLICATE, ALTERED, BROKEN = "NEXT", "DUPLICATE", "ALTERED", "BROKEN"


def judge(
    version: int,
    previous: str | None,
    digest: str,
    head: Link | None,
    at_version: Link | None = None,
    *,
    trust_first: bool = False,
) -> Verdict:
    """Whether an event (its stream version, its prevhash and the hash of its bytes) follows
    `head`, the last event of its stream seen so far (None: none yet); `at_version` is the event
    seen before at this version, if any. `trust_first`: a stream with nothing seen may start at
    any version (its earlier events were applied before chains were checked)."""
    if at_version is not None:
        if at_version.hash == digest:
            return Verdict(DUPLICATE)
        return Verdict(
            ALTERED,
            f"version {version} of this stream was seen with other bytes: this record is a forgery or an altered copy",
        )
    if head is None:
        if version == 1 and previous in (None, GENESIS):
            return Verdict(NEXT)
        if version == 1:
            return Verdict(BROKEN, "the first event of a stream must have prevhash 000…0: its prevhash names another")
        if trust_first:
            return Verdict(NEXT)
        return Verdict(
            BROKEN, f"version {version} follows version 0: versions 1-{version - 1} are missing (or this is forged)"
        )
    if version != head.version + 1:
        return Verdict(
            BROKEN,
            f"version {version} follows version {head.version}: "
            + (
                "an event is missing or out of order"
                if version > head.version + 1
                else "events were reordered or repeated"
            ),
        )
    if previous is None:
        if head.chained:
            return Verdict(BROKEN, f"it has no prevhash, though version {head.version} before it was chained")
        return Verdict(NEXT)
    if previous != head.hash:
        return Verdict(
            BROKEN,
            "its prevhash does not match the bytes of the event before it: "
            f"version {head.version} was altered, or this one was (a forgery)",
        )
    return Verdict(NEXT)


def chain_fields(raw: bytes) -> tuple[str, int, str | None, str | None] | None:
    """(stream, version, prevhash, event id) of an event's bytes; None when it is not an event of
    ours (not JSON, or without a source, subject or stream version)."""
    try:
        document = orjson.loads(raw)
        stream, version = f"{document['source']} {document['subject']}", document["streamversion"]
        return stream, version, document.get("prevhash"), document.get("id")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class Chains:
    """The streams' chains as a run over records sees them (replay, verify): the last event of
    each stream and every event's hash, to recognise exact copies."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, int], Link] = {}
        self.heads: dict[str, Link] = {}

    def judge(self, raw: bytes) -> Verdict | None:
        """The verdict on one record (None: not an event of ours); a record that follows on
        becomes its stream's head."""
        fields = chain_fields(raw)
        if fields is None:
            return None
        stream, version, previous, _event_id = fields
        digest = event_hash(raw)
        verdict = judge(version, previous, digest, self.heads.get(stream), self.links.get((stream, version)))
        if verdict.follows:
            link = Link(version, digest, previous is not None)
            self.links[(stream, version)] = link
            self.heads[stream] = link
        return verdict


@dataclass
class Problem:
    stream: str
    where: str  # topic/partition@offset of the record where the chain breaks
    event_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.stream} at {self.where} (event {self.event_id}): {self.reason}"


@dataclass
class Verification:
    events: int = 0
    streams: int = 0
    unchained: int = 0  # recorded before chaining began
    duplicates: int = 0  # exact copies a relay re-sent after a crash: harmless, and not counted twice
    # Events that stood before an earlier version of their stream (republished by `captives
    # reconcile`, or moved; the signed checkpoints say whether a partition was rewritten).
    out_of_position: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def in_stream_order(records: Iterable, held_back: list | None = None) -> Iterator:
    """`records` in their order, except that a stream's event that comes before an earlier
    version of its stream waits for it: `captives reconcile` republishes events lost from a topic
    after the later events of their streams, and a run over the log (replay, verify) takes each
    stream in version order, as the consumers applied it before the loss. Whatever still waits at
    the end (a version that never came: a gap) follows then, in version order, to be judged as
    the gap it is. Records that are no event of ours pass straight through. Each record that had
    to wait is added to `held_back`, when given."""
    expected: dict[str, int] = {}  # per stream, the version that may pass next
    waiting: dict[str, dict[int, list]] = {}
    for record in records:
        fields = chain_fields(record.value)
        if fields is None:
            yield record
            continue
        stream, version = fields[0], fields[1]
        due = expected.get(stream, 1)
        if version > due:
            waiting.setdefault(stream, {}).setdefault(version, []).append(record)
            if held_back is not None:
                held_back.append(record)
            continue
        yield record
        if version == due:
            due += 1
            held = waiting.get(stream, {})
            while due in held:
                yield from held.pop(due)
                due += 1
            expected[stream] = due
            if not held:
                waiting.pop(stream, None)
    for held in waiting.values():
        for version in sorted(held):
            yield from held[version]


def verify(records: Iterable) -> Verification:
    """Check every stream's chain (a stream is one service's events about one subject) in version
    order (`in_stream_order`: the partition's order, with events republished out of position put
    back in their place), which is the order the consumers applied."""
    chains = Chains()
    broken: set[str] = set()
    result = Verification()
    moved: list = []
    for record in in_stream_order(records, moved):
        result.events += 1
        fields = chain_fields(record.value)
        if fields is None:
            continue  # not an event of ours: the consumers dead-letter it; it is not part of a chain
        stream, _version, previous, event_id = fields
        if stream in broken:
            continue  # report the first bad event of a stream, not every one after it
        verdict = chains.judge(record.value)
        if verdict.kind == DUPLICATE:
            result.duplicates += 1
        elif verdict.breaks:
            broken.add(stream)
            where = f"{record.topic}/{record.partition}@{record.offset}"
            result.problems.append(Problem(stream, where, event_id, verdict.reason))
        elif previous is None:
            result.unchained += 1
    result.streams = len(chains.heads) + len(broken - set(chains.heads))
    result.out_of_position = len(moved)
    return result
