"""Tamper evidence, part two: signed checkpoints over a service's topic.

A checkpoint states, for every partition of the topic, how many records it holds and the RFC 6962
Merkle root over them (in offset order: the broker's own append-only order), signed with the
service's Ed25519 key. Checkpoints go to `<topic>.checkpoints`. Verifying one against the topic as
it is now catches what the per-stream hash chains cannot: a changed or removed last event, a
truncated partition; and every checkpoint must still hold, so successive checkpoints are
consistent with each other (each one's leaves are a prefix of the next one's)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.broker.access import KafkaAccess
from shared.evidence import merkle, signing


def checkpoint_topic(topic: str) -> str:
    return f"{topic}.checkpoints"


def partition_leaves(records: Iterable) -> dict[int, list[bytes]]:
    """Leaf hashes per partition, in offset order."""
    leaves: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for record in records:
        leaves[record.partition].append((record.offset, merkle.leaf_hash(record.value or b"")))
    return {partition: [leaf for _, leaf in sorted(items)] for partition, items in leaves.items()}


def make_checkpoint(topic: str, leaves: dict[int, list[bytes]], key: Ed25519PrivateKey, partitions: int) -> bytes:
    """A checkpoint of `topic`, signed with the service's key (shared/evidence/signing.py)."""
    body = {
        "topic": topic,
        "partitions": {
            str(p): {"size": len(leaves.get(p, [])), "root": merkle.root(leaves.get(p, [])).hex()}
            for p in range(partitions)
        },
        "key_id": signing.key_id(key.public_key()),
    }
    signed = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return orjson.dumps({**body, "signature": key.sign(signed).hex()}, option=orjson.OPT_SORT_KEYS)


@dataclass
class CheckpointProblem:
    checkpoint: int  # its offset on the checkpoint topic
    reason: str

    def __str__(self) -> str:
        return f"checkpoint #{self.checkpoint}: {self.reason}"


def verify_checkpoints(
    topic: str, leaves: dict[int, list[bytes]], checkpoints: Iterable, pinned: Mapping[str, Ed25519PublicKey]
) -> tuple[int, list[CheckpointProblem]]:
    """Check each checkpoint's signature against the publisher's pinned keys (by key id: a
    rotated key's checkpoints still hold), and its roots against the topic as it is now. Returns
    how many checkpoints were checked, and the problems."""
    problems, checked = [], 0
    claimed: dict[str, int] = {}  # the largest size any valid checkpoint claimed per partition
    verified: dict[str, int] = {}  # the largest size whose root still holds
    for record in checkpoints:
        checked += 1
        try:
            document = orjson.loads(record.value)
            signature = bytes.fromhex(document.pop("signature"))
            public = pinned.get(document.get("key_id"))
            if public is None:
                problems.append(
                    CheckpointProblem(record.offset, f"signed with key {document.get('key_id')!r}, not pinned: forged")
                )
                continue
            public.verify(signature, orjson.dumps(document, option=orjson.OPT_SORT_KEYS))
        except (InvalidSignature, ValueError, KeyError, AttributeError, TypeError, orjson.JSONDecodeError):
            problems.append(
                CheckpointProblem(record.offset, "signature invalid for the service's key: forged or altered")
            )
            continue
        if document.get("topic") != topic:
            problems.append(CheckpointProblem(record.offset, f"is for {document.get('topic')}, not {topic}"))
            continue
        for partition, claim in document["partitions"].items():
            size, have = claim["size"], leaves.get(int(partition), [])
            if size < claimed.get(partition, 0):
                problems.append(
                    CheckpointProblem(
                        record.offset, f"partition {partition} shrank from {claimed[partition]} to {size} records"
                    )
                )
            elif len(have) < size:
                problems.append(
                    CheckpointProblem(
                        record.offset,
                        f"partition {partition} held {size} records; only {len(have)} are left (truncated)",
                    )
                )
            elif merkle.root(have[:size]).hex() != claim["root"]:
                good = verified.get(partition, 0)
                problems.append(
                    CheckpointProblem(
                        record.offset,
                        f"partition {partition}: records changed, removed or reordered; the first bad one "
                        f"is at an offset in [{good}, {size})",
                    )
                )
            else:
                verified[partition] = max(verified.get(partition, 0), size)
            claimed[partition] = max(claimed.get(partition, 0), size)
    return checked, problems


def publish(
    access: KafkaAccess, topic: str, key: Ed25519PrivateKey, *, last_sizes: dict | None = None
) -> dict[int, int] | None:
    """Sign and publish a checkpoint of `topic` as it is now; skip it (None) when nothing was
    added since `last_sizes`. Returns the partition sizes it covered."""
    from shared.broker import clients as kafka_clients

    consumer_records = list(kafka_clients.read_log(access, [topic]))
    leaves = partition_leaves(consumer_records)
    partitions = max(partition_count(access, topic), 1)
    sizes = {p: len(leaves.get(p, [])) for p in range(partitions)}
    if last_sizes is not None and sizes == last_sizes:
        return None
    producer = kafka_clients.producer(access, "checkpoints")
    try:
        producer.send(
            checkpoint_topic(topic), key=topic.encode(), value=make_checkpoint(topic, leaves, key, partitions)
        ).get(timeout=30)
    finally:
        producer.close()
    return sizes


def partition_count(access: KafkaAccess, topic: str) -> int:
    from shared.broker import clients as kafka_clients

    consumer = kafka_clients.reader(access)
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()
