"""The event store every service uses: append-only streams with optimistic concurrency, a
transactional outbox relayed to Kafka, and an inbox that makes consumption idempotent."""

from shared.eventstore.store import ConcurrencyConflict, EventStore, StoredEvent, StreamAppend
from shared.eventstore.tables import EventStoreTables, event_store_tables

__all__ = ["ConcurrencyConflict", "EventStore", "EventStoreTables", "StoredEvent", "StreamAppend", "event_store_tables"]
