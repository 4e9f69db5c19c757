"""The tables of each captive's key, in every service's database: his wrapped key, and the tombstone
of one erased."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from shared.platform.db import UtcDateTime

# -- the tables every service keeps --------------------------------------------------------------


@dataclass(frozen=True)
class KeyTables:
    keys: sa.Table  # captive_id, key (wrapped), created_at
    erased: sa.Table  # captive_id, erased_at, event_id: the tombstones


def key_tables(metadata: sa.MetaData) -> KeyTables:
    """Not read models: replay never rebuilds them (a rebuilt database holds only sealed values)."""
    keys = sa.Table(
        "captive_keys",
        metadata,
        sa.Column("captive_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.LargeBinary(32), nullable=False),  # wrapped with the KEK (61 bytes)
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    erased = sa.Table(
        "erased_captives",
        metadata,
        sa.Column("captive_id", sa.String(64), primary_key=True),
        sa.Column("erased_at", UtcDateTime(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),  # the IdentityErased event
    )
    return KeyTables(keys, erased)
