"""The intake database: the event store plus the read model of each captive's current record."""

import sqlalchemy as sa

from shared.db import NAMING_CONVENTION, UtcDateTime
from shared.eventstore import event_store_tables

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
store_tables = event_store_tables(metadata)

captives = sa.Table(
    "captives",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("registered_at", UtcDateTime(), nullable=False),
    sa.Column("nationality", sa.String(2)),
    sa.Column("claimed_affiliation", sa.String(64), nullable=False),
    sa.Column("captured_at", UtcDateTime(), nullable=False),
    sa.Column("identity", sa.JSON, nullable=False),  # the Art. 17 fields, each with its answer
    sa.Column("capture", sa.JSON, nullable=False),
)
