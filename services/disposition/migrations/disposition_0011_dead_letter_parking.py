"""dead-letter parking: a captive's records held behind his dead letter, and operators' decisions

Revision ID: disposition_0011
Revises: disposition_0010_outbox_parking
Create Date: 2026-12-01 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "disposition_0011"
down_revision: str | None = "disposition_0010_outbox_parking"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only auto-increments an INTEGER PRIMARY KEY (shared/eventstore/tables.py Position).
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # The consumer's dead letters and what it holds behind them, per captive, in order
    # (shared/eventstore/consumer.py): what survives a restart while offsets move on.
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


def downgrade() -> None:
    op.drop_table("dead_letter_decisions")
    op.drop_index(op.f("ix_parked_records_captive"), table_name="parked_records")
    op.drop_table("parked_records")
