"""What a service supplies to be one: its name, tables, routes, topics, what it consumes and how
it applies events. Nothing else differs between the three."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter

from shared.auth.projections import AccessTables
from shared.commands.policy import Policies
from shared.contracts import DecodedEvent
from shared.contracts.registry import published_by
from shared.contracts.topics import PUBLISHERS
from shared.eventstore import EventStore, EventStoreTables, Sealer
from shared.eventstore.projector import Projector
from shared.eventstore.received import Handler
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
    # How it reacts to events once they are projected: its own after a command, upstream ones
    # after the consumer took them (shared/commands/policy.py).
    policies: Policies = field(default_factory=Policies)
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

    def consumer_handlers(self, store: EventStore | None, policies: Policies | None = None) -> dict[str, Handler]:
        """What the consumer does with each upstream event type: project it, then let the policies
        react (default: the service's; the runtime adds the privacy wing's key destruction). Events the
        policies react to are handed over in runs, each about a different captive; the others
        one at a time. A type nothing projects from upstream nor reacts to has no handler: the
        consumer passes it by (it still takes its place in its stream's chain)."""
        policies = self.policies if policies is None else policies
        reacted = policies.reacts_to()
        found = {}
        projected = Handler.each(lambda session, event: self.projector.apply(session, event.envelope, event.payload))
        if reacted:

            def project_and_react(session, events: list[DecodedEvent]) -> None:
                pairs = [(event.envelope, event.payload) for event in events]
                self.projector.apply_all(session, pairs)
                policies.run(session, store, pairs)

            together = Handler(project_and_react, batched=True)
        for event_type in sorted(self.projector.upstream_types() | reacted):
            found[event_type] = together if event_type in reacted else projected
        return found

    def uses(self, topic: str) -> set[str]:
        """The event types of upstream `topic` this service projects or reacts to."""
        return set(self.consumer_handlers(None)) & published_by(PUBLISHERS[topic])
