"""What intake's clocks answer (services/intake/deadlines.py): each obligation a captive's facts
open, how it stands at a moment, and the overdue list's items. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# The trigger of what a finding of serious wounds or sickness opens: Art. 70's card "in case of
# sickness" and Art. 122(6)'s weekly health reports. It says something of the medical tier.
SICKNESS = "SERIOUSLY_WOUNDED_OR_SICK"
MEDICAL_TRIGGERS = frozenset({SICKNESS})


class Obligation(StrEnum):
    CAPTURE_CARD = "CAPTURE_CARD"
    NOTIFICATION = "NOTIFICATION"
    HEALTH_REPORT = "HEALTH_REPORT"  # Art. 122(6): weekly, while he is seriously wounded or sick


# Obligations met by a notification: the overdue list shows the fields they must carry.
NOTIFIED = frozenset({Obligation.NOTIFICATION, Obligation.HEALTH_REPORT})


class Standing(StrEnum):
    PENDING = "PENDING"  # its window is still open
    MET = "MET"
    OVERDUE = "OVERDUE"
    # Custody ended (or, for a health report, he was found no longer seriously wounded or sick)
    # before it fell due: it can no longer be asked.
    LAPSED = "LAPSED"


@dataclass(frozen=True)
class Due:
    """One obligation, as it stands at `as_of`."""

    captive_id: str
    obligation: Obligation
    to: str  # a CardAddressee or a NotificationRecipient
    article: str
    trigger: str  # CAPTURE, the MovementKind, SICKNESS, or the custody state a hand-over left him in
    started_by: str  # the event id of that capture, movement, assessment or hand-over
    started_at: datetime
    due_at: datetime
    standing: Standing
    met_by: str | None = None  # the card or notification that met it
    met_at: datetime | None = None
    required_fields: tuple[str, ...] = ()  # notifications: what it must carry
    # notifications sent after the event that did not carry every required field, and the
    # fields the most complete of them lacked
    insufficient: tuple[str, ...] = ()
    missing_fields: tuple[str, ...] = ()
    # what made it lapse: the escape, death, release or hand-over that ended custody in time, or
    # the assessment that found him no longer seriously wounded or sick
    lapsed_by: str | None = None
    # a health report: the finding (for the first) or the report before it, from which its week runs
    since: str | None = None
    since_at: datetime | None = None

    def days_overdue(self, as_of: datetime) -> int:
        return max((as_of - self.due_at).days, 0)


@dataclass(frozen=True)
class Overdue:
    captive_id: str
    obligation: str
    to: str
    article: str
    trigger: str
    started_by: str
    started_at: datetime
    due_at: datetime
    days_overdue: int
    required_fields: tuple[str, ...] = field(default=())
    missing_fields: tuple[str, ...] = field(default=())
    insufficient_notifications: tuple[str, ...] = field(default=())
    since: str | None = None  # a health report: the finding or the report its week runs from
    since_at: datetime | None = None

    @property
    def medical(self) -> bool:
        """Whether it tells that he was found seriously wounded or sick (medical tier)."""
        return self.trigger in MEDICAL_TRIGGERS
