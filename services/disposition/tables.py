"""The disposition database: the event store and what the disposition rules read, gathered from
intake's facts, status's decisions and disposition's own events."""

import sqlalchemy as sa

from services.system import SYSTEM
from shared.platform.db import UtcDateTime
from shared.runtime.tables import service_tables

metadata, store_tables, access, keys = service_tables(SYSTEM, "disposition")

captives = sa.Table(
    "captives",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    # From intake.events.v1 (absent until the registration arrives: topics are not ordered
    # against each other, so a status may be seen first).
    sa.Column("registration_event_id", sa.String(64)),
    sa.Column("nationality", sa.String(2)),
    sa.Column("captured_at", UtcDateTime()),
    sa.Column("in_custody", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("custody_event_id", sa.String(64)),
    sa.Column("wish", sa.JSON),  # the latest declared wish, with its provenance and event id
    sa.Column("wish_at", UtcDateTime()),
    sa.Column("seriously_wounded_or_sick", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("medical_event_id", sa.String(64)),
    sa.Column("medical_at", UtcDateTime()),
    # From status.events.v1.
    sa.Column("status", sa.String(32)),
    sa.Column("status_rulebook_version", sa.String(32)),
    sa.Column("status_rules", sa.JSON),
    sa.Column("status_event_id", sa.String(64)),
    sa.Column("status_stream_version", sa.Integer),
    sa.Column("status_effective_from", UtcDateTime()),
)

risks = sa.Table(
    "risks",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("destination", sa.String(2), primary_key=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("onward_state", sa.String(2)),
    sa.Column("diplomatic_assurances", sa.Boolean, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("assessed_at", UtcDateTime(), nullable=False),
)

partner_claims = sa.Table(
    "partner_claims",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(2), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
)

assurances = sa.Table(
    "assurances",
    metadata,
    sa.Column("state", sa.String(2), primary_key=True),
    sa.Column("willing_and_able", sa.Boolean, nullable=False),
    sa.Column("accepts_for_resettlement", sa.Boolean, nullable=False),
    sa.Column("neutral_accommodation_agreement", sa.Boolean, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
)

conflict = sa.Table(
    "conflict",
    metadata,
    sa.Column("fact", sa.String(64), primary_key=True),  # e.g. HOSTILITIES_CEASED
    sa.Column("effective_at", UtcDateTime(), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
)

# The current answer per captive and counterpart state, and every answer ever given (for as_of).
eligibility = sa.Table(
    "eligibility",
    metadata,
    sa.Column("captive_id", sa.String(64), primary_key=True),
    sa.Column("counterpart_state", sa.String(2), primary_key=True),
    sa.Column("eligible", sa.Boolean, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
)
eligibility_history = sa.Table(
    "eligibility_history",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), nullable=False),
    sa.Column("counterpart_state", sa.String(2), nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("eligible", sa.Boolean, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("effective_at", UtcDateTime(), nullable=False),
    sa.Column("recorded_at", UtcDateTime()),  # for "what did we know then" (known_at)
    sa.Index("ix_eligibility_history_captive", "captive_id", "effective_at"),
)

exchange_lists = sa.Table(
    "exchange_lists",
    metadata,
    sa.Column("list_id", sa.String(64), primary_key=True),
    sa.Column("counterpart_state", sa.String(2), nullable=False),
    sa.Column("agreement", sa.Text, nullable=False),
    sa.Column("captive_ids", sa.JSON, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),  # a ListStage (services/disposition/workflow.py)
    sa.Column("check_event_id", sa.String(64)),
    sa.Column("check_results", sa.JSON),
    sa.Column("proposed_by", sa.String(200)),
    sa.Column("proposed_ids", sa.JSON),
    sa.Column("approved_by", sa.String(200)),
    sa.Column("executed_ids", sa.JSON),  # the entries exchanged; the others stayed in custody
)
list_entries = sa.Table(
    "list_entries",
    metadata,
    sa.Column("list_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), primary_key=True, index=True),
    sa.Column("counterpart_state", sa.String(2), nullable=False),
)

dispositions = sa.Table(
    "dispositions",
    metadata,
    sa.Column("disposition_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("destination", sa.String(2)),
    sa.Column("stage", sa.String(16), nullable=False),  # a DispositionStage (services/disposition/workflow.py)
    sa.Column("proposed_by", sa.String(200), nullable=False),
    sa.Column("approved_by", sa.String(200)),
)

# Every fact the disposition rules read, dated: when it takes effect and when it was recorded.
# The rules' facts as of T, as known at K, are folded from it (services/disposition/facts.py).
# Global facts (about a state or the conflict) have no captive. `data` holds only what the rules
# read of the event, never its free text.
fact_log = sa.Table(
    "fact_log",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("captive_id", sa.String(64), index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("effective_at", UtcDateTime(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)
