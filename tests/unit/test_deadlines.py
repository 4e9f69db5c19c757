"""The Art. 70 and Arts. 122-123 clocks (services/intake/deadlines.py), written from the law as
docs/legal-basis.md ("Intake: records and clocks") states it: pure, every time given."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from services.intake import deadlines
from services.intake.clock_facts import Assessed, CardRecorded, ClockFacts, LeftCustody, Moved, Notified
from services.intake.custody import CustodyState
from services.intake.obligations import Obligation, Standing
from shared.contracts.intake import CaptureCardAction, CardAddressee, MovementKind, NotificationRecipient

CAPTURED = datetime(2025, 1, 11, 9, tzinfo=UTC)
NIB, CTA = NotificationRecipient.NATIONAL_INFORMATION_BUREAU, NotificationRecipient.CENTRAL_TRACING_AGENCY
FAMILY, AGENCY = CardAddressee.FAMILY, CardAddressee.CENTRAL_AGENCY
# Art. 122(4): the Art. 17 minimum, the Power on which he depends, the address for his
# correspondence, and the capture itself.
CAPTURE_FIELDS = frozenset(
    {
        "surname",
        "first_names",
        "rank",
        "date_of_birth",
        "service_number",
        "armed_force",
        "power_depended_on",
        "internment_address",
        "capture",
    }
)


def day(n: float) -> datetime:
    return CAPTURED + timedelta(days=n)


def moved(kind: str, on: float, event_id: str | None = None) -> Moved:
    return Moved(event_id or f"ev-{kind.lower()}-{on}", day(on), MovementKind(kind))


def card(action: str, on: float, addressee: CardAddressee | None = None) -> CardRecorded:
    return CardRecorded(f"card-{action.lower()}-{on}-{addressee}", day(on), CaptureCardAction(action), addressee)


def sent(recipient, on: float, fields, concerning: str | None = None, event_id: str | None = None) -> Notified:
    return Notified(event_id or f"note-{recipient.value}-{on}", day(on), recipient, frozenset(fields), concerning)


def notified_of_capture(on: float = 1) -> list[Notified]:
    return [sent(NIB, on, CAPTURE_FIELDS), sent(CTA, on, CAPTURE_FIELDS)]


def assessed(on: float, serious: bool = True, event_id: str | None = None) -> Assessed:
    return Assessed(event_id or f"ev-assessed-{on}-{serious}", day(on), serious)


def left(state: str, on: float, destination: str | None = "RU", event_id: str = "ev-left") -> LeftCustody:
    return LeftCustody(event_id, day(on), CustodyState(state), destination)


def facts(movements=(), cards=(), notifications=(), assessments=(), handovers=()) -> ClockFacts:
    return ClockFacts(
        captive_id="CAP-0000-0000-0001",
        registered_event_id="ev-registered",
        captured_at=CAPTURED,
        movements=tuple(movements),
        cards=tuple(cards),
        notifications=tuple(notifications),
        assessments=tuple(assessments),
        handovers=tuple(handovers),
    )


def owed(found) -> set[tuple[str, str, str]]:
    """(obligation, to whom, what started it) of each overdue item."""
    return {(item.obligation, item.to, item.trigger) for item in found}


def cards_owed(found) -> set[tuple[str, str]]:
    return {(item.to, item.trigger) for item in found if item.obligation == "CAPTURE_CARD"}


# -- Art. 70: the capture card ---------------------------------------------------------------------


def test_nothing_is_overdue_within_the_week():
    assert deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 2)]), day(6)) == []


def test_after_the_week_both_cards_and_both_capture_notifications_are_overdue_with_article_and_cause():
    arrival = moved("ARRIVED_AT_CAMP", 2, "ev-arrival")
    found = deadlines.overdue(facts([arrival]), day(12))
    assert owed(found) == {
        ("CAPTURE_CARD", "FAMILY", "ARRIVED_AT_CAMP"),
        ("CAPTURE_CARD", "CENTRAL_AGENCY", "ARRIVED_AT_CAMP"),
        ("NOTIFICATION", "NATIONAL_INFORMATION_BUREAU", "CAPTURE"),
        ("NOTIFICATION", "CENTRAL_TRACING_AGENCY", "CAPTURE"),
    }
    family = next(item for item in found if item.to == "FAMILY")
    assert (family.article, family.started_by, family.started_at) == ("GC III Art. 70", "ev-arrival", day(2))
    assert (family.due_at, family.days_overdue) == (day(9), 3)
    cta = next(item for item in found if item.to == "CENTRAL_TRACING_AGENCY")
    assert cta.article == "GC III Art. 122(3)-(4); Art. 123" and cta.started_by == "ev-registered"
    assert set(cta.required_fields) == CAPTURE_FIELDS and cta.missing_fields == ()


def test_a_captive_hospitalised_straight_from_capture_gets_a_card_deadline():
    found = deadlines.overdue(facts([moved("HOSPITALISED", 0.1)], notifications=notified_of_capture()), day(10))
    assert cards_owed(found) == {("FAMILY", "HOSPITALISED"), ("CENTRAL_AGENCY", "HOSPITALISED")}


def test_a_transfer_starts_a_new_card_week_that_an_earlier_card_does_not_meet():
    arrival, transfer = moved("ARRIVED_AT_CAMP", 1), moved("TRANSFERRED", 20)
    both_sent = [card("SENT", 3, FAMILY), card("SENT", 3, AGENCY)]
    found = deadlines.overdue(facts([arrival, transfer], both_sent, notified_of_capture()), day(30))
    assert cards_owed(found) == {("FAMILY", "TRANSFERRED"), ("CENTRAL_AGENCY", "TRANSFERRED")}
    transferred = next(item for item in found if item.obligation == "CAPTURE_CARD")
    assert (transferred.started_by, transferred.due_at) == (transfer.event_id, day(27))
    # cards written at the new camp meet the new week
    again = [*both_sent, card("SENT", 22, FAMILY), card("SENT", 22, AGENCY)]
    assert cards_owed(deadlines.overdue(facts([arrival, transfer], again, notified_of_capture()), day(30))) == set()


def test_each_arrival_in_a_hospital_or_another_camp_and_a_recapture_opens_both_cards():
    movements = [
        moved("ARRIVED_AT_CAMP", 1),
        moved("HOSPITALISED", 10),
        moved("DISCHARGED_FROM_HOSPITAL", 15),  # back to his camp: not an arrival at another camp
        moved("TRANSFERRED", 20),
        moved("ESCAPED", 40),
        moved("RECAPTURED", 41),
    ]
    found = deadlines.obligations(facts(movements), day(60))
    triggers = [(due.trigger, due.to) for due in found if due.obligation is Obligation.CAPTURE_CARD]
    assert triggers == [
        (kind, addressee)
        for kind in ("ARRIVED_AT_CAMP", "HOSPITALISED", "TRANSFERRED", "RECAPTURED")
        for addressee in ("FAMILY", "CENTRAL_AGENCY")
    ]


def test_one_card_does_not_meet_both_addressees():
    found = deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 1)], [card("SENT", 2, FAMILY)]), day(10))
    assert cards_owed(found) == {("CENTRAL_AGENCY", "ARRIVED_AT_CAMP")}


def test_a_card_the_captive_declined_meets_both_and_an_offered_card_meets_neither():
    arrival = moved("ARRIVED_AT_CAMP", 1)
    assert cards_owed(deadlines.overdue(facts([arrival], [card("DECLINED_BY_CAPTIVE", 2)]), day(10))) == set()
    offered = deadlines.overdue(facts([arrival], [card("OFFERED", 2, FAMILY)]), day(10))
    assert cards_owed(offered) == {("FAMILY", "ARRIVED_AT_CAMP"), ("CENTRAL_AGENCY", "ARRIVED_AT_CAMP")}


def test_a_card_recorded_without_an_addressee_meets_nothing():
    """Cards recorded before the addressee existed do not say which obligation they met: fail closed."""
    found = deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 1)], [card("SENT", 2)]), day(10))
    assert cards_owed(found) == {("FAMILY", "ARRIVED_AT_CAMP"), ("CENTRAL_AGENCY", "ARRIVED_AT_CAMP")}


def test_a_card_sent_late_is_overdue_until_it_was_sent_and_met_after():
    history = facts([moved("ARRIVED_AT_CAMP", 2)], [card("SENT", 11, FAMILY), card("SENT", 3, AGENCY)])
    assert cards_owed(deadlines.overdue(history, day(10))) == {("FAMILY", "ARRIVED_AT_CAMP")}
    assert cards_owed(deadlines.overdue(history, day(12))) == set()
    [family] = [due for due in deadlines.obligations(history, day(12)) if due.to == "FAMILY"]
    assert (family.standing, family.met_at) == (Standing.MET, day(11))


def test_a_card_is_not_due_when_custody_ended_before_the_week_was_out():
    for end in ("DIED", "ESCAPED", "RELEASED"):
        history = facts([moved("ARRIVED_AT_CAMP", 1), moved(end, 4, "ev-end")])
        assert cards_owed(deadlines.overdue(history, day(30))) == set(), end
        lapsed = [due for due in deadlines.obligations(history, day(30)) if due.trigger == "ARRIVED_AT_CAMP"]
        assert {(due.standing, due.lapsed_by) for due in lapsed} == {(Standing.LAPSED, "ev-end")}
    # custody that ended after the week was out does not excuse the card that was already late
    late = facts([moved("ARRIVED_AT_CAMP", 1), moved("DIED", 12)])
    assert cards_owed(deadlines.overdue(late, day(30))) == {
        ("FAMILY", "ARRIVED_AT_CAMP"),
        ("CENTRAL_AGENCY", "ARRIVED_AT_CAMP"),
    }


def test_a_captive_held_a_week_with_no_arrival_recorded_owes_the_cards_of_his_capture():
    """Art. 70: "immediately upon capture, or not more than one week after arrival at a camp"."""
    assert cards_owed(deadlines.overdue(facts(), day(8))) == {("FAMILY", "CAPTURE"), ("CENTRAL_AGENCY", "CAPTURE")}
    # an arrival within that week gives the card its own week instead
    assert cards_owed(deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 6)]), day(8))) == set()
    # an arrival after it opens a week of its own; the capture's stays overdue
    found = deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 9)]), day(20))
    assert cards_owed(found) == {
        (to, trigger) for to in ("FAMILY", "CENTRAL_AGENCY") for trigger in ("CAPTURE", "ARRIVED_AT_CAMP")
    }


def test_only_facts_in_effect_at_as_of_count():
    history = facts([moved("ARRIVED_AT_CAMP", 1), moved("TRANSFERRED", 20)], [card("DECLINED_BY_CAPTIVE", 12)])
    # on day 10 the declined card (day 12) and the transfer (day 20) had not happened yet
    assert cards_owed(deadlines.overdue(history, day(10))) == {
        ("FAMILY", "ARRIVED_AT_CAMP"),
        ("CENTRAL_AGENCY", "ARRIVED_AT_CAMP"),
    }
    assert deadlines.obligations(facts(), CAPTURED - timedelta(seconds=1)) == []


# -- Arts. 122-123: notifications ------------------------------------------------------------------


def test_a_notification_lacking_the_required_fields_does_not_count_and_names_what_it_lacked():
    partial = sent(NIB, 1, {"surname", "rank", "capture"}, event_id="note-partial")
    found = deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 1)], notifications=[partial]), day(8))
    [nib] = [item for item in found if item.to == "NATIONAL_INFORMATION_BUREAU"]
    assert nib.trigger == "CAPTURE" and nib.insufficient_notifications == ("note-partial",)
    assert nib.missing_fields == (
        "first_names",
        "date_of_birth",
        "service_number",
        "armed_force",
        "power_depended_on",
        "internment_address",
    )
    # fields spread over two notifications do not add up: one must carry them all
    rest = sent(NIB, 2, CAPTURE_FIELDS - {"surname", "rank", "capture"})
    found = deadlines.overdue(facts(notifications=[partial, rest]), day(8))
    assert ("NOTIFICATION", "NATIONAL_INFORMATION_BUREAU", "CAPTURE") in owed(found)
    complete = sent(NIB, 3, CAPTURE_FIELDS | {"nationality"})
    found = deadlines.overdue(facts(notifications=[partial, rest, complete]), day(8))
    assert ("NOTIFICATION", "NATIONAL_INFORMATION_BUREAU", "CAPTURE") not in owed(found)


@pytest.mark.parametrize(
    ("kind", "fields", "article"),
    [
        ("TRANSFERRED", {"transfer", "internment_address"}, "GC III Art. 122(5)"),
        ("HOSPITALISED", {"health"}, "GC III Art. 122(5)"),
        ("ESCAPED", {"escape"}, "GC III Art. 122(5)"),
        ("RECAPTURED", {"recapture", "internment_address"}, "GC III Arts. 94, 122(5)"),
        ("DIED", {"death"}, "GC III Arts. 120, 122(5)"),
        ("RELEASED", {"release"}, "GC III Art. 122(5)"),
    ],
)
def test_a_notification_is_due_to_both_for_each_transfer_hospitalisation_escape_recapture_death_and_release(
    kind, fields, article
):
    before = [moved("ARRIVED_AT_CAMP", 1)] + ([moved("ESCAPED", 3)] if kind == "RECAPTURED" else [])
    event = moved(kind, 5, "ev-it")

    def notes_owed(notifications, as_of):
        found = deadlines.overdue(facts([*before, event], notifications=notifications), as_of)
        return [item for item in found if item.obligation == "NOTIFICATION" and item.trigger == kind]

    assert notes_owed(notified_of_capture(), day(11)) == []  # within the week
    notes = notes_owed(notified_of_capture(), day(13))
    assert {(item.to, item.started_by) for item in notes} == {
        ("NATIONAL_INFORMATION_BUREAU", "ev-it"),
        ("CENTRAL_TRACING_AGENCY", "ev-it"),
    }
    nib = next(item for item in notes if item.to == "NATIONAL_INFORMATION_BUREAU")
    assert (set(nib.required_fields), nib.article, nib.due_at) == (fields, article, day(12))
    assert next(item for item in notes if item.to == "CENTRAL_TRACING_AGENCY").article == article + "; Art. 123"

    both = [*notified_of_capture(), sent(NIB, 6, fields), sent(CTA, 6, fields | {"surname"})]
    assert notes_owed(both, day(13)) == []
    # the capture's fields do not report this event
    assert (
        len(notes_owed([*notified_of_capture(), sent(NIB, 6, CAPTURE_FIELDS), sent(CTA, 6, CAPTURE_FIELDS)], day(13)))
        == 2
    )


def test_each_event_needs_its_own_notification_sent_at_or_after_it():
    first, second = moved("TRANSFERRED", 2, "ev-first"), moved("TRANSFERRED", 9, "ev-second")
    fields = {"transfer", "internment_address"}
    # sent between the two transfers: it reports the first, it cannot report the second
    notes = [*notified_of_capture(), sent(NIB, 3, fields), sent(CTA, 3, fields)]
    found = deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 1), first, second], notifications=notes), day(17))
    assert {(item.to, item.started_by) for item in found if item.obligation == "NOTIFICATION"} == {
        ("NATIONAL_INFORMATION_BUREAU", "ev-second"),
        ("CENTRAL_TRACING_AGENCY", "ev-second"),
    }


def test_a_notification_that_names_another_event_does_not_count_for_this_one():
    fields = {"transfer", "internment_address"}
    movements = [moved("ARRIVED_AT_CAMP", 1), moved("TRANSFERRED", 2, "ev-first"), moved("TRANSFERRED", 3, "ev-second")]
    notes = [*notified_of_capture(), sent(NIB, 4, fields, concerning="ev-first"), sent(CTA, 4, fields)]
    found = deadlines.overdue(facts(movements, notifications=notes), day(11))
    # CTA's notification named no event: it reports both; the bureau's reported only the first
    assert {(item.to, item.started_by) for item in found if item.obligation == "NOTIFICATION"} == {
        ("NATIONAL_INFORMATION_BUREAU", "ev-second")
    }


def test_the_capture_notification_must_be_sent_after_the_capture():
    early = [sent(NIB, -1, CAPTURE_FIELDS), sent(CTA, -1, CAPTURE_FIELDS)]
    found = deadlines.overdue(facts([moved("ARRIVED_AT_CAMP", 1)], notifications=early), day(8))
    assert {(item.obligation, item.trigger) for item in found} >= {("NOTIFICATION", "CAPTURE")}


def test_the_clocks_take_their_times_from_the_facts_and_the_caller_never_the_clock():
    source = inspect.getsource(deadlines)
    for reading in ("now(", "utc_now", "time.time", "today("):
        assert reading not in source, reading
    assert timedelta(days=7) == deadlines.CAPTURE_CARD_WINDOW  # Art. 70: one week
    assert timedelta(days=7) == deadlines.NOTIFICATION_WINDOW  # this project's policy (docs/legal-basis.md)


# -- Art. 122(4): what the capture notification carries --------------------------------------------


def test_the_capture_notification_must_name_the_power_he_depends_on_and_his_address_for_letters():
    """Art. 122(4): "... rank, army, regimental, personal or serial number ... indication of the
    Power on which he depends ... and the address to which correspondence for the prisoner may be
    sent": his army (the force he belongs to) as well as his service number."""
    art17_and_capture = {"surname", "first_names", "rank", "date_of_birth", "service_number", "capture"}
    for lacking in ("armed_force", "power_depended_on", "internment_address"):
        short = sent(NIB, 1, CAPTURE_FIELDS - {lacking}, event_id="note-short")
        [nib] = [item for item in deadlines.overdue(facts(notifications=[short]), day(8)) if item.to == NIB.value]
        assert (nib.trigger, nib.missing_fields, nib.insufficient_notifications) == (
            "CAPTURE",
            (lacking,),
            ("note-short",),
        )
    # the Art. 17 minimum with the capture, as before, no longer suffices
    found = deadlines.overdue(facts(notifications=[sent(NIB, 1, art17_and_capture)]), day(8))
    assert ("NOTIFICATION", NIB.value, "CAPTURE") in owed(found)
    complete = [sent(NIB, 1, CAPTURE_FIELDS), sent(CTA, 1, CAPTURE_FIELDS)]
    assert owed(deadlines.overdue(facts(notifications=complete), day(8))) == {
        ("CAPTURE_CARD", "FAMILY", "CAPTURE"),
        ("CAPTURE_CARD", "CENTRAL_AGENCY", "CAPTURE"),
    }


# -- Art. 122(5): he left the detaining state's custody ---------------------------------------------


@pytest.mark.parametrize(
    ("state", "destination", "fields"),
    [
        ("EXCHANGED", "RU", {"exchange", "destination"}),
        ("TRANSFERRED_TO_POWER", "KR", {"transfer", "destination"}),
        ("REPATRIATED", "KP", {"repatriation", "destination"}),
        ("RESETTLED", "KR", {"release", "destination"}),
        ("RELEASED", None, {"release"}),  # released to stay: he went nowhere
        ("RELEASED", "KR", {"release", "destination"}),  # released by the commission, to the state he chose
        ("INTERNED_IN_NEUTRAL_STATE", "CH", {"transfer", "destination"}),
        ("WITH_COMMISSION", "Neutral Repatriation Commission", {"transfer", "destination"}),
    ],
)
def test_each_hand_over_out_of_custody_is_notified_to_both_with_where_he_went(state, destination, fields):
    """Art. 122(5): "information regarding transfers, releases, repatriations", forwarded to the
    Agency (Art. 123), so that his family learns where he went."""
    history = dict(movements=[moved("ARRIVED_AT_CAMP", 1)], handovers=[left(state, 20, destination, "ev-left")])

    def notes_owed(notifications, as_of):
        found = deadlines.overdue(facts(**history, notifications=notifications), as_of)
        return [item for item in found if item.obligation == "NOTIFICATION" and item.trigger == state]

    assert notes_owed(notified_of_capture(), day(26)) == []  # within the week
    notes = notes_owed(notified_of_capture(), day(28))
    assert {(item.to, item.started_by, item.due_at) for item in notes} == {
        (NIB.value, "ev-left", day(27)),
        (CTA.value, "ev-left", day(27)),
    }
    nib = next(item for item in notes if item.to == NIB.value)
    assert set(nib.required_fields) == fields and nib.article == "GC III Art. 122(5)"
    assert next(item for item in notes if item.to == CTA.value).article == "GC III Art. 122(5); Art. 123"
    # met by a notification at or after it that carries them, naming it or no event
    met = [*notified_of_capture(), sent(NIB, 21, fields, concerning="ev-left"), sent(CTA, 25, fields)]
    assert notes_owed(met, day(28)) == []
    # not by one sent before he left, nor by one that lacks where he went
    lacking = fields - ({"destination"} if destination else {"release"})
    early = [*notified_of_capture(), sent(NIB, 19, fields), sent(CTA, 21, lacking or {"surname"})]
    assert {item.to for item in notes_owed(early, day(28))} == {NIB.value, CTA.value}


def test_the_hand_over_to_the_commission_and_its_release_are_each_notified():
    """Korean War route: custody passes to the commission (a transfer), which later releases him."""
    history = facts(
        [moved("ARRIVED_AT_CAMP", 1)],
        notifications=notified_of_capture(),
        handovers=[
            left("WITH_COMMISSION", 10, "Neutral Repatriation Commission", "ev-commission"),
            left("RELEASED", 100, "KR", "ev-released"),
        ],
    )

    def notified(as_of):
        return {item.started_by for item in deadlines.overdue(history, as_of) if item.obligation == "NOTIFICATION"}

    assert notified(day(20)) == {"ev-commission"}
    assert notified(day(110)) == {"ev-commission", "ev-released"}


def test_a_hand_over_within_the_week_excuses_the_card_one_after_it_does_not():
    for state in ("EXCHANGED", "TRANSFERRED_TO_POWER", "WITH_COMMISSION"):
        history = facts([moved("ARRIVED_AT_CAMP", 1)], handovers=[left(state, 4, event_id="ev-out")])
        assert cards_owed(deadlines.overdue(history, day(30))) == set(), state
        lapsed = [due for due in deadlines.obligations(history, day(30)) if due.obligation == "CAPTURE_CARD"]
        assert {(due.standing, due.lapsed_by) for due in lapsed} == {(Standing.LAPSED, "ev-out")}
    late = facts([moved("ARRIVED_AT_CAMP", 1)], handovers=[left("EXCHANGED", 12)])
    assert cards_owed(deadlines.overdue(late, day(30))) == {
        ("FAMILY", "ARRIVED_AT_CAMP"),
        ("CENTRAL_AGENCY", "ARRIVED_AT_CAMP"),
    }


def test_a_hand_over_counts_only_from_its_own_time():
    history = facts(
        [moved("ARRIVED_AT_CAMP", 1)], notifications=notified_of_capture(), handovers=[left("EXCHANGED", 40)]
    )
    assert not [due for due in deadlines.obligations(history, day(39)) if due.trigger == "EXCHANGED"]


# -- Art. 70 "likewise in case of sickness" -------------------------------------------------------


def test_a_finding_of_serious_wounds_or_sickness_opens_both_cards():
    arrival = moved("ARRIVED_AT_CAMP", 1)
    both = [card("SENT", 2, FAMILY), card("SENT", 2, AGENCY)]
    history = facts([arrival], both, notified_of_capture(), [assessed(20, event_id="ev-sick")])
    found = deadlines.overdue(history, day(28))
    assert cards_owed(found) == {
        ("FAMILY", "SERIOUSLY_WOUNDED_OR_SICK"),
        ("CENTRAL_AGENCY", "SERIOUSLY_WOUNDED_OR_SICK"),
    }
    family = next(item for item in found if item.obligation == "CAPTURE_CARD" and item.to == "FAMILY")
    assert (family.article, family.started_by, family.due_at) == ("GC III Art. 70", "ev-sick", day(27))
    assert family.medical  # it says he was found seriously wounded or sick: medical tier
    # the cards written after the finding meet it
    after = [*both, card("SENT", 22, FAMILY), card("SENT", 22, AGENCY)]
    assert (
        cards_owed(deadlines.overdue(facts([arrival], after, notified_of_capture(), [assessed(20)]), day(28))) == set()
    )


def test_only_the_finding_that_starts_a_sickness_opens_a_card():
    arrival = moved("ARRIVED_AT_CAMP", 1)
    both = [card("SENT", 2, FAMILY), card("SENT", 2, AGENCY), card("SENT", 21, FAMILY), card("SENT", 21, AGENCY)]
    # the same sickness found again a week later, and a finding that he is not seriously ill, open nothing
    history = facts([arrival], both, assessments=[assessed(3, False), assessed(20), assessed(27), assessed(34)])
    sick = [due for due in deadlines.obligations(history, day(60)) if due.obligation == "CAPTURE_CARD"]
    assert {(due.trigger, due.started_at) for due in sick} == {
        ("ARRIVED_AT_CAMP", day(1)),
        ("SERIOUSLY_WOUNDED_OR_SICK", day(20)),
    }
    # recovered, then seriously ill again: a new sickness, a new card
    again = facts([arrival], both, assessments=[assessed(20), assessed(30, False), assessed(40)])
    assert cards_owed(deadlines.overdue(again, day(50))) == {
        ("FAMILY", "SERIOUSLY_WOUNDED_OR_SICK"),
        ("CENTRAL_AGENCY", "SERIOUSLY_WOUNDED_OR_SICK"),
    }


def test_a_sickness_does_not_replace_the_card_owed_for_the_capture():
    """A finding is not an arrival: held a week with no arrival recorded, the capture's cards are owed too."""
    found = deadlines.overdue(facts(assessments=[assessed(0.1)]), day(8))
    assert cards_owed(found) == {
        (to, trigger) for to in ("FAMILY", "CENTRAL_AGENCY") for trigger in ("CAPTURE", "SERIOUSLY_WOUNDED_OR_SICK")
    }


# -- Art. 122(6): weekly reports on the health of the seriously wounded or sick ---------------------


def health_owed(history: ClockFacts, as_of: datetime) -> list:
    return [item for item in deadlines.overdue(history, as_of) if item.obligation == "HEALTH_REPORT"]


def test_a_report_on_his_health_is_due_to_both_a_week_after_the_finding():
    """Art. 122(6): "information regarding the state of health of prisoners of war who are
    seriously ill or seriously wounded shall be supplied regularly, every week if possible"."""
    history = facts([moved("ARRIVED_AT_CAMP", 1)], assessments=[assessed(10, event_id="ev-sick")])
    assert health_owed(history, day(17)) == []
    reports = health_owed(history, day(18))
    assert {(item.to, item.started_by, item.due_at, item.article) for item in reports} == {
        (NIB.value, "ev-sick", day(17), "GC III Art. 122(6)"),
        (CTA.value, "ev-sick", day(17), "GC III Art. 122(6); Art. 123"),
    }
    assert all(item.required_fields == ("health",) and item.medical for item in reports)


def test_each_report_starts_the_next_week():
    sick = assessed(10, event_id="ev-sick")
    weekly = [sent(NIB, 15, {"health"}, event_id="r1"), sent(NIB, 21, {"health"}, event_id="r2")]
    history = facts(assessments=[sick], notifications=weekly)
    nib = [
        due
        for due in deadlines.obligations(history, day(40))
        if due.obligation == "HEALTH_REPORT" and due.to == NIB.value
    ]
    assert [(due.standing, due.since, due.due_at, due.met_by) for due in nib] == [
        (Standing.MET, "ev-sick", day(17), "r1"),
        (Standing.MET, "r1", day(22), "r2"),
        (Standing.OVERDUE, "r2", day(28), None),
    ]
    # a report that names the finding counts; one that names another event, or lacks "health", does not
    named = facts(assessments=[sick], notifications=[sent(NIB, 12, {"health"}, concerning="ev-sick")])
    assert [item.to for item in health_owed(named, day(18))] == [CTA.value]
    other = facts(
        [moved("HOSPITALISED", 9, "ev-hospital")],
        assessments=[sick],
        notifications=[sent(NIB, 12, {"health"}, concerning="ev-hospital"), sent(CTA, 12, {"death"}, event_id="x")],
    )
    [nib_owed, cta_owed] = sorted(health_owed(other, day(18)), key=lambda item: item.to != NIB.value)
    assert nib_owed.to == NIB.value and cta_owed.insufficient_notifications == ("x",)
    assert cta_owed.missing_fields == ("health",)


def test_the_reports_stop_when_he_is_found_no_longer_seriously_ill_and_when_custody_ends():
    sick = assessed(10, event_id="ev-sick")
    # found recovered before the first report fell due: that report lapses, nothing more is owed
    recovered = facts(assessments=[sick, assessed(14, False, "ev-better")])
    assert health_owed(recovered, day(60)) == []
    lapsed = [due for due in deadlines.obligations(recovered, day(60)) if due.obligation == "HEALTH_REPORT"]
    assert {(due.standing, due.lapsed_by) for due in lapsed} == {(Standing.LAPSED, "ev-better")}
    # a report already late when he recovered stays owed until it is sent
    late = facts(assessments=[sick, assessed(20, False)])
    assert {item.due_at for item in health_owed(late, day(60))} == {day(17)}
    # custody ended: by death (its own notification takes over), escape, release or a hand-over
    for end in (
        dict(movements=[moved("DIED", 12, "ev-end")]),
        dict(movements=[moved("ESCAPED", 12, "ev-end")]),
        dict(handovers=[left("REPATRIATED", 12, "KP", "ev-end")]),
    ):
        ended = facts(assessments=[sick], **end)
        assert health_owed(ended, day(60)) == [], end
    # a finding while he is away does not start reports; back in custody, a new finding does
    away = facts(
        [moved("ESCAPED", 5), moved("RECAPTURED", 20)], assessments=[assessed(8), assessed(25, event_id="ev-again")]
    )
    assert {item.started_by for item in health_owed(away, day(33))} == {"ev-again"}


def test_what_a_finding_of_sickness_started_is_marked_medical_and_nothing_else_is():
    history = facts([moved("ARRIVED_AT_CAMP", 1)], assessments=[assessed(2)], handovers=[left("EXCHANGED", 30)])
    found = deadlines.overdue(history, day(60))
    assert {item.trigger for item in found if item.medical} == {"SERIOUSLY_WOUNDED_OR_SICK"}
    assert {item.obligation for item in found if item.medical} == {"CAPTURE_CARD", "HEALTH_REPORT"}
    assert not any(item.medical for item in found if item.trigger in ("CAPTURE", "ARRIVED_AT_CAMP", "EXCHANGED"))
