"""The event store every service uses: append-only streams with optimistic concurrency, a
transactional outbox relayed to Kafka, and an inbox that makes consumption idempotent."""

from shared.eventstore.store import (
    ConcurrencyConflict,
    EventStore,
    EventTooLarge,
    Sealer,
    StoredEvent,
    StreamAppend,
    Unsealed,
)
from shared.eventstore.tables import EventStoreTables, event_store_tables

__all__ = [
    "ConcurrencyConflict",
    "EventStore",
    "EventStoreTables",
    "EventTooLarge",
    "Sealer",
    "StoredEvent",
    "StreamAppend",
    "Unsealed",
    "event_store_tables",
]
