"""The intake database: the event store (with the inbox, hash chains and parked records of its
consumer of disposition.events.v1), plus one row per captive with what cross-captive queries need
(deadlines, custody). A single captive's full record is folded from his events and the hand-overs
out of custody recorded for him (clock_facts rows of fact LEFT)."""

import sqlalchemy as sa

from services.system import SYSTEM
from shared.platform.db import UtcDateTime
from shared.runtime.tables import service_tables

# Intake consumes the hand-overs out of custody from disposition.events.v1 (services/intake/custody.py).
# Its captive keys (one AES-256 key per captive, wrapped with intake's key-encryption key) seal
# his identity data and the free text about him inside every event (shared/privacy/keyring.py).
# Erasure deletes the row and leaves a tombstone in `erased_captives`: every sealed copy of that
# data, in the events table and on the topic, can then no longer be read by anyone.
metadata, store_tables, access, keys = service_tables(SYSTEM, "intake")

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
    sa.Index("ix_captives_captured_at", "captured_at"),
)

# What the Art. 70 and Arts. 122-123 clocks read (services/intake/deadlines.py): one row per
# capture, movement, capture card, notification and medical assessment of his, and per hand-over
# out of custody consumed from disposition.events.v1, with the time it took effect. Every value is
# in clear in the events too: reference tier, but for a medical assessment's kind (whether he was
# found seriously wounded or sick: medical tier, not sealed; GET /v1/overdue shows what it starts
# only to callers who may read that tier).
clock_facts = sa.Table(
    "clock_facts",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), nullable=False),
    # The event's version in its own stream: his intake stream, or (LEFT) his disposition stream.
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),  # for the capture: when he was captured
    sa.Column("fact", sa.String(16), nullable=False),  # CAPTURED, MOVED, CARD, NOTIFIED, MEDICAL, LEFT
    # CAPTURE, the movement, the card's action, the recipient, SERIOUSLY_WOUNDED_OR_SICK or
    # NOT_SERIOUSLY_WOUNDED_OR_SICK, the custody state a hand-over left him in
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("addressee", sa.String(32)),  # a card's addressee (None: not recorded)
    sa.Column("fields_sent", sa.JSON),  # a notification's fields
    sa.Column("concerning_event_id", sa.String(200)),  # the event a notification reports
    sa.Column("destination", sa.String(200)),  # a hand-over's: the receiving state, or the commission
    # a hand-over's event type, disposition kind and disposition (or exchange list) id
    sa.Column("detail", sa.JSON),
    sa.Index("ix_clock_facts_captive", "captive_id", "stream_version"),
)

captive_keys = keys.keys
