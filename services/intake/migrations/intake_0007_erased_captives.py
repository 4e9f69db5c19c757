"""erased captives: a tombstone for every captive whose key was destroyed

Revision ID: intake_0007
Revises: intake_0006
Create Date: 2026-12-01 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0007"
down_revision: str | None = "intake_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Tombstones: whose key IdentityErased destroyed (later writes about him are refused).
    op.create_table(
        "erased_captives",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_erased_captives")),
    )
    # Captives erased before tombstones existed: their IdentityErased events say so.
    op.execute(
        "INSERT INTO erased_captives (captive_id, erased_at, event_id) "
        "SELECT stream_id, recorded_at, event_id FROM events WHERE event_type = 'IdentityErased'"
    )


def downgrade() -> None:
    op.drop_table("erased_captives")
