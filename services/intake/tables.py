"""The intake database: the event store, plus one row per captive with what cross-captive
queries need (deadlines, custody). A single captive's full record is folded from his events."""

import sqlalchemy as sa

from shared.auth.projections import access_tables
from shared.db import NAMING_CONVENTION, UtcDateTime
from shared.eventstore import event_store_tables

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
store_tables = event_store_tables(metadata)
access = access_tables(metadata)  # partner visibility and the access log

captives = sa.Table(
    "captives",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("nationality", sa.String(2)),
    sa.Column("claimed_affiliation", sa.String(64), nullable=False),
    sa.Column("captured_at", UtcDateTime(), nullable=False),
    sa.Column("custody_state", sa.String(32), nullable=False),
    sa.Column("custody_since", UtcDateTime(), nullable=False),
    # The earliest time each obligation was met (facts may be entered late, out of order).
    sa.Column("first_arrival_at", UtcDateTime()),
    sa.Column("card_settled_at", UtcDateTime()),
    sa.Column("nib_notified_at", UtcDateTime()),
    sa.Column("cta_notified_at", UtcDateTime()),
    sa.Column("custody_ended_at", UtcDateTime()),
    sa.Index("ix_captives_captured_at", "captured_at"),
)

# One AES-256 key per captive: his identity-tier data is sealed with it inside every event
# (services/intake/keys.py). Erasure deletes the row: every sealed copy of that data, in the
# events table and on the topic, can then no longer be read by anyone.
captive_keys = sa.Table(
    "captive_keys",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
