"""Signed Merkle checkpoints over a topic (RFC 6962 hashing, Ed25519): every tampering the hash
chains cannot see (a changed last event, a truncated partition) and a forged checkpoint are caught."""

from __future__ import annotations

import hashlib
from collections import namedtuple

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.evidence import merkle
from shared.evidence.checkpoints import make_checkpoint, partition_leaves, verify_checkpoints
from shared.evidence.signing import key_id

Record = namedtuple("Record", "topic partition offset key value")
TOPIC = "intake.events.v1"


def rfc6962_mth(leaves: list[bytes]) -> bytes:
    """The recursive definition of RFC 6962 section 2.1, to check the iterative one against."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return merkle.node_hash(rfc6962_mth(leaves[:split]), rfc6962_mth(leaves[split:]))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 33, 100])
def test_the_root_is_rfc_6962_s_merkle_tree_hash(n):
    leaves = [merkle.leaf_hash(f"event {i}".encode()) for i in range(n)]
    assert merkle.root(leaves) == rfc6962_mth(leaves)


def log(n: int, partitions: int = 2) -> list[Record]:
    return [Record(TOPIC, i % partitions, i // partitions, b"k", f'{{"event": {i}}}'.encode()) for i in range(n)]


def checkpoint(records: list[Record], key, offset: int) -> Record:
    return Record(
        f"{TOPIC}.checkpoints", 0, offset, b"intake", make_checkpoint(TOPIC, partition_leaves(records), key, 2)
    )


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def check(records, checkpoints, key):
    return verify_checkpoints(
        TOPIC, partition_leaves(records), checkpoints, {key_id(key.public_key()): key.public_key()}
    )


def test_successive_checkpoints_of_an_untouched_log_hold(key):
    records = log(10)
    checkpoints = [checkpoint(records[:6], key, 0), checkpoint(records, key, 1)]
    assert check(records, checkpoints, key) == (2, [])


def test_a_changed_last_event_is_caught(key):
    records = log(10)
    checkpoints = [checkpoint(records[:6], key, 0), checkpoint(records, key, 1)]
    records[-1] = records[-1]._replace(value=b'{"event": "rewritten"}')
    _, problems = check(records, checkpoints, key)
    assert len(problems) == 1 and "partition 1: records changed" in str(problems[0])
    assert "[3, 5)" in str(problems[0])  # the earlier checkpoint still holds: the damage is after it


def test_a_truncated_partition_is_caught(key):
    records = log(10)
    checkpoints = [checkpoint(records, key, 0)]
    _, problems = check(records[:-2], checkpoints, key)
    assert {str(problem) for problem in problems} == {
        "checkpoint #0: partition 0 held 5 records; only 4 are left (truncated)",
        "checkpoint #0: partition 1 held 5 records; only 4 are left (truncated)",
    }


@pytest.mark.parametrize("tamper", ["delete", "reorder"])
def test_a_removed_or_reordered_event_is_caught(key, tamper):
    records = log(10)
    checkpoints = [checkpoint(records, key, 0)]
    if tamper == "delete":
        records = [
            r._replace(offset=r.offset - 1) if r.partition == 0 and r.offset > 2 else r
            for r in records
            if not (r.partition == 0 and r.offset == 2)
        ]
    else:
        a, b = records[0], records[2]  # offsets 0 and 1 of partition 0
        records[0], records[2] = b._replace(offset=0), a._replace(offset=1)
    assert check(records, checkpoints, key)[1]


def test_a_forged_checkpoint_is_caught(key):
    records = log(10)
    forger = Ed25519PrivateKey.generate()
    forged = checkpoint(records, forger, 1)
    _, problems = check(records, [checkpoint(records, key, 0), forged], key)
    assert [str(problem) for problem in problems] == [
        f"checkpoint #1: signed with key '{key_id(forger.public_key())}', not pinned: forged"
    ]
    # Naming the service's key id does not help a forger: his signature does not hold for it.
    claimed = forged._replace(
        value=forged.value.replace(key_id(forger.public_key()).encode(), key_id(key.public_key()).encode())
    )
    assert "signature invalid" in str(check(records, [claimed], key)[1][0])
    altered = checkpoint(records, key, 2)
    altered = altered._replace(value=altered.value.replace(b'"size":5', b'"size":4'))
    assert "signature invalid" in str(check(records, [altered], key)[1][0])


def test_a_rotated_key_s_checkpoints_still_hold(key):
    records, newer = log(10), Ed25519PrivateKey.generate()
    pinned = {key_id(k.public_key()): k.public_key() for k in (key, newer)}
    signed = [checkpoint(records[:6], key, 0), checkpoint(records, newer, 1)]
    assert verify_checkpoints(TOPIC, partition_leaves(records), signed, pinned) == (2, [])
