"""outbox parking: a row the broker refuses for good is set aside with its error

Revision ID: intake_0008_outbox_parking
Revises: intake_0007
Create Date: 2026-12-01 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0008_outbox_parking"
down_revision: str | None = "intake_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Parked: the broker refused the row for a reason retrying cannot cure; it and the later rows
    # of its stream wait for an operator (captives outbox retry), other streams go on.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("parked_error", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("parked_error")
        batch_op.drop_column("parked_at")
