"""custody hand-overs and the consumer: intake consumes disposition.events.v1; clocks read medical assessments

Revision ID: intake_0009
Revises: intake_0008_outbox_parking
Create Date: 2026-12-02 10:00:00

Intake now consumes the hand-overs out of custody from disposition.events.v1 (CustodyEnded,
HandedToRepatriationCommission): its consumer gets the tables every consumer has (the hash
chains of the upstream streams, the records parked behind a dead letter, operators' decisions;
its inbox exists since intake_0001). The clock facts get a hand-over's destination and detail,
and a row per medical assessment (Art. 70 "in case of sickness", Art. 122(6)), filled here from
the assessments already recorded: whether he was found seriously wounded or sick is in clear in
every MedicalAssessed event (medical tier, not sealed).
"""

from datetime import datetime

import orjson
import sqlalchemy as sa
from alembic import op

from shared.migrations import steps

revision: str = "intake_0009"
down_revision: str | None = "intake_0008_outbox_parking"

shared_steps = (steps.chain_links, steps.dead_letter_parking)

# services/intake/projections.py
SERIOUS, NOT_SERIOUS = "SERIOUSLY_WOUNDED_OR_SICK", "NOT_SERIOUSLY_WOUNDED_OR_SICK"


def upgrade() -> None:
    with op.batch_alter_table("clock_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("destination", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))
    facts = sa.table(
        "clock_facts",
        sa.column("event_id", sa.String),
        sa.column("captive_id", sa.String),
        sa.column("stream_version", sa.Integer),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("fact", sa.String),
        sa.column("kind", sa.String),
        sa.column("addressee", sa.String),
        sa.column("fields_sent", sa.JSON),
        sa.column("concerning_event_id", sa.String),
        sa.column("destination", sa.String),
        sa.column("detail", sa.JSON),
    )
    found = op.get_bind().execute(
        sa.text("SELECT event_id, envelope FROM events WHERE event_type = 'MedicalAssessed' ORDER BY position")
    )
    rows = [_medical(event_id, orjson.loads(envelope)) for event_id, envelope in found]
    if rows:
        op.bulk_insert(facts, rows)

    # The tables every consumer has. Intake applied no upstream event before this revision (its
    # inbox is empty), so chain_links is not marked: every stream is checked from its first event.
    steps.upgrade(shared_steps)


def _medical(event_id: str, envelope: dict) -> dict:
    serious = bool(envelope["data"]["seriously_wounded_or_sick"])
    return {
        "event_id": event_id,
        "captive_id": envelope["subject"],
        "stream_version": envelope["streamversion"],
        "occurred_at": datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")),
        "fact": "MEDICAL",
        "kind": SERIOUS if serious else NOT_SERIOUS,
        "addressee": None,
        "fields_sent": None,
        "concerning_event_id": None,
        "destination": None,
        "detail": None,
    }


def downgrade() -> None:
    steps.downgrade(shared_steps)
    op.execute(sa.text("DELETE FROM clock_facts WHERE fact IN ('MEDICAL', 'LEFT')"))
    with op.batch_alter_table("clock_facts", schema=None) as batch_op:
        batch_op.drop_column("detail")
        batch_op.drop_column("destination")
