"""A dead letter always fits the broker's limit (shared/eventstore/dead_letter_copy.py; issue 25,
item 6): a record just under the limit on its own topic, whose copy the dead-letter headers would
push over it, goes by reference."""

from __future__ import annotations

import hashlib

from shared.broker.clients import MAX_MESSAGE_BYTES, record_size
from shared.eventstore.dead_letter_copy import DLQ_RECORD_LIMIT, dead_letter_copy


def copy_of(value: bytes, key: bytes | None = b"CAP-0000-0000-0001", headers=None):
    return dead_letter_copy("p.intake.events.v1", 2, 41, key, value, headers, "p.status", "not JSON: unexpected byte")


def test_a_record_that_fits_goes_whole_with_where_it_came_from_and_why():
    copy = copy_of(b"{not json", headers=[("traceparent", b"00-abc")])
    assert (copy.key, copy.value, copy.by_reference) == (b"CAP-0000-0000-0001", b"{not json", False)
    named = dict(copy.headers)
    assert named["traceparent"] == b"00-abc" and named["dlq.original.offset"] == b"41"
    assert named["dlq.error"] == b"not JSON: unexpected byte"


def test_a_record_100_bytes_under_the_limit_goes_by_reference_and_fits():
    key = b"CAP-0000-0000-0001"
    length = MAX_MESSAGE_BYTES - 100 - record_size(key, b"", [])
    while record_size(key, b"x" * length, []) > MAX_MESSAGE_BYTES - 100:  # the length's own varint
        length -= 1
    value = b"x" * length
    assert MAX_MESSAGE_BYTES - 110 < record_size(key, value, []) <= MAX_MESSAGE_BYTES - 100  # fits its own topic
    copy = copy_of(value, key)
    assert copy.by_reference and copy.value == b"" and copy.key == key
    named = dict(copy.headers)
    assert named["dlq.original.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert named["dlq.original.bytes"] == str(len(value)).encode()
    assert named["dlq.original.topic"] == b"p.intake.events.v1" and named["dlq.original.partition"] == b"2"
    assert record_size(copy.key, copy.value, copy.headers) <= DLQ_RECORD_LIMIT


def test_a_huge_key_or_error_never_pushes_the_copy_over_the_limit():
    key = b"k" * 600_000
    copy = dead_letter_copy("t", 0, 0, key, b"v" * 600_000, None, "g", "e" * 1_000_000)
    assert copy.key is None and copy.by_reference
    assert dict(copy.headers)["dlq.original.key.sha256"] == hashlib.sha256(key).hexdigest().encode()
    assert record_size(copy.key, copy.value, copy.headers) <= DLQ_RECORD_LIMIT
