"""What a service supplies to be one: its name, tables, routes, topics, what it consumes and how
it applies events. Nothing else differs between the three."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter

from shared.auth.projections import AccessTables
from shared.eventstore import EventStore, EventStoreTables, Sealer
from shared.eventstore.consumer import Handler
from shared.privacy.tables import KeyTables


@dataclass(frozen=True)
class ServiceDefinition:
    name: str  # "intake", "status", "disposition"
    topic: str  # the topic this service produces (unprefixed)
    consumes: tuple[str, ...]  # upstream topics (unprefixed)
    metadata: sa.MetaData
    store_tables: EventStoreTables
    migrations: Path  # this service's alembic revisions
    routers: tuple[APIRouter, ...]
    # Partner-state visibility and the access log (shared/auth/projections.py), kept by every service.
    access: AccessTables
    # Builds the event handlers once the store exists: {event type: handler}.
    handlers: Callable[[EventStore], Mapping[str, Handler]] = field(default=lambda store: {})
    # Replay: how each event (own or upstream) is applied to the read models, and which tables
    # those are (what `captives replay <service> --verify` compares).
    replay_appliers: Mapping[str, Callable] = field(default_factory=dict)
    projection_tables: tuple[sa.Table, ...] = ()
    title: str = ""
    # The service's captive keys (shared/privacy/keyring.py): with them its event store seals personal
    # data as events are appended, its reads open it, and IdentityErased destroys them.
    key_tables: KeyTables | None = None
    # Rewrites events' data as they are appended, for a service without key tables.
    sealer: Sealer | None = None

    def all_replay_appliers(self) -> dict[str, Callable]:
        """The service's appliers plus the access-control read models'; both run where both apply."""
        merged: dict[str, Callable] = dict(self.replay_appliers)
        for event_type, extra in self.access.appliers().items():
            if event_type == "DataAccessed":
                # Each service's access log holds the reads of its own data (its own topic): a
                # replay also reads upstream topics, where the other services' reads are.
                extra = _own(self.name, extra)
            merged[event_type] = extra if event_type not in merged else _both(extra, merged[event_type])
        return merged

    def all_projection_tables(self) -> tuple[sa.Table, ...]:
        return (*self.projection_tables, *self.access.all)

    def all_handlers(self, store: EventStore) -> dict[str, Handler]:
        merged: dict[str, Handler] = dict(self.handlers(store))
        for event_type, extra in self.access.handlers().items():
            merged[event_type] = extra if event_type not in merged else _both(extra, merged[event_type])
        return merged


def _own(service: str, apply: Callable) -> Callable:
    source = f"/services/{service}"

    def own(session, envelope, payload):
        if envelope.source == source:
            apply(session, envelope, payload)

    return own


def _both(first: Callable, second: Callable) -> Callable:
    def both(*args):
        first(*args)
        second(*args)

    return both
