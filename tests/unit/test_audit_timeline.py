"""The audit timeline shows each event once, in recorded order, though a relay that crashed after
publishing (and before marking the row published) publishes the same event again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.contracts import EventEnvelope, encode
from shared.contracts.intake import IdentityErased
from tools.timeline import timeline

HIM = "CAP-0000-0000-00AA"


@dataclass(frozen=True)
class Record:  # what a topic holds: a key and the event's bytes
    key: bytes | None
    value: bytes


def event(n: int, at: datetime) -> bytes:
    payload = IdentityErased(captive_id=HIM, erased_by="operator", reason=f"request {n}")
    return encode(
        EventEnvelope(
            id=f"e{n}",
            source="/services/intake",
            type=payload.event_type,
            subject=HIM,
            occurred_at=at,
            recorded_at=at,
            stream_version=n,
            schema_version=1,
            correlation_id=f"c{n}",
            actor="client captives-operator",
            agency="operator",
            data=payload.model_dump(mode="json"),
        )
    )


def test_an_event_published_twice_shows_once_and_others_in_recorded_order():
    first, second = event(1, datetime(2025, 1, 1, tzinfo=UTC)), event(2, datetime(2025, 1, 2, tzinfo=UTC))
    records = [Record(HIM.encode(), second), Record(HIM.encode(), first), Record(HIM.encode(), second)]
    records.append(Record(b"CAP-0000-0000-00BB", event(3, datetime(2025, 1, 3, tzinfo=UTC))))
    records.append(Record(HIM.encode(), b"not an event"))
    shown = timeline(records, HIM)
    assert [entry.event.envelope.id for entry in shown] == ["e1", "e2"]
