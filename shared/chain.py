"""Tamper evidence, part one: every stream is hash-chained. Each event carries `prevhash`, the
SHA-256 of the exact bytes of the previous event of its stream (64 zeros for the first), so the
bytes of event n are committed to by event n+1. Altering, removing or reordering an event breaks
the chain at that point, and `verify` names the first bad event of each stream.

(Not yet: a change to the last event of a stream, or the removal of a stream's last events, is
only visible against a signed checkpoint over the whole topic; see issue 6.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

GENESIS = "0" * 64


def event_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass
class Problem:
    stream: str
    where: str  # topic/partition@offset of the record where the chain breaks
    event_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.stream} at {self.where} (event {self.event_id}): {self.reason}"


@dataclass
class _Stream:
    last_version: int = 0
    last_hash: str = GENESIS
    broken: bool = False
    hashes: dict[int, str] = field(default_factory=dict)  # version -> hash, to recognise re-sent copies


@dataclass
class Verification:
    events: int = 0
    streams: int = 0
    unchained: int = 0  # recorded before chaining began
    duplicates: int = 0  # exact copies a relay re-sent after a crash: harmless, and not counted twice
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(records: Iterable) -> Verification:
    """Check every stream's chain (a stream is one service's events about one subject) in the
    order its records stand in their partition (the order the broker keeps, which is the order
    consumers apply)."""
    streams: dict[str, _Stream] = {}
    result = Verification()
    for record in records:
        result.events += 1
        where = f"{record.topic}/{record.partition}@{record.offset}"
        try:
            document = orjson.loads(record.value)
            subject, version = f"{document['source']} {document['subject']}", document["streamversion"]
            event_id, previous = document.get("id"), document.get("prevhash")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # not an event of ours: the consumers dead-letter it; it is not part of a chain
        stream = streams.setdefault(subject, _Stream())
        if stream.broken:
            continue  # report the first bad event of a stream, not every one after it
        if previous is None:
            result.unchained += 1
            stream.last_version, stream.last_hash = version, event_hash(record.value)
            continue
        if stream.hashes.get(version) == event_hash(record.value):
            result.duplicates += 1
            continue
        reason = None
        if version != stream.last_version + 1:
            reason = f"version {version} follows version {stream.last_version}: " + (
                "an event is missing or out of order"
                if version > stream.last_version + 1
                else "events were reordered or repeated"
            )
        elif previous != stream.last_hash:
            reason = (
                "its prevhash does not match the bytes of the event before it: "
                f"version {stream.last_version} was altered, or this one was"
            )
        if reason:
            stream.broken = True
            result.problems.append(Problem(subject, where, event_id, reason))
            continue
        stream.last_version, stream.last_hash = version, event_hash(record.value)
        stream.hashes[version] = stream.last_hash
    result.streams = len(streams)
    return result
