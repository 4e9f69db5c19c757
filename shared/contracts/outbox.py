"""The stand-in an operator's discard puts on the topic in place of an event its service could
not publish (`captives outbox discard`, shared/eventstore/outbox.py)."""

from __future__ import annotations

from shared.contracts.moments import IsoDatetime
from shared.contracts.registry import EventPayload, event_type
from shared.contracts.tiers import DataTier, tiered

REF = DataTier.REFERENCE


@event_type("PublicationWithheld", 1)
class PublicationWithheld(EventPayload):
    """The event of this stream version was never published: the broker refused it for good
    (`error`) and an operator discarded it (`discarded_by`, `reason`). This event takes its place
    (same id, version and prevhash), so the stream's versions and hash chain stay whole and its
    later events still follow on; consumers have nothing to apply. The withheld event itself stays
    in its service's database (outbox_discarded), with who discarded it, when and why."""

    withheld_event_type: str = tiered(REF, max_length=100)
    error: str = tiered(REF, max_length=2000)
    reason: str = tiered(REF, min_length=1, max_length=2000)
    discarded_by: str = tiered(REF, min_length=1, max_length=200)
    discarded_at: IsoDatetime = tiered(REF)
