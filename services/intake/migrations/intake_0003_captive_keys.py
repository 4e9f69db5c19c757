"""captive keys: one AES-256 key per captive, sealing his identity-tier data (crypto-shredding)"""

import os
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from shared.migrations import steps

revision: str = "intake_0003"
down_revision: str | None = "intake_0002"

shared_steps = (steps.captive_keys,)
# The table steps.captive_keys creates, as the rows below are written to it.
KEYS = sa.table(
    "captive_keys",
    sa.column("captive_id", sa.String),
    sa.column("key", sa.LargeBinary),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    steps.upgrade(shared_steps)
    # Captives registered before sealing began get a key now, so their later events are sealed.
    # Their earlier events stay as they were recorded: the log of record is never rewritten.
    registered = op.get_bind().execute(
        sa.text("SELECT DISTINCT stream_id FROM events WHERE event_type = 'CaptiveRegistered'")
    )
    now = datetime.now(UTC)
    rows = [{"captive_id": captive_id, "key": os.urandom(32), "created_at": now} for (captive_id,) in registered]
    if rows:
        op.bulk_insert(KEYS, rows)


def downgrade() -> None:
    steps.downgrade(shared_steps)  # cannot be undone: it holds the only copies of the keys
