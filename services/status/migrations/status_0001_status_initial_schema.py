"""status initial schema"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import steps

revision: str = "status_0001"
down_revision: str | None = None

shared_steps = (steps.event_store,)


def upgrade() -> None:
    steps.upgrade(shared_steps)  # the event store, then this service's read models
    op.create_table(
        "captive_facts",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("nationality", sa.String(length=2), nullable=True),
        sa.Column("claimed_affiliation", sa.String(length=64), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registration_event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_captive_facts")),
    )
    op.create_table(
        "statuses",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("rulebook_version", sa.String(length=32), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_statuses")),
    )


def downgrade() -> None:
    op.drop_table("statuses")
    op.drop_table("captive_facts")
    steps.downgrade(shared_steps)
