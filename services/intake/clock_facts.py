"""The facts intake's clocks read about one captive (services/intake/deadlines.py), one per
event, each with the time it took effect: what the read model `clock_facts` holds
(services/intake/projections.py). Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.intake.custody import CustodyState
from shared.contracts.intake import CaptureCardAction, CardAddressee, MovementKind, NotificationRecipient


@dataclass(frozen=True)
class Moved:
    event_id: str
    at: datetime
    kind: MovementKind


@dataclass(frozen=True)
class CardRecorded:
    event_id: str
    at: datetime
    action: CaptureCardAction
    addressee: CardAddressee | None  # None on cards recorded before it existed: meets nothing


@dataclass(frozen=True)
class Notified:
    event_id: str
    at: datetime
    recipient: NotificationRecipient
    fields_sent: frozenset[str]
    concerning_event_id: str | None = None


@dataclass(frozen=True)
class Assessed:
    """A medical assessment: whether it found him seriously wounded or sick."""

    event_id: str
    at: datetime
    seriously_wounded_or_sick: bool


@dataclass(frozen=True)
class LeftCustody:
    """A hand-over out of the detaining state's custody, recorded by the disposition service."""

    event_id: str
    at: datetime
    state: CustodyState  # what it made of him (EXCHANGED, REPATRIATED, WITH_COMMISSION, ...)
    destination: str | None  # where he went; None: not named


@dataclass(frozen=True)
class ClockFacts:
    """What the clocks read about one captive: his capture (the registration event) and his
    movements, cards, notifications, medical assessments and hand-overs out of custody, each
    with the time it took effect."""

    captive_id: str
    registered_event_id: str
    captured_at: datetime
    movements: tuple[Moved, ...] = ()
    cards: tuple[CardRecorded, ...] = ()
    notifications: tuple[Notified, ...] = ()
    assessments: tuple[Assessed, ...] = ()
    handovers: tuple[LeftCustody, ...] = ()
