"""clock facts: what the Art. 70 and Arts. 122-123 clocks read, one row per fact

Revision ID: intake_0006
Revises: intake_0005
Create Date: 2026-12-01 09:00:00

The captives table kept one earliest time per obligation (first arrival, card settled, NIB and
CTA notified, custody ended), which cannot say whether a card went to both addressees, whether
each transfer was notified, or what a notification carried. The clocks now read the facts
themselves (services/intake/deadlines.py). The rows are filled here from the events already
recorded: the values they need are reference tier, in clear in every event, sealed or not.
"""

from datetime import datetime

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "intake_0006"
down_revision: str | None = "intake_0005"

OLD_COLUMNS = ("first_arrival_at", "card_settled_at", "nib_notified_at", "cta_notified_at", "custody_ended_at")
FACTS = {
    "CaptiveRegistered": "CAPTURED",
    "MovementRecorded": "MOVED",
    "CaptureCardRecorded": "CARD",
    "NotificationSent": "NOTIFIED",
}


def upgrade() -> None:
    facts = op.create_table(
        "clock_facts",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("captive_id", sa.String(length=64), nullable=False),
        sa.Column("stream_version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fact", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("addressee", sa.String(length=32), nullable=True),
        sa.Column("fields_sent", sa.JSON(), nullable=True),
        sa.Column("concerning_event_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_clock_facts")),
    )
    op.create_index("ix_clock_facts_captive", "clock_facts", ["captive_id", "stream_version"])
    found = op.get_bind().execute(
        sa.text(
            "SELECT event_id, event_type, envelope FROM events WHERE event_type IN :types ORDER BY position"
        ).bindparams(sa.bindparam("types", expanding=True)),
        {"types": sorted(FACTS)},
    )
    rows = [_row(event_id, event_type, orjson.loads(envelope)) for event_id, event_type, envelope in found]
    if rows:
        op.bulk_insert(facts, rows)
    with op.batch_alter_table("captives", schema=None) as batch_op:
        for name in OLD_COLUMNS:
            batch_op.drop_column(name)


def _row(event_id: str, event_type: str, envelope: dict) -> dict:
    data = envelope["data"]
    row = {
        "event_id": event_id,
        "captive_id": envelope["subject"],
        "stream_version": envelope["streamversion"],
        "occurred_at": _time(envelope["time"]),
        "fact": FACTS[event_type],
        "addressee": None,
        "fields_sent": None,
        "concerning_event_id": None,
    }
    match event_type:
        case "CaptiveRegistered":
            row.update(kind="CAPTURE", occurred_at=_time(data["capture"]["captured_at"]))
        case "MovementRecorded":
            row.update(kind=data["kind"])
        case "CaptureCardRecorded":
            row.update(kind=data["action"], addressee=data.get("addressee"))
        case "NotificationSent":
            row.update(
                kind=data["recipient"],
                fields_sent=data["fields_sent"],
                concerning_event_id=data.get("concerning_event_id"),
            )
    return row


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def downgrade() -> None:
    # The old columns come back empty: `captives replay intake` on the older code fills them.
    with op.batch_alter_table("captives", schema=None) as batch_op:
        for name in OLD_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_clock_facts_captive", table_name="clock_facts")
    op.drop_table("clock_facts")
