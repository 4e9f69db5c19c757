"""force memberships"""

import sqlalchemy as sa
from alembic import op

revision: str = "status_0007"
down_revision: str | None = "status_0006"


def upgrade() -> None:
    # Which armed force each captive belongs to: what R3 reads (never his nationality).
    op.create_table(
        "force_memberships",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=True),
        sa.Column("force", sa.String(length=200), nullable=False),
        sa.Column("force_state", sa.String(length=2), nullable=True),
        sa.Column("integrated_in_forces_of", sa.String(length=2), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_force_memberships")),
    )
    with op.batch_alter_table("force_memberships", schema=None) as batch_op:
        batch_op.create_index("ix_force_memberships_captive_id", ["captive_id"], unique=False)
        batch_op.create_index("ix_force_memberships_force_state", ["force_state"], unique=False)
        batch_op.create_index("ix_force_memberships_integrated_in_forces_of", ["integrated_in_forces_of"], unique=False)


def downgrade() -> None:
    op.drop_table("force_memberships")
