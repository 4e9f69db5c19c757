"""Merkle tree hashing as in RFC 6962 (Certificate Transparency), section 2.1: leaves and nodes
are hashed with distinct prefixes, so a leaf can never be passed off as a node."""

from __future__ import annotations

import hashlib


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves; the empty tree hashes to SHA-256 of nothing."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Pairing left to right, carrying an odd last node up unchanged, gives the same tree as
    # RFC 6962's split at the largest power of two below n.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]
