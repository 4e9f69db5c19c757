"""The disposition database: the event store and each captive's current picture, gathered from
intake's facts and status's decisions."""

import sqlalchemy as sa

from shared.db import NAMING_CONVENTION, UtcDateTime
from shared.eventstore import event_store_tables

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
store_tables = event_store_tables(metadata)

captives = sa.Table(
    "captives",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    # From intake.events.v1 (absent until the registration arrives: topics are not ordered
    # against each other, so a status may be seen first).
    sa.Column("registration_event_id", sa.String(64)),
    sa.Column("nationality", sa.String(2)),
    sa.Column("captured_at", UtcDateTime()),
    # From status.events.v1.
    sa.Column("status", sa.String(32)),
    sa.Column("status_rulebook_version", sa.String(32)),
    sa.Column("status_rules", sa.JSON),
    sa.Column("status_event_id", sa.String(64)),
    sa.Column("status_stream_version", sa.Integer),
    sa.Column("status_effective_from", UtcDateTime()),
)
