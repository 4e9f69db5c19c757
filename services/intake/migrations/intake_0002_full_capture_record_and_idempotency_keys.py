"""full capture record and idempotency keys"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import steps

revision: str = "intake_0002"
down_revision: str | None = "intake_0001"

shared_steps = (steps.idempotency_keys,)


def upgrade() -> None:
    steps.upgrade(shared_steps)
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
