"""Which intake obligations are overdue as of a date (pure: times come from events and from the
caller's `as_of`, never from the clock).

- Art. 70: the capture card, "immediately upon capture, or not more than one week after arrival
  at a camp, even if it is a transit camp". Settled when sent, or when the captive declines it.
- Arts. 122-123: information to the National Information Bureau and, through it, to the Central
  Tracing Agency "as rapidly as possible". The Convention sets no number of days; this project's
  policy is 7 days from capture for each, so that a late notification shows up on the same
  weekly review as a late card. Change NOTIFICATION_WINDOW to apply another policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

CAPTURE_CARD_WINDOW = timedelta(days=7)
NOTIFICATION_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class CaptiveDeadlineFacts:
    captive_id: str
    captured_at: datetime
    first_arrival_at: datetime | None
    card_settled_at: datetime | None
    nib_notified_at: datetime | None
    cta_notified_at: datetime | None
    custody_ended_at: datetime | None


@dataclass(frozen=True)
class Overdue:
    captive_id: str
    obligation: str
    article: str
    due_at: datetime
    days_overdue: int


def overdue(facts: CaptiveDeadlineFacts, as_of: datetime) -> list[Overdue]:
    found = []

    def check(obligation: str, article: str, due_at: datetime, settled_at: datetime | None) -> None:
        if due_at < as_of and (settled_at is None or settled_at > as_of):
            found.append(Overdue(facts.captive_id, obligation, article, due_at, (as_of - due_at).days))

    arrival = facts.first_arrival_at
    if arrival is not None and arrival <= as_of:
        due = arrival + CAPTURE_CARD_WINDOW
        # A captive who died, escaped or was released before the week was out can no longer write one.
        if facts.custody_ended_at is None or facts.custody_ended_at > due:
            check("CAPTURE_CARD", "GC III Art. 70", due, facts.card_settled_at)
    if facts.captured_at <= as_of:
        due = facts.captured_at + NOTIFICATION_WINDOW
        check("NATIONAL_INFORMATION_BUREAU", "GC III Art. 122", due, facts.nib_notified_at)
        check("CENTRAL_TRACING_AGENCY", "GC III Art. 123", due, facts.cta_notified_at)
    return found
