"""The tables every service has, made in one call at the head of its tables.py: the event store
(with the consumer's inbox, hash chains and parked records when the system pipes a topic to it),
the access-control read models, and the captive keys."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from shared.auth.projections import AccessTables, access_tables
from shared.eventstore import EventStoreTables, event_store_tables
from shared.platform.db import NAMING_CONVENTION
from shared.privacy.tables import KeyTables, key_tables
from shared.runtime.topology import System


class ServiceTables(NamedTuple):
    metadata: sa.MetaData
    store: EventStoreTables
    access: AccessTables  # partner visibility and the access log
    # The captive keys the service seals his personal data with, wrapped with its key-encryption
    # key, and the tombstones of those destroyed by IdentityErased (shared/privacy/keyring.py).
    keys: KeyTables


def service_tables(system: System, service: str) -> ServiceTables:
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    store = event_store_tables(metadata, consumes=bool(system.consumes(service)))
    return ServiceTables(metadata, store, access_tables(metadata), key_tables(metadata))
