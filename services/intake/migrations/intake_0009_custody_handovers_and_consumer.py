"""custody hand-overs and the consumer: intake consumes disposition.events.v1; clocks read medical assessments

Revision ID: intake_0009
Revises: intake_0008_outbox_parking
Create Date: 2026-12-02 10:00:00

Intake now consumes the hand-overs out of custody from disposition.events.v1 (CustodyEnded,
HandedToRepatriationCommission): its consumer gets the tables every consumer has (the hash
chains of the upstream streams, the records parked behind a dead letter, operators' decisions;
its inbox exists since intake_0001). The clock facts get a hand-over's destination and detail,
and a row per medical assessment (Art. 70 "in case of sickness", Art. 122(6)), filled here from
the assessments already recorded: whether he was found seriously wounded or sick is in clear in
every MedicalAssessed event (medical tier, not sealed).
"""

from collections.abc import Sequence
from datetime import datetime

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "intake_0009"
down_revision: str | None = "intake_0008_outbox_parking"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only auto-increments an INTEGER PRIMARY KEY (shared/eventstore/tables.py Position).
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# services/intake/projections.py
SERIOUS, NOT_SERIOUS = "SERIOUSLY_WOUNDED_OR_SICK", "NOT_SERIOUSLY_WOUNDED_OR_SICK"


def upgrade() -> None:
    with op.batch_alter_table("clock_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("destination", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))
    facts = sa.table(
        "clock_facts",
        sa.column("event_id", sa.String),
        sa.column("captive_id", sa.String),
        sa.column("stream_version", sa.Integer),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("fact", sa.String),
        sa.column("kind", sa.String),
        sa.column("addressee", sa.String),
        sa.column("fields_sent", sa.JSON),
        sa.column("concerning_event_id", sa.String),
        sa.column("destination", sa.String),
        sa.column("detail", sa.JSON),
    )
    found = op.get_bind().execute(
        sa.text("SELECT event_id, envelope FROM events WHERE event_type = 'MedicalAssessed' ORDER BY position")
    )
    rows = [_medical(event_id, orjson.loads(envelope)) for event_id, envelope in found]
    if rows:
        op.bulk_insert(facts, rows)

    # The consumer's view of the upstream streams' hash chains (shared/evidence/chain.py). Intake applied
    # no upstream event before this revision, so every stream is checked from its first event.
    op.create_table(
        "chain_links",
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("stream_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("chained", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("stream", "stream_version", name=op.f("pk_chain_links")),
    )
    # Its dead letters and what it holds behind them, per captive, in order (shared/eventstore/consumer.py).
    op.create_table(
        "parked_records",
        sa.Column("position", POSITION, autoincrement=True, nullable=False),
        sa.Column("captive", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("event_type", sa.String(length=100), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=True),
        sa.Column("record_key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request", sa.String(length=20), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=True),
        sa.Column("request_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_parked_records")),
        sa.UniqueConstraint("topic", "kafka_partition", "kafka_offset", name="uq_parked_records_record"),
    )
    op.create_index(op.f("ix_parked_records_captive"), "parked_records", ["captive"], unique=False)
    # Who redrove or discarded which dead letter, why, and what came of it (replay skips the discarded).
    op.create_table(
        "dead_letter_decisions",
        sa.Column("id", POSITION, autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("captive", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("event_type", sa.String(length=100), nullable=True),
        sa.Column("record_hash", sa.String(length=64), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_decisions")),
    )


def _medical(event_id: str, envelope: dict) -> dict:
    serious = bool(envelope["data"]["seriously_wounded_or_sick"])
    return {
        "event_id": event_id,
        "captive_id": envelope["subject"],
        "stream_version": envelope["streamversion"],
        "occurred_at": datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")),
        "fact": "MEDICAL",
        "kind": SERIOUS if serious else NOT_SERIOUS,
        "addressee": None,
        "fields_sent": None,
        "concerning_event_id": None,
        "destination": None,
        "detail": None,
    }


def downgrade() -> None:
    op.drop_table("dead_letter_decisions")
    op.drop_index(op.f("ix_parked_records_captive"), table_name="parked_records")
    op.drop_table("parked_records")
    op.drop_table("chain_links")
    op.execute(sa.text("DELETE FROM clock_facts WHERE fact IN ('MEDICAL', 'LEFT')"))
    with op.batch_alter_table("clock_facts", schema=None) as batch_op:
        batch_op.drop_column("detail")
        batch_op.drop_column("destination")
