"""disposition initial schema"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import steps

revision: str = "disposition_0001"
down_revision: str | None = None

shared_steps = (steps.event_store,)


def upgrade() -> None:
    steps.upgrade(shared_steps)  # the event store, then this service's read models
    op.create_table(
        "captives",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("registration_event_id", sa.String(length=64), nullable=True),
        sa.Column("nationality", sa.String(length=2), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("status_rulebook_version", sa.String(length=32), nullable=True),
        sa.Column("status_rules", sa.JSON(), nullable=True),
        sa.Column("status_event_id", sa.String(length=64), nullable=True),
        sa.Column("status_stream_version", sa.Integer(), nullable=True),
        sa.Column("status_effective_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_captives")),
    )


def downgrade() -> None:
    op.drop_table("captives")
    steps.downgrade(shared_steps)
