"""risk, eligibility, exchange lists, dispositions"""

import sqlalchemy as sa
from alembic import op

revision: str = "disposition_0003"
down_revision: str | None = "disposition_0002"


def upgrade() -> None:
    op.create_table(
        "assurances",
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("willing_and_able", sa.Boolean(), nullable=False),
        sa.Column("accepts_for_resettlement", sa.Boolean(), nullable=False),
        sa.Column("neutral_accommodation_agreement", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_assurances")),
    )
    op.create_table(
        "conflict",
        sa.Column("fact", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("fact", name=op.f("pk_conflict")),
    )
    op.create_table(
        "dispositions",
        sa.Column("disposition_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("destination", sa.String(length=2), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=200), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("disposition_id", name=op.f("pk_dispositions")),
    )
    with op.batch_alter_table("dispositions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispositions_captive_id"), ["captive_id"], unique=False)

    op.create_table(
        "eligibility",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("counterpart_state", sa.String(length=2), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", "counterpart_state", name=op.f("pk_eligibility")),
    )
    op.create_table(
        "eligibility_history",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("counterpart_state", sa.String(length=2), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_eligibility_history")),
    )
    with op.batch_alter_table("eligibility_history", schema=None) as batch_op:
        batch_op.create_index("ix_eligibility_history_captive", ["captive_id", "effective_at"], unique=False)

    op.create_table(
        "exchange_lists",
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("counterpart_state", sa.String(length=2), nullable=False),
        sa.Column("agreement", sa.Text(), nullable=False),
        sa.Column("captive_ids", sa.JSON(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("check_event_id", sa.String(length=64), nullable=True),
        sa.Column("check_results", sa.JSON(), nullable=True),
        sa.Column("proposed_by", sa.String(length=200), nullable=True),
        sa.Column("proposed_ids", sa.JSON(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("list_id", name=op.f("pk_exchange_lists")),
    )
    op.create_table(
        "list_entries",
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("counterpart_state", sa.String(length=2), nullable=False),
        sa.PrimaryKeyConstraint("list_id", "captive_id", name=op.f("pk_list_entries")),
    )
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_list_entries_captive_id"), ["captive_id"], unique=False)

    op.create_table(
        "partner_claims",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", "state", name=op.f("pk_partner_claims")),
    )
    op.create_table(
        "risks",
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=2), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("onward_state", sa.String(length=2), nullable=True),
        sa.Column("diplomatic_assurances", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("captive_id", "destination", name=op.f("pk_risks")),
    )
    with op.batch_alter_table("captives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_custody", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("custody_event_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("wish", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("wish_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("seriously_wounded_or_sick", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("medical_event_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("medical_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("captives", schema=None) as batch_op:
        batch_op.drop_column("medical_at")
        batch_op.drop_column("medical_event_id")
        batch_op.drop_column("seriously_wounded_or_sick")
        batch_op.drop_column("wish_at")
        batch_op.drop_column("wish")
        batch_op.drop_column("custody_event_id")
        batch_op.drop_column("in_custody")

    op.drop_table("risks")
    op.drop_table("partner_claims")
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_list_entries_captive_id"))

    op.drop_table("list_entries")
    op.drop_table("exchange_lists")
    with op.batch_alter_table("eligibility_history", schema=None) as batch_op:
        batch_op.drop_index("ix_eligibility_history_captive")

    op.drop_table("eligibility_history")
    op.drop_table("eligibility")
    with op.batch_alter_table("dispositions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispositions_captive_id"))

    op.drop_table("dispositions")
    op.drop_table("conflict")
    op.drop_table("assurances")
