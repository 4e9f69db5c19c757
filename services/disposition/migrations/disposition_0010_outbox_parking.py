"""outbox parking: a row the broker refuses for good is set aside with its error; discarded events are kept

Revision ID: disposition_0010_outbox_parking
Revises: disposition_0009
Create Date: 2026-12-01 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "disposition_0010_outbox_parking"
down_revision: str | None = "disposition_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Parked: the broker refused the row for a reason retrying cannot cure; it and the later rows
    # of its stream wait for an operator (captives outbox retry), other streams go on.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("parked_error", sa.String(length=2000), nullable=True))
    # What an operator discarded (captives outbox discard): the event as stored, and who, when, why.
    op.create_table(
        "outbox_discarded",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("discarded_by", sa.String(length=200), nullable=False),
        sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_outbox_discarded")),
    )


def downgrade() -> None:
    op.drop_table("outbox_discarded")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("parked_error")
        batch_op.drop_column("parked_at")
