"""eligibility recorded_at"""

import sqlalchemy as sa
from alembic import op

revision: str = "disposition_0004"
down_revision: str | None = "disposition_0003"


def upgrade() -> None:
    with op.batch_alter_table("eligibility_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eligibility_history", schema=None) as batch_op:
        batch_op.drop_column("recorded_at")
