"""What a consumer sends to `<topic>.dlq` when it sets a record aside: the original's key, value and
headers with where it came from and why (issue 25, item 6). It always fits the broker's limit: a
record that would not (one just under the limit on its own topic, whose copy the extra headers push
over it) goes by reference instead, its bytes' digest and size with the topic, partition and offset
where the original stays (topics are the log of record: nothing there is deleted). A dead letter
that cannot be sent would otherwise be retried for ever and stall its partition."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shared.broker.clients import MAX_MESSAGE_BYTES, record_size

# Room for what the producer adds around one record (batch framing), below `max_request_size`.
DLQ_RECORD_LIMIT = MAX_MESSAGE_BYTES - 1024
LONGEST_KEY = 256  # a key longer than this (never a captive id) goes by digest too
ERROR_LIMIT = 2000
OMITTED = b"omitted: too large for the dead-letter topic; read it at dlq.original.topic/partition/offset"


@dataclass(frozen=True)
class DeadLetterCopy:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def by_reference(self) -> bool:
        return any(name == "dlq.value" for name, _ in self.headers)


def dead_letter_copy(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, headers, group: str, error: str
) -> DeadLetterCopy:
    origin = [
        ("dlq.original.topic", topic.encode()),
        ("dlq.original.partition", str(partition).encode()),
        ("dlq.original.offset", str(offset).encode()),
        ("dlq.consumer.group", group.encode()),
        ("dlq.error", error[:ERROR_LIMIT].encode()),
    ]
    whole = [*(headers or []), *origin]
    if record_size(key, value or b"", whole) <= DLQ_RECORD_LIMIT:
        return DeadLetterCopy(key, value or b"", whole)
    data = value or b""
    reference = [
        *origin,
        ("dlq.original.sha256", hashlib.sha256(data).hexdigest().encode()),
        ("dlq.original.bytes", str(len(data)).encode()),
        ("dlq.value", OMITTED),
    ]
    if key is not None and len(key) > LONGEST_KEY:
        reference.append(("dlq.original.key.sha256", hashlib.sha256(key).hexdigest().encode()))
        key = None
    return DeadLetterCopy(key, b"", reference)
