"""captive keys: one AES-256 key per captive, sealing his identity-tier data (crypto-shredding)

Revision ID: intake_0003
Revises: intake_0002
Create Date: 2026-11-23 09:12:41.402117
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0003"
down_revision: str | None = "intake_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    keys = op.create_table(
        "captive_keys",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_captive_keys")),
    )
    # Captives registered before sealing began get a key now, so their later events are sealed.
    # Their earlier events stay as they were recorded: the log of record is never rewritten.
    registered = op.get_bind().execute(
        sa.text("SELECT DISTINCT stream_id FROM events WHERE event_type = 'CaptiveRegistered'")
    )
    now = datetime.now(UTC)
    rows = [{"captive_id": captive_id, "key": os.urandom(32), "created_at": now} for (captive_id,) in registered]
    if rows:
        op.bulk_insert(keys, rows)


def downgrade() -> None:
    raise NotImplementedError("intake_0003 holds the only copies of the captives' keys; restore a backup to go back")
