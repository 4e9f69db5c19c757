"""legal and conflict facts in recorded order

Revision ID: status_0006
Revises: status_0005
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "status_0006"
down_revision: str | None = "status_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The tribunal is folded from its steps in the order they were recorded (services/status/tribunal.py).
    with op.batch_alter_table("legal_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_version", sa.Integer(), nullable=True))
    # Conflict facts at the same moment (a cessation and a resumption) fold in recorded order too.
    with op.batch_alter_table("conflict_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conflict_facts", schema=None) as batch_op:
        batch_op.drop_column("stream_version")
    with op.batch_alter_table("legal_facts", schema=None) as batch_op:
        batch_op.drop_column("stream_version")
