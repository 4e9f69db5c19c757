"""The status database: the event store, the facts the rules read (gathered from intake's
events and status's own), and every decision made."""

import sqlalchemy as sa

from services.system import SYSTEM
from shared.platform.db import UtcDateTime
from shared.runtime.tables import service_tables

metadata, store_tables, access, keys = service_tables(SYSTEM, "status")

# From intake.events.v1: what the rules need from each registration.
captive_facts = sa.Table(
    "captive_facts",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("nationality", sa.String(2)),
    sa.Column("claimed_affiliation", sa.String(64), nullable=False),
    sa.Column("captured_at", UtcDateTime(), nullable=False),
    sa.Column("registration_event_id", sa.String(64), nullable=False),
    sa.Index("ix_captive_facts_nationality", "nationality"),
)

# Which armed force each captive belongs to (GC III Art. 4A(1)), from intake's events: the
# registration's `armed_force` (effective from the capture) and every ForceMembershipRecorded
# (effective from its time, until another replaces it). R3 reads these, never nationality.
force_memberships = sa.Table(
    "force_memberships",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), nullable=False),
    sa.Column("effective_at", UtcDateTime(), nullable=False),
    sa.Column("stream_version", sa.Integer),  # in intake's stream of the captive: recorded order
    sa.Column("force", sa.String(200), nullable=False),
    sa.Column("force_state", sa.String(2)),
    sa.Column("integrated_in_forces_of", sa.String(2)),
    sa.Index("ix_force_memberships_captive_id", "captive_id"),
    sa.Index("ix_force_memberships_force_state", "force_state"),
    sa.Index("ix_force_memberships_integrated_in_forces_of", "integrated_in_forces_of"),
)

# Findings and tribunal events about one captive, each effective from its event's time.
legal_facts = sa.Table(
    "legal_facts",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("effective_at", UtcDateTime(), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    # the position in the captive's stream: tribunal steps at the same moment fold in recorded order
    sa.Column("stream_version", sa.Integer),
)

conflict_facts = sa.Table(
    "conflict_facts",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("state", sa.String(2)),
    sa.Column("effective_at", UtcDateTime(), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("stream_version", sa.Integer),  # the position in the conflict stream (recorded order)
)

rulebook_adoptions = sa.Table(
    "rulebook_adoptions",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("effective_at", UtcDateTime(), nullable=False),
)

# Every StatusDetermined: "as of" queries pick the latest effective one, later-recorded winning.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("effective_from", UtcDateTime(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("previous_status", sa.String(32)),
    sa.Column("rulebook_version", sa.String(32), nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Index("ix_decisions_captive_effective", "captive_id", "effective_from", "stream_version"),
)

# One row, updated at the start of every re-decision: serialises re-decisions, so a conflict fact
# and a registration arriving together cannot each miss the other.
decision_lock = sa.Table(
    "decision_lock",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("counter", sa.BigInteger, nullable=False),
)
