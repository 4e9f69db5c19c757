"""legal and conflict facts in recorded order"""

import sqlalchemy as sa
from alembic import op

revision: str = "status_0006"
down_revision: str | None = "status_0005"


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
