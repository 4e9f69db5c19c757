"""Event contracts: the CloudEvents envelope, the payload model of every event type and version,
and the registry that turns bytes from Kafka back into typed events.

Importing this package registers every event type."""

from shared.contracts import access, disposition, intake, outbox, status  # noqa: F401  (registers the event types)
from shared.contracts.envelope import EventEnvelope, EventMetadata
from shared.contracts.registry import (
    DecodedEvent,
    EventPayload,
    InvalidEvent,
    UnknownEventType,
    decode,
    encode,
    event_type,
    payload_model,
    registered_types,
)

__all__ = [
    "DecodedEvent",
    "EventEnvelope",
    "EventMetadata",
    "EventPayload",
    "InvalidEvent",
    "UnknownEventType",
    "decode",
    "encode",
    "event_type",
    "payload_model",
    "registered_types",
]
