"""The access log's event: every read of identity, medical or wishes-and-risk data is recorded
by the service that answered it, on its own topic, so auditors can see who read what and why."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from shared.contracts.registry import EventPayload, event_type
from shared.contracts.tiers import DataTier, tiered

REF = DataTier.REFERENCE


@event_type("DataAccessed", 1)
class DataAccessed(EventPayload):
    """One answered read: which client of which agency (the envelope's actor and agency), the
    request, the purpose the caller gave, the sensitive tiers returned and about whom."""

    client_id: str = tiered(REF, max_length=200)
    method: str = tiered(REF, max_length=10)
    path: str = tiered(REF, max_length=2000)
    purpose: str | None = tiered(REF, None, max_length=500)
    tiers: list[DataTier] = tiered(REF, min_length=1)
    captive_ids: list[Annotated[str, StringConstraints(max_length=64)]] = tiered(REF, max_length=5000)


def access_stream(request_id: str) -> str:
    """Each read is its own stream: reads never contend for a stream version."""
    return f"access-{request_id}"
