"""captive keys: the disposition service seals personal data with a key per captive

Revision ID: disposition_0009
Revises: disposition_0008
Create Date: 2026-12-01 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "disposition_0009"
down_revision: str | None = "disposition_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One key per captive, wrapped with the service's key-encryption key (shared/privacy/keyring.py).
    op.create_table(
        "captive_keys",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_captive_keys")),
    )
    # Tombstones: whose key IdentityErased destroyed (later writes about him are refused).
    op.create_table(
        "erased_captives",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_erased_captives")),
    )


def downgrade() -> None:
    raise NotImplementedError(
        "disposition_0009 holds the only copies of the captives' keys; restore a backup to go back"
    )
