"""chain links: the hash chains of the upstream streams, checked before a record is applied

Revision ID: status_0008
Revises: status_0007
Create Date: 2026-12-01 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "status_0008"
down_revision: str | None = "status_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# shared/eventstore/tables.py CHECKED_AFTER_LEGACY
LEGACY = "*"
GENESIS = "0" * 64


def upgrade() -> None:
    # One row per upstream event consumed: the hash of its bytes, which the stream's next event
    # must name as its prevhash (shared/evidence/chain.py); a record that does not is dead-lettered.
    links = op.create_table(
        "chain_links",
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("stream_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("chained", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("stream", "stream_version", name=op.f("pk_chain_links")),
    )
    # Events applied before this migration left no links: their streams' next records cannot be
    # checked against them, so a database that has applied any is marked, and such a stream's
    # chain is checked from the first record it gets after the upgrade. A new database is not
    # marked: every stream's chain is checked from its first event.
    if op.get_bind().execute(sa.text("SELECT 1 FROM inbox LIMIT 1")).first():
        op.bulk_insert(
            links,
            [
                {
                    "stream": LEGACY,
                    "stream_version": 0,
                    "hash": GENESIS,
                    "chained": False,
                    "event_id": "before-chain-checks",
                }
            ],
        )


def downgrade() -> None:
    op.drop_table("chain_links")
