"""eligibility recorded_at

Revision ID: disposition_0004
Revises: disposition_0003
Create Date: 2026-11-22 06:07:35.401796
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "disposition_0004"
down_revision: str | None = "disposition_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("eligibility_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eligibility_history", schema=None) as batch_op:
        batch_op.drop_column("recorded_at")
