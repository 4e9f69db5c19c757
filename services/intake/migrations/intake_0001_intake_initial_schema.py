"""intake initial schema"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import steps

revision: str = "intake_0001"
down_revision: str | None = None

shared_steps = (steps.event_store,)


def upgrade() -> None:
    steps.upgrade(shared_steps)  # the event store, then this service's read models
    op.create_table(
        "captives",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nationality", sa.String(length=2), nullable=True),
        sa.Column("claimed_affiliation", sa.String(length=64), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=False),
        sa.Column("capture", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_captives")),
    )


def downgrade() -> None:
    op.drop_table("captives")
    steps.downgrade(shared_steps)
