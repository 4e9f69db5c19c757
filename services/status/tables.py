"""The status database: the event store, the facts gathered from intake, and current statuses."""

import sqlalchemy as sa

from shared.db import NAMING_CONVENTION, UtcDateTime
from shared.eventstore import event_store_tables

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
store_tables = event_store_tables(metadata)

# What the rulebook needs to know about each captive, and the event each fact came from.
captive_facts = sa.Table(
    "captive_facts",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("nationality", sa.String(2)),
    sa.Column("claimed_affiliation", sa.String(64), nullable=False),
    sa.Column("captured_at", UtcDateTime(), nullable=False),
    sa.Column("registration_event_id", sa.String(64), nullable=False),
)

statuses = sa.Table(
    "statuses",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("rulebook_version", sa.String(32), nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("effective_from", UtcDateTime(), nullable=False),
)
