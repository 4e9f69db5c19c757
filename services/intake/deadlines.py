"""Which intake obligations a captive's facts open, which are met, and which are overdue as of a
moment (pure: every time comes from his events and from the caller's `as_of`; nothing here reads
the clock). The rules, their articles and the choices made where the law leaves room are in
docs/legal-basis.md ("Intake: records and clocks").

- Art. 70, the capture card: within a week of each arrival at a camp, a hospital or another camp
  (ARRIVED_AT_CAMP, TRANSFERRED, HOSPITALISED, and RECAPTURED, which brings him back to a camp),
  one card to his family and one to the Central Prisoners of War Agency. Each arrival opens both;
  each is met only by a card SENT to that addressee at or after the arrival, or by his declining
  the card (DECLINED_BY_CAPTIVE, which meets both). "Immediately upon capture" also counts: a
  captive with no arrival recorded within the week after capture owes both cards for the capture.
  An obligation lapses if custody ended (escape, death, release) before its week was out.
- Arts. 122-123 (and 94, 120): a notification to the National Information Bureau and to the
  Central Tracing Agency of the capture and of each transfer, admission to hospital, escape,
  recapture, death and release; one counts only if sent at or after the event and if its
  `fields_sent` carry every field that kind of notification must carry (REQUIRED_FIELDS).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.contracts.intake import (
    END_OF_CUSTODY,
    CaptureCardAction,
    CardAddressee,
    MovementKind,
    NotificationRecipient,
)

# -- the windows (in one place) -----------------------------------------------------------------

# Art. 70 itself: "not more than one week after arrival at a camp". A captive's capture, with no
# arrival within the same week, is given the same week ("immediately upon capture").
CAPTURE_CARD_WINDOW = timedelta(days=7)
# This project's policy, not the Convention's: Arts. 122-123 (and 94, 120) say "as rapidly as
# possible" / "within the shortest possible period" and set no number of days. Seven days puts
# a late notification on the same weekly review as a late card. Change it here only.
NOTIFICATION_WINDOW = timedelta(days=7)
LONGEST_WINDOW = max(CAPTURE_CARD_WINDOW, NOTIFICATION_WINDOW)

CAPTURE = "CAPTURE"  # the trigger of the obligations the registration (the capture) opens

# Movements after which Art. 70 calls for a card: arrival at a camp (a transit camp too), a
# transfer to another camp, admission to hospital, and a recapture, which brings him back to a camp.
CARD_ARRIVALS = frozenset(
    {MovementKind.ARRIVED_AT_CAMP, MovementKind.TRANSFERRED, MovementKind.HOSPITALISED, MovementKind.RECAPTURED}
)

# What each kind of notification must carry (the names are NotifiableField's), and its article.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    CAPTURE: ("surname", "first_names", "rank", "date_of_birth", "service_number", "capture"),
    MovementKind.TRANSFERRED: ("transfer", "internment_address"),
    MovementKind.HOSPITALISED: ("health",),
    MovementKind.ESCAPED: ("escape",),
    MovementKind.RECAPTURED: ("recapture", "internment_address"),
    MovementKind.DIED: ("death",),
    MovementKind.RELEASED: ("release",),
}
NOTIFICATION_ARTICLES: dict[str, str] = {
    CAPTURE: "GC III Art. 122(3)-(4)",
    MovementKind.TRANSFERRED: "GC III Art. 122(5)",
    MovementKind.HOSPITALISED: "GC III Art. 122(5)",
    MovementKind.ESCAPED: "GC III Art. 122(5)",
    MovementKind.RECAPTURED: "GC III Arts. 94, 122(5)",
    MovementKind.DIED: "GC III Arts. 120, 122(5)",
    MovementKind.RELEASED: "GC III Art. 122(5)",
}
RECIPIENT_ARTICLES = {
    NotificationRecipient.NATIONAL_INFORMATION_BUREAU: "",  # the bureau is Art. 122's own
    NotificationRecipient.CENTRAL_TRACING_AGENCY: "; Art. 123",  # the bureau forwards to the Agency
}


class Obligation(StrEnum):
    CAPTURE_CARD = "CAPTURE_CARD"
    NOTIFICATION = "NOTIFICATION"


class Standing(StrEnum):
    PENDING = "PENDING"  # its window is still open
    MET = "MET"
    OVERDUE = "OVERDUE"
    LAPSED = "LAPSED"  # custody ended before the card's week was out: no card can be asked of him


# -- the facts the clocks read (one per event) ----------------------------------------------------


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
class ClockFacts:
    """What the clocks read about one captive: his capture (the registration event) and his
    movements, cards and notifications, each with the time it took effect."""

    captive_id: str
    registered_event_id: str
    captured_at: datetime
    movements: tuple[Moved, ...] = ()
    cards: tuple[CardRecorded, ...] = ()
    notifications: tuple[Notified, ...] = ()


@dataclass(frozen=True)
class Due:
    """One obligation, as it stands at `as_of`."""

    captive_id: str
    obligation: Obligation
    to: str  # a CardAddressee or a NotificationRecipient
    article: str
    trigger: str  # CAPTURE or the MovementKind that started the clock
    started_by: str  # the event id of that capture or movement
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
    lapsed_by: str | None = None  # the escape, death or release that ended custody within the week

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


# -- the rules ------------------------------------------------------------------------------------


def obligations(facts: ClockFacts, as_of: datetime) -> list[Due]:
    """Every obligation started by `as_of`, with its standing then. Only facts in effect at
    `as_of` (occurred at or before it) count, however late they were recorded."""
    movements = sorted((m for m in facts.movements if m.at <= as_of), key=lambda m: m.at)
    cards = sorted((c for c in facts.cards if c.at <= as_of), key=lambda c: c.at)
    notifications = sorted((n for n in facts.notifications if n.at <= as_of), key=lambda n: n.at)
    if facts.captured_at > as_of:
        return []
    found: list[Due] = []
    for trigger, event_id, at in _card_triggers(facts, movements):
        lapsed = _custody_ended(movements, at, at + CAPTURE_CARD_WINDOW)
        for addressee in CardAddressee:
            found.append(_card(facts, cards, trigger, event_id, at, addressee, lapsed, as_of))
    triggers = [(CAPTURE, facts.registered_event_id, facts.captured_at)] + [
        (m.kind, m.event_id, m.at) for m in movements if m.kind in REQUIRED_FIELDS
    ]
    for trigger, event_id, at in triggers:
        for recipient in NotificationRecipient:
            found.append(_notification(facts, notifications, trigger, event_id, at, recipient, as_of))
    return found


def overdue(facts: ClockFacts, as_of: datetime) -> list[Overdue]:
    """The obligations overdue at `as_of`, each naming its article, the event that started its
    clock and, for a notification, the fields a notification sent for it lacked."""
    return [
        Overdue(
            captive_id=due.captive_id,
            obligation=due.obligation.value,
            to=due.to,
            article=due.article,
            trigger=due.trigger,
            started_by=due.started_by,
            started_at=due.started_at,
            due_at=due.due_at,
            days_overdue=due.days_overdue(as_of),
            required_fields=due.required_fields,
            missing_fields=due.missing_fields,
            insufficient_notifications=due.insufficient,
        )
        for due in obligations(facts, as_of)
        if due.standing is Standing.OVERDUE
    ]


def _card_triggers(facts: ClockFacts, movements: list[Moved]) -> Iterable[tuple[str, str, datetime]]:
    arrivals = [(m.kind.value, m.event_id, m.at) for m in movements if m.kind in CARD_ARRIVALS]
    week_after_capture = facts.captured_at + CAPTURE_CARD_WINDOW
    if not any(at <= week_after_capture for _, _, at in arrivals):
        # "immediately upon capture": held a week with no arrival recorded, he still owes cards
        yield CAPTURE, facts.registered_event_id, facts.captured_at
    yield from arrivals


def _custody_ended(movements: list[Moved], since: datetime, until: datetime) -> Moved | None:
    """The escape, death or release that ended his custody after `since`, if by `until`."""
    for movement in movements:
        if movement.at >= since and movement.kind in END_OF_CUSTODY:
            return movement if movement.at <= until else None
    return None


def _card(
    facts: ClockFacts,
    cards: list[CardRecorded],
    trigger: str,
    event_id: str,
    at: datetime,
    addressee: CardAddressee,
    lapsed: Moved | None,
    as_of: datetime,
) -> Due:
    due_at = at + CAPTURE_CARD_WINDOW
    met = next(
        (
            card
            for card in cards
            if card.at >= at
            and (
                card.action is CaptureCardAction.DECLINED_BY_CAPTIVE
                or (card.action is CaptureCardAction.SENT and card.addressee is addressee)
            )
        ),
        None,
    )
    if met is not None and met.at <= due_at:
        standing = Standing.MET
    elif lapsed is not None:
        standing = Standing.LAPSED
    elif met is not None:
        standing = Standing.MET  # late, but met
    else:
        standing = _unmet(due_at, as_of)
    return Due(
        captive_id=facts.captive_id,
        obligation=Obligation.CAPTURE_CARD,
        to=addressee.value,
        article="GC III Art. 70",
        trigger=trigger,
        started_by=event_id,
        started_at=at,
        due_at=due_at,
        standing=standing,
        met_by=met.event_id if met and standing is Standing.MET else None,
        met_at=met.at if met and standing is Standing.MET else None,
        lapsed_by=lapsed.event_id if standing is Standing.LAPSED else None,
    )


def _notification(
    facts: ClockFacts,
    notifications: list[Notified],
    trigger: str,
    event_id: str,
    at: datetime,
    recipient: NotificationRecipient,
    as_of: datetime,
) -> Due:
    required = REQUIRED_FIELDS[trigger]
    due_at = at + NOTIFICATION_WINDOW
    candidates = [
        n
        for n in notifications
        if n.recipient is recipient and n.at >= at and n.concerning_event_id in (None, event_id)
    ]
    met = next((n for n in candidates if set(required) <= n.fields_sent), None)
    short = [n for n in candidates if met is None or n.at < met.at]
    short = [n for n in short if not set(required) <= n.fields_sent]
    missing: tuple[str, ...] = ()
    if short:
        best = max(short, key=lambda n: (len(set(required) & n.fields_sent), n.at))
        missing = tuple(name for name in required if name not in best.fields_sent)
    standing = Standing.MET if met is not None else _unmet(due_at, as_of)
    return Due(
        captive_id=facts.captive_id,
        obligation=Obligation.NOTIFICATION,
        to=recipient.value,
        article=NOTIFICATION_ARTICLES[trigger] + RECIPIENT_ARTICLES[recipient],
        trigger=str(trigger),
        started_by=event_id,
        started_at=at,
        due_at=due_at,
        standing=standing,
        met_by=met.event_id if met else None,
        met_at=met.at if met else None,
        required_fields=required,
        insufficient=tuple(n.event_id for n in short),
        missing_fields=missing,
    )


def _unmet(due_at: datetime, as_of: datetime) -> Standing:
    return Standing.OVERDUE if due_at < as_of else Standing.PENDING
