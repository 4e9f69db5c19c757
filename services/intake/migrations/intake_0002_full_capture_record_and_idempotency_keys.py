"""full capture record and idempotency keys

Revision ID: intake_0002
Revises: intake_0001
Create Date: 2026-11-22 04:38:58.513736
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0002"
down_revision: str | None = "intake_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    # `captives` is a read model: it is rebuilt from the event log, not altered in place.
    op.drop_table("captives")
    op.create_table(
        "captives",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("nationality", sa.String(length=2), nullable=True),
        sa.Column("claimed_affiliation", sa.String(length=64), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("custody_state", sa.String(length=32), nullable=False),
        sa.Column("custody_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_arrival_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("card_settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nib_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cta_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("custody_ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_captives")),
    )
    op.create_index("ix_captives_captured_at", "captives", ["captured_at"], unique=False)
    _rebuild_captives()


def _rebuild_captives() -> None:
    from sqlalchemy.orm import Session

    from services.intake.projections import project
    from shared.contracts import decode

    session = Session(bind=op.get_bind())
    for (envelope,) in session.execute(sa.text("SELECT envelope FROM events ORDER BY position")):
        event = decode(envelope.encode())
        project(session, event.envelope, event.payload)
    session.flush()


def downgrade() -> None:
    raise NotImplementedError("intake_0002 rebuilt the captives read model; restore a backup to go back")
