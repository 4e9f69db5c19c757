"""Which intake obligations a captive's facts open, which are met, and which are overdue as of a
moment (pure: every time comes from his events and from the caller's `as_of`; nothing here reads
the clock). The rules, their articles and the choices made where the law leaves room are in
docs/legal-basis.md ("Intake: records and clocks").

- Art. 70, the capture card: within a week of each arrival at a camp, a hospital or another camp
  (ARRIVED_AT_CAMP, TRANSFERRED, HOSPITALISED, and RECAPTURED, which brings him back to a camp),
  and "likewise in case of sickness": the assessment that first finds him seriously wounded or
  sick while held (SICKNESS), one card to his family and one to the Central Prisoners of War
  Agency. Each such trigger opens both; each is met only by a card SENT to that addressee at or
  after it, or by his declining the card (DECLINED_BY_CAPTIVE, which meets both). "Immediately
  upon capture" also counts: a captive with no arrival recorded within the week after capture
  owes both cards for the capture. An obligation lapses if custody ended (escape, death,
  release, or a hand-over out of the detaining state's custody) before its week was out.
- Arts. 122-123 (and 94, 120): a notification to the National Information Bureau and to the
  Central Tracing Agency of the capture, of each transfer, admission to hospital, escape,
  recapture, death and release, and of each hand-over out of custody that the disposition
  service recorded (exchange, transfer to another Power, repatriation, release, resettlement,
  accommodation in a neutral state, hand-over to the neutral repatriation commission: Art.
  122(5)); one counts only if sent at or after the event and if its `fields_sent` carry every
  field that kind of notification must carry (REQUIRED_FIELDS, HANDOVER_FIELDS).
- Art. 122(6): while he is held and his latest assessment finds him seriously wounded or sick, a
  report on his health ("health" in `fields_sent`) to each of them every week
  (HEALTH_REPORT_INTERVAL), counted from the assessment and then from each report, until an
  assessment finds he no longer is, or custody ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.intake.clock_facts import Assessed, CardRecorded, ClockFacts, LeftCustody, Moved, Notified
from services.intake.custody import CustodyState
from services.intake.obligations import SICKNESS, Due, Obligation, Overdue, Standing
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
# Art. 122(6): "supplied regularly, every week if possible".
HEALTH_REPORT_INTERVAL = timedelta(days=7)
LONGEST_WINDOW = max(CAPTURE_CARD_WINDOW, NOTIFICATION_WINDOW, HEALTH_REPORT_INTERVAL)
SHORTEST_WINDOW = min(CAPTURE_CARD_WINDOW, NOTIFICATION_WINDOW, HEALTH_REPORT_INTERVAL)

CAPTURE = "CAPTURE"  # the trigger of the obligations the registration (the capture) opens
# Movements after which Art. 70 calls for a card: arrival at a camp (a transit camp too), a
# transfer to another camp, admission to hospital, and a recapture, which brings him back to a camp.
CARD_ARRIVALS = frozenset(
    {MovementKind.ARRIVED_AT_CAMP, MovementKind.TRANSFERRED, MovementKind.HOSPITALISED, MovementKind.RECAPTURED}
)

# What each kind of notification must carry (the names are NotifiableField's), and its article.
# The capture's: Art. 122(4) "subject to the provisions of Article 17" and "in so far as
# available": the Art. 17 minimum, the Power on which he depends and the address for his
# correspondence. A field he declined or that is not known is still listed: the bureau is told
# it was declined or is not known, which is the information available to it. Art. 122(4)'s
# "rank, army, regimental, personal or serial number": his army (`armed_force`: the force he
# belongs to, as recorded) besides his service number.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    CAPTURE: (
        "surname",
        "first_names",
        "rank",
        "date_of_birth",
        "service_number",
        "armed_force",
        "power_depended_on",
        "internment_address",
        "capture",
    ),
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
# Art. 122(5) "transfers, releases, repatriations": what the notification of each hand-over out of
# custody must carry, besides `destination` (where he went: the receiving state, the neutral
# state, the commission), which it must carry whenever the hand-over names one. An exchange is
# reported as such; the transfer to another Power, to a neutral state for accommodation and to
# the neutral repatriation commission are transfers of custody.
HANDOVER_FIELDS: dict[CustodyState, tuple[str, ...]] = {
    CustodyState.EXCHANGED: ("exchange",),
    CustodyState.TRANSFERRED_TO_POWER: ("transfer",),
    CustodyState.REPATRIATED: ("repatriation",),
    CustodyState.RESETTLED: ("release",),
    CustodyState.RELEASED: ("release",),
    CustodyState.INTERNED_IN_NEUTRAL_STATE: ("transfer",),
    CustodyState.WITH_COMMISSION: ("transfer",),
}
HANDOVER_ARTICLE = "GC III Art. 122(5)"
HEALTH_REPORT_FIELDS = ("health",)
HEALTH_REPORT_ARTICLE = "GC III Art. 122(6)"
RECIPIENT_ARTICLES = {
    NotificationRecipient.NATIONAL_INFORMATION_BUREAU: "",  # the bureau is Art. 122's own
    NotificationRecipient.CENTRAL_TRACING_AGENCY: "; Art. 123",  # the bureau forwards to the Agency
}


# -- the rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ending:
    """A fact that ended his custody (an escape, death or release; a hand-over)."""

    event_id: str
    at: datetime


@dataclass(frozen=True)
class _Sickness:
    """A spell of serious wounds or sickness while held: from the assessment that found it, until
    the assessment that found it over or the end of custody (None: still running)."""

    onset: Assessed
    assessments: tuple[str, ...]  # the ids of the assessments that found it, within the spell
    ended_by: str | None = None
    ended_at: datetime | None = None


def obligations(facts: ClockFacts, as_of: datetime) -> list[Due]:
    """Every obligation started by `as_of`, with its standing then. Only facts in effect at
    `as_of` (occurred at or before it) count, however late they were recorded."""
    movements = sorted((m for m in facts.movements if m.at <= as_of), key=lambda m: m.at)
    cards = sorted((c for c in facts.cards if c.at <= as_of), key=lambda c: c.at)
    notifications = sorted((n for n in facts.notifications if n.at <= as_of), key=lambda n: n.at)
    assessments = sorted((a for a in facts.assessments if a.at <= as_of), key=lambda a: a.at)
    handovers = sorted((h for h in facts.handovers if h.at <= as_of), key=lambda h: h.at)
    if facts.captured_at > as_of:
        return []
    endings = sorted(
        [_Ending(m.event_id, m.at) for m in movements if m.kind in END_OF_CUSTODY]
        + [_Ending(h.event_id, h.at) for h in handovers],
        key=lambda e: e.at,
    )
    spells = _sicknesses(movements, assessments, handovers)
    found: list[Due] = []
    for trigger, event_id, at in _card_triggers(facts, movements, spells):
        lapsed = _custody_ended(endings, at, at + CAPTURE_CARD_WINDOW)
        for addressee in CardAddressee:
            found.append(_card(facts, cards, trigger, event_id, at, addressee, lapsed, as_of))
    # (trigger, event, when, what it must carry, article)
    capture = (CAPTURE, facts.registered_event_id, facts.captured_at)
    triggers = [(*capture, REQUIRED_FIELDS[CAPTURE], NOTIFICATION_ARTICLES[CAPTURE])]
    triggers += [
        (m.kind.value, m.event_id, m.at, REQUIRED_FIELDS[m.kind], NOTIFICATION_ARTICLES[m.kind])
        for m in movements
        if m.kind in REQUIRED_FIELDS
    ]
    triggers += [(h.state.value, h.event_id, h.at, handover_fields(h), HANDOVER_ARTICLE) for h in handovers]
    for trigger, event_id, at, required, article in triggers:
        for recipient in NotificationRecipient:
            found.append(
                _notification(facts, notifications, trigger, event_id, at, recipient, as_of, required, article)
            )
    for spell in spells:
        for recipient in NotificationRecipient:
            found.extend(_health_reports(facts, notifications, spell, recipient, as_of))
    return found


def handover_fields(left: LeftCustody) -> tuple[str, ...]:
    """What the notification of a hand-over out of custody must carry."""
    return HANDOVER_FIELDS[left.state] + (("destination",) if left.destination else ())


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
            since=due.since,
            since_at=due.since_at,
        )
        for due in obligations(facts, as_of)
        if due.standing is Standing.OVERDUE
    ]


def _sicknesses(movements: list[Moved], assessments: list[Assessed], handovers: list[LeftCustody]) -> list[_Sickness]:
    """His spells of serious wounds or sickness while held, in time order. A spell starts at an
    assessment that finds him seriously wounded or sick while none runs; it ends at the first
    later assessment that finds he no longer is, or when custody ends (an escape, his death, a
    release, a hand-over). Held again after a recapture, he starts a new spell only with a new
    finding."""
    # (time, order at that time, what): an assessment at the same moment as a movement is read after it
    timeline: list[tuple[datetime, int, object]] = [(m.at, 0, m) for m in movements]
    timeline += [(h.at, 0, h) for h in handovers]
    timeline += [(a.at, 1, a) for a in assessments]
    timeline.sort(key=lambda item: (item[0], item[1]))
    spells: list[_Sickness] = []
    held, onset, ids = True, None, []
    for _at, _order, what in timeline:
        ended = None
        if isinstance(what, Moved):
            if what.kind in END_OF_CUSTODY:
                held, ended = False, what
            elif what.kind is MovementKind.RECAPTURED:
                held = True
        elif isinstance(what, LeftCustody):
            held, ended = False, what
        elif isinstance(what, Assessed) and held:
            if what.seriously_wounded_or_sick:
                if onset is None:
                    onset, ids = what, []
                ids.append(what.event_id)
            elif onset is not None:
                ended = what
        if ended is not None and onset is not None:
            spells.append(_Sickness(onset, tuple(ids), ended.event_id, ended.at))
            onset = None
    if onset is not None:
        spells.append(_Sickness(onset, tuple(ids)))
    return spells


def _card_triggers(
    facts: ClockFacts, movements: list[Moved], spells: list[_Sickness]
) -> Iterable[tuple[str, str, datetime]]:
    arrivals = [(m.kind.value, m.event_id, m.at) for m in movements if m.kind in CARD_ARRIVALS]
    week_after_capture = facts.captured_at + CAPTURE_CARD_WINDOW
    if not any(at <= week_after_capture for _, _, at in arrivals):
        # "immediately upon capture": held a week with no arrival recorded, he still owes cards
        yield CAPTURE, facts.registered_event_id, facts.captured_at
    # "likewise in case of sickness": the finding that starts each spell of serious wounds or sickness
    sick = [(SICKNESS, spell.onset.event_id, spell.onset.at) for spell in spells]
    yield from sorted(arrivals + sick, key=lambda trigger: trigger[2])


def _custody_ended(endings: list[_Ending], since: datetime, until: datetime) -> _Ending | None:
    """The escape, death, release or hand-over that ended his custody after `since`, if by `until`."""
    for ending in endings:
        if ending.at >= since:
            return ending if ending.at <= until else None
    return None


def _card(
    facts: ClockFacts,
    cards: list[CardRecorded],
    trigger: str,
    event_id: str,
    at: datetime,
    addressee: CardAddressee,
    lapsed: _Ending | None,
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
    required: tuple[str, ...],
    article: str,
) -> Due:
    due_at = at + NOTIFICATION_WINDOW
    candidates = [
        n
        for n in notifications
        if n.recipient is recipient and n.at >= at and n.concerning_event_id in (None, event_id)
    ]
    met = next((n for n in candidates if set(required) <= n.fields_sent), None)
    short = [n for n in candidates if met is None or n.at < met.at]
    standing = Standing.MET if met is not None else _unmet(due_at, as_of)
    article += RECIPIENT_ARTICLES[recipient]
    started = (trigger, event_id, at, recipient, article, required)
    return _notified(facts, Obligation.NOTIFICATION, *started, due_at, standing, met, short)


def _health_reports(
    facts: ClockFacts,
    notifications: list[Notified],
    spell: _Sickness,
    recipient: NotificationRecipient,
    as_of: datetime,
) -> list[Due]:
    """Art. 122(6) for one spell and one recipient: a report on his health due a week after the
    finding, then a week after each report, until the spell ends. A report falls due only while
    the spell runs: one whose week outlasts the spell lapses; one already late when the spell
    ended stays overdue until it is sent. A notification reports on his health if it carries
    "health" and names no event, or one of the spell's findings."""
    reports = [
        n
        for n in notifications
        if n.recipient is recipient and n.at >= spell.onset.at and n.concerning_event_id in (None, *spell.assessments)
    ]
    found: list[Due] = []
    since_id, since_at = spell.onset.event_id, spell.onset.at
    article = HEALTH_REPORT_ARTICLE + RECIPIENT_ARTICLES[recipient]
    while spell.ended_at is None or since_at < spell.ended_at:
        due_at = since_at + HEALTH_REPORT_INTERVAL
        later = [n for n in reports if n.at > since_at or (n.at == since_at and since_id == spell.onset.event_id)]
        met = next((n for n in later if set(HEALTH_REPORT_FIELDS) <= n.fields_sent), None)
        short = [n for n in later if (met is None or n.at < met.at) and not set(HEALTH_REPORT_FIELDS) <= n.fields_sent]
        lapsed = spell.ended_at is not None and spell.ended_at <= due_at and (met is None or met.at > spell.ended_at)
        if lapsed:
            standing = Standing.LAPSED
        elif met is not None:
            standing = Standing.MET
        else:
            standing = _unmet(due_at, as_of)
        due = _notified(
            facts,
            Obligation.HEALTH_REPORT,
            SICKNESS,
            spell.onset.event_id,
            spell.onset.at,
            recipient,
            article,
            HEALTH_REPORT_FIELDS,
            due_at,
            standing,
            met if standing is Standing.MET else None,
            short,
        )
        found.append(replace(due, lapsed_by=spell.ended_by if lapsed else None, since=since_id, since_at=since_at))
        if standing is not Standing.MET:
            break
        since_id, since_at = met.event_id, met.at
    return found


def _notified(
    facts: ClockFacts,
    obligation: Obligation,
    trigger: str,
    event_id: str,
    at: datetime,
    recipient: NotificationRecipient,
    article: str,
    required: tuple[str, ...],
    due_at: datetime,
    standing: Standing,
    met: Notified | None,
    candidates: list[Notified],
) -> Due:
    short = [n for n in candidates if not set(required) <= n.fields_sent]
    missing: tuple[str, ...] = ()
    if short:
        best = max(short, key=lambda n: (len(set(required) & n.fields_sent), n.at))
        missing = tuple(name for name in required if name not in best.fields_sent)
    return Due(
        captive_id=facts.captive_id,
        obligation=obligation,
        to=recipient.value,
        article=article,
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
