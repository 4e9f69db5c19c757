"""fact log: the dated facts the disposition rules fold"""

import sqlalchemy as sa
from alembic import op

revision: str = "disposition_0007"
down_revision: str | None = "disposition_0006"


def upgrade() -> None:
    # Existing deployments fill it by `captives replay disposition` (the log of record holds
    # every fact); the migration creates it empty.
    op.create_table(
        "fact_log",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_fact_log")),
    )
    op.create_index(op.f("ix_fact_log_captive_id"), "fact_log", ["captive_id"], unique=False)
    with op.batch_alter_table("exchange_lists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("executed_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exchange_lists", schema=None) as batch_op:
        batch_op.drop_column("executed_ids")
    op.drop_index(op.f("ix_fact_log_captive_id"), table_name="fact_log")
    op.drop_table("fact_log")
