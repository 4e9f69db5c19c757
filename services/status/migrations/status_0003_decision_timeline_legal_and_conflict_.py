"""decision timeline, legal and conflict facts"""

import sqlalchemy as sa
from alembic import op

revision: str = "status_0003"
down_revision: str | None = "status_0002"


def upgrade() -> None:
    op.create_table(
        "conflict_facts",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_conflict_facts")),
    )
    op.create_table(
        "decision_lock",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_decision_lock")),
    )
    op.create_table(
        "decisions",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("previous_status", sa.String(length=32), nullable=True),
        sa.Column("rulebook_version", sa.String(length=32), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_decisions")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decisions_captive_effective", ["captive_id", "effective_from", "stream_version"], unique=False
        )

    op.create_table(
        "legal_facts",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_legal_facts")),
    )
    with op.batch_alter_table("legal_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_facts_captive_id"), ["captive_id"], unique=False)

    op.create_table(
        "rulebook_adoptions",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_rulebook_adoptions")),
    )
    op.drop_table("statuses")  # replaced by `decisions`, rebuilt below from the event log
    with op.batch_alter_table("captive_facts", schema=None) as batch_op:
        batch_op.create_index("ix_captive_facts_nationality", ["nationality"], unique=False)
    op.bulk_insert(
        sa.table("decision_lock", sa.column("name", sa.String), sa.column("counter", sa.BigInteger)),
        [{"name": "decisions", "counter": 0}],
    )
    _rebuild_decisions()


def _rebuild_decisions() -> None:
    from sqlalchemy.orm import Session

    from services.status.projections import project
    from shared.contracts import decode

    session = Session(bind=op.get_bind())
    rows = session.execute(
        sa.text("SELECT envelope FROM events WHERE event_type = 'StatusDetermined' ORDER BY position")
    )
    for (envelope,) in rows:
        event = decode(envelope.encode())
        project(session, event.envelope, event.payload)
    session.flush()


def downgrade() -> None:
    raise NotImplementedError("status_0003 replaced the statuses read model; restore a backup to go back")
