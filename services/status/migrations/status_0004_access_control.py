"""access control: partner-state visibility and the access log

Revision ID: status_0004
Revises: status_0003
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "status_0004"
down_revision: str | None = "status_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Both are read models rebuilt from events; a deployment that already holds wishes and
    # consents rebuilds partner_visibility with `captives replay status`.
    op.create_table(
        "partner_visibility",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("wish", sa.Boolean(), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", "state", name=op.f("pk_partner_visibility")),
    )
    op.create_table(
        "access_log",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=2000), nullable=False),
        sa.Column("tiers", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "captive_id", name=op.f("pk_access_log")),
    )
    op.create_index("ix_access_log_captive", "access_log", ["captive_id", "accessed_at"])
    op.create_index("ix_access_log_agency", "access_log", ["agency", "accessed_at"])


def downgrade() -> None:
    op.drop_table("access_log")
    op.drop_table("partner_visibility")
