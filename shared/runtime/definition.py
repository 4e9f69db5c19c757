"""What a service supplies to be one: its name, tables, routes, topics, what it consumes and how
it applies events. Nothing else differs between the three."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter

from shared.auth.projections import AccessTables
from shared.contracts import DecodedEvent
from shared.contracts.registry import published_by
from shared.contracts.topics import PUBLISHERS
from shared.eventstore import EventStore, EventStoreTables, Sealer
from shared.eventstore.consumer import Handler
from shared.eventstore.projector import Projector
from shared.privacy.tables import KeyTables
from shared.runtime.settings import ServiceSettings
from shared.runtime.topology import System


@dataclass(frozen=True)
class ServiceDefinition:
    name: str  # "intake", "status", "disposition"
    # The system it is part of (services/system.py): its topic and what it consumes are read there.
    system: System
    settings: type[ServiceSettings]  # its settings from the environment
    metadata: sa.MetaData
    store_tables: EventStoreTables
    migrations: Path  # this service's alembic revisions
    routers: tuple[APIRouter, ...]
    # Partner-state visibility and the access log (shared/auth/projections.py), kept by every service.
    access: AccessTables
    # How every event it keeps read models of reaches them: its own as the store appends them,
    # upstream ones as the consumer takes them, both as replay rebuilds (shared/eventstore/projector.py).
    projector: Projector
    # How it reacts to upstream events once they are projected, built once the store exists:
    # {event type: handler} (a handler may take several at once: `handler.many`).
    handlers: Callable[[EventStore], Mapping[str, Handler]] = field(default=lambda store: {})
    # The read models' tables (what `captives replay <service> --verify` compares).
    projection_tables: tuple[sa.Table, ...] = ()
    title: str = ""
    # The service's captive keys (shared/privacy/keyring.py): with them its event store seals personal
    # data as events are appended, its reads open it, and IdentityErased destroys them.
    key_tables: KeyTables | None = None
    # Rewrites events' data as they are appended, for a service without key tables.
    sealer: Sealer | None = None

    @property
    def topic(self) -> str:
        """The topic this service publishes (unprefixed)."""
        return self.system.topic(self.name)

    @property
    def consumes(self) -> tuple[str, ...]:
        """The upstream topics it consumes (unprefixed)."""
        return self.system.consumes(self.name)

    def event_store(self, topic: str, sealer: Sealer | None = None) -> EventStore:
        """Its event store, publishing on `topic` (prefixed as deployed), applying its projector
        to every event appended: the service's runtime and an operator's command alike."""
        return EventStore(
            self.store_tables,
            source=self.projector.source,
            topic=topic,
            sealer=sealer or self.sealer,
            projector=self.projector,
        )

    def all_projection_tables(self) -> tuple[sa.Table, ...]:
        return (*self.projection_tables, *self.access.all)

    def consumer_handlers(self, store: EventStore) -> dict[str, Handler]:
        """What the consumer does with each upstream event type: project it, then react to it.
        A type nothing projects from upstream nor reacts to has no handler: the consumer passes
        it by (it still takes its place in its stream's chain)."""
        reactions = dict(self.handlers(store))
        composed: dict[int, Handler] = {}  # one handler per reaction: the consumer batches by handler
        found = {}
        for event_type in sorted(self.projector.upstream_types() | reactions.keys()):
            react = reactions.get(event_type)
            if id(react) not in composed:
                composed[id(react)] = _projected_then(self.projector, react)
            found[event_type] = composed[id(react)]
        return found

    def uses(self, topic: str) -> set[str]:
        """The event types of upstream `topic` this service projects or reacts to."""
        return set(self.consumer_handlers(None)) & published_by(PUBLISHERS[topic])


def _projected_then(projector: Projector, react: Handler | None) -> Handler:
    def handle(session, event: DecodedEvent) -> None:
        projector.apply(session, event.envelope, event.payload)
        if react is not None:
            react(session, event)

    if react is not None and hasattr(react, "many"):

        def handle_many(session, events: list[DecodedEvent]) -> None:
            projector.apply_all(session, [(event.envelope, event.payload) for event in events])
            react.many(session, events)

        handle.many = handle_many
    return handle
