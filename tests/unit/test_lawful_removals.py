"""The second legal review of the disposition rules, written from the articles (docs/legal-basis.md):
a fact's weight comes from who verifiably recorded it; a wish is confirmed shortly before a
hand-over; nobody is moved while not fit to travel; only his own conflict's hostilities count;
POW-equivalent protection is a POW's; the neutral repatriation commission's route has an end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.disposition.commission import (
    EXPLANATION_DAYS,
    commission_referral,
    commission_release,
    explanation_period,
)
from services.disposition.facts import Assurance, Commission, Dated, DispositionFacts, fold
from services.disposition.rules import HandOver, disposition, exchange_eligibility
from shared.contracts.disposition import DispositionKind
from shared.contracts.standing import Standing, standing_of

CAPTIVE = "CAP-0000-0000-0001"
DELEGATE, SYSTEM, OFFICER, COMMISSION = (
    "ICRC_DELEGATE",
    "AGENCY_SYSTEM",
    "DETAINING_STATE_OFFICER",
    ("MIXED_MEDICAL_COMMISSION"),
)
K = DispositionKind


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_counter = iter(range(1, 100_000))


def fact(type_: str, effective: str, **data) -> Dated:
    n = next(_counter)
    return Dated(f"ev-{n}-{type_}", type_, day(effective), day(effective), data, n)


def registered(captured: str = "2025-01-11") -> Dated:
    return fact(
        "CaptiveRegistered",
        captured,
        captured_at=f"{captured}T00:00:00Z",
        nationality=None,
        armed_force={"force": "Korean People's Army", "force_state": "KP", "integrated_in_forces_of": "RU"},
    )


def status(value: str = "POW") -> Dated:
    return fact("StatusDetermined", "2025-01-11", status=value)


def wish(kind: str, effective: str = "2025-05-20", by: str = DELEGATE, third_state=None, **how) -> Dated:
    return fact(
        "WishDeclared",
        effective,
        wish=kind,
        third_state=third_state,
        setting=how.get("setting", "PRIVATE_ICRC_INTERVIEW"),
        free_and_informed=how.get("free", True),
        standing=by,
    )


def risk(destination: str, outcome: str = "NO_REAL_RISK", by: str = OFFICER, effective: str = "2025-02-01") -> Dated:
    return fact(
        "RiskAssessed",
        effective,
        destination=destination,
        outcome=outcome,
        would_hand_on=False,
        onward_states=[],
        diplomatic_assurances=False,
        relies_on_assurances=False,
        standing=by,
    )


def assurance(state: str, by: str = OFFICER, **flags) -> Dated:
    return fact(
        "StateAssuranceRecorded",
        "2025-02-01",
        state=state,
        willing_and_able_to_apply_gc_iii=flags.get("willing", True),
        accepts_for_resettlement=flags.get("accepts", True),
        neutral_accommodation_agreement=flags.get("neutral", True),
        repatriation_commission_agreement=flags.get("commission", True),
        commission_explanation_days=flags.get("explanation_days"),
        standing=by,
    )


def medical(effective: str, by: str = COMMISSION, **found) -> Dated:
    return fact(
        "MedicalAssessed",
        effective,
        seriously_wounded_or_sick=found.get("sick", True),
        by_mixed_medical_commission=found.get("commission", True),
        fit_to_travel=found.get("fit"),
        standing=by,
    )


def ceased(effective: str, conflict: str = "main", state=None) -> Dated:
    return fact("ConflictFactRecorded", effective, kind="HOSTILITIES_CEASED", state=state, conflict=conflict)


def at(facts: list[Dated], moment: str = "2025-06-01") -> DispositionFacts:
    return fold(CAPTIVE, facts, day(moment))


# A POW who wants to go home, with no real risk in RU or KP and every state's assurance.
NO_WISH = [registered(), status(), risk("RU"), risk("KP"), *map(assurance, ("RU", "KR", "CH"))]
READY = [*NO_WISH, wish("REPATRIATE")]


def blocked(verdict) -> list[str]:
    return [reason.rule_id for reason in verdict.blocked_by]


def finding(verdict, rule_id: str) -> str:
    return next(reason.finding for reason in verdict.reasons if reason.rule_id == rule_id)


# -- 1. weight from who verifiably recorded a fact ---------------------------------------------------


def test_the_standing_comes_from_the_verified_caller_not_from_a_field():
    assert standing_of("person:abc", "icrc") is Standing.ICRC_DELEGATE
    assert standing_of("client:captives-operator", "operator") is Standing.AGENCY_SYSTEM
    assert standing_of("client:icrc-delegate", "icrc") is Standing.AGENCY_SYSTEM  # the ICRC's system, not a person
    assert standing_of("person:abc", "detaining_state") is Standing.DETAINING_STATE_OFFICER
    assert standing_of(None, None) is Standing.UNKNOWN  # recorded before standings were kept


@pytest.mark.parametrize("author", [SYSTEM, OFFICER, "UNKNOWN", "TRIBUNAL"])
def test_a_private_interview_recorded_by_anyone_but_an_icrc_delegate_verifies_nothing(author):
    facts = at([*READY[:2], wish("REPATRIATE", by=author), risk("RU")])
    assert facts.wish is None and facts.unverified_wish is not None
    verdict = exchange_eligibility(facts, "RU")
    assert blocked(verdict) == ["D3"]
    assert "not by an ICRC delegate as herself" in finding(verdict, "D3")


def test_a_forged_wish_does_not_open_the_return_to_a_real_risk_after_hostilities():
    # CAT Art. 3 and Art. 118: a real risk at home blocks unless HE wishes to return, verified.
    facts = [registered(), status(), risk("KP", "REAL_RISK"), ceased("2025-05-01"), wish("REPATRIATE", by=SYSTEM)]
    verdict = disposition(K.REPATRIATION_AFTER_HOSTILITIES, at(facts), None)
    assert "D12" in blocked(verdict)
    facts[-1] = wish("REPATRIATE", by=DELEGATE)
    assert disposition(K.REPATRIATION_AFTER_HOSTILITIES, at(facts), None).allowed


def test_only_a_member_of_the_mixed_medical_commission_makes_its_finding():
    sick_by_system = [*READY, medical("2025-03-01", by=SYSTEM)]
    assert "D8" in blocked(disposition(K.DIRECT_REPATRIATION, at(sick_by_system), None))
    sick = [*READY, medical("2025-03-01")]
    assert disposition(K.DIRECT_REPATRIATION, at(sick), None).allowed
    # Another assessment afterwards neither makes nor unmakes the commission's finding.
    assert at([*sick, medical("2025-04-01", by=OFFICER, sick=False, commission=False)]).seriously_wounded_or_sick


def test_a_clearing_assessment_or_assurance_counts_only_from_an_officer_as_himself():
    by_system = [registered(), status(), wish("REPATRIATE"), risk("RU", by=SYSTEM)]
    assert blocked(exchange_eligibility(at(by_system), "RU")) == ["D4"]
    # A real risk blocks whoever records it: failing closed needs no standing.
    real = [*READY, risk("RU", "REAL_RISK", by=SYSTEM, effective="2025-03-01")]
    assert blocked(exchange_eligibility(at(real), "RU")) == ["D4"]
    transfer = [*READY[:2], wish("THIRD_STATE", third_state="KR"), risk("KR"), assurance("KR", by=SYSTEM)]
    assert "D5" in blocked(disposition(K.ART_12_TRANSFER, at(transfer), "KR"))


# -- 2. the wish is confirmed before the hand-over ----------------------------------------------------


def test_a_hand_over_needs_the_verified_wish_heard_within_the_period():
    facts = at(READY, "2025-06-01")  # the wish was heard on 2025-05-20: 12 days before
    assert exchange_eligibility(facts, "RU", HandOver(30)).allowed
    assert "D17" in blocked(exchange_eligibility(facts, "RU", HandOver(10)))
    old = at(READY, "2025-07-15")  # 56 days after it was heard
    assert exchange_eligibility(old, "RU").allowed  # a proposal or a check asks nothing more
    verdict = exchange_eligibility(old, "RU", HandOver(30))
    assert blocked(verdict) == ["D17"]
    assert "56 days before the hand-over" in finding(verdict, "D17")
    # The delegate hears him again: the same wish, confirmed.
    confirmed = at([*READY, wish("REPATRIATE", effective="2025-07-10")], "2025-07-15")
    assert exchange_eligibility(confirmed, "RU", HandOver(30)).allowed


@pytest.mark.parametrize(
    ("kind", "destination", "extra"),
    [
        (K.ART_12_TRANSFER, "KR", [wish("THIRD_STATE", "2025-01-20", third_state="KR"), risk("KR")]),
        (K.RESETTLEMENT, "KR", [wish("THIRD_STATE", "2025-01-20", third_state="KR"), risk("KR")]),
        (K.NEUTRAL_REPATRIATION_COMMISSION, "CH", [wish("UNDECIDED", "2025-01-20"), risk("CH")]),
    ],
)
def test_every_removal_that_rests_on_a_wish_asks_for_its_confirmation(kind, destination, extra):
    facts = at([*NO_WISH, *extra])
    assert disposition(kind, facts, destination).allowed
    assert "D17" in blocked(disposition(kind, facts, destination, HandOver(30)))


def test_a_move_that_rests_on_no_wish_asks_for_no_confirmation():
    sick = at([*READY[:2], risk("KP"), assurance("CH"), risk("CH"), medical("2025-01-20")])
    assert disposition(K.NEUTRAL_ACCOMMODATION, sick, "CH", HandOver(30)).allowed


# -- 3. fitness to travel -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "destination"),
    [
        (K.EXCHANGE, "RU"),
        (K.DIRECT_REPATRIATION, None),
        (K.NEUTRAL_ACCOMMODATION, "CH"),
        (K.ART_12_TRANSFER, "KR"),
    ],
)
def test_nobody_is_moved_while_a_finding_says_he_is_not_fit_to_travel(kind, destination):
    base = [*READY, medical("2025-03-01"), risk("CH"), risk("KR")]
    if kind is K.ART_12_TRANSFER:
        base.append(wish("THIRD_STATE", "2025-05-21", third_state="KR"))
    assert disposition(kind, at(base), destination).allowed
    unfit = [*base, medical("2025-05-25", by=OFFICER, sick=True, commission=False, fit=False)]
    verdict = disposition(kind, at(unfit), destination)
    assert blocked(verdict) == ["D16"]
    assert "not fit to travel on 2025-05-25" in finding(verdict, "D16")
    fit_again = [*unfit, medical("2025-05-30", by=OFFICER, sick=True, commission=False, fit=True)]
    assert disposition(kind, at(fit_again), destination).allowed


def test_a_system_cannot_declare_him_fit_and_a_hospital_stay_holds_him_until_a_finding_says_he_is():
    unfit = [*READY, medical("2025-05-25", by=OFFICER, commission=False, fit=False)]
    by_system = [*unfit, medical("2025-05-30", by=SYSTEM, commission=False, fit=True)]
    assert blocked(exchange_eligibility(at(by_system), "RU")) == ["D16"]
    hospitalised = [*READY, fact("MovementRecorded", "2025-05-22", kind="HOSPITALISED")]
    assert blocked(exchange_eligibility(at(hospitalised), "RU")) == ["D16"]
    discharged = [*hospitalised, fact("MovementRecorded", "2025-05-28", kind="DISCHARGED_FROM_HOSPITAL")]
    assert blocked(exchange_eligibility(at(discharged), "RU")) == ["D16"]
    found_fit = [*discharged, medical("2025-05-29", by=OFFICER, commission=False, fit=True)]
    assert exchange_eligibility(at(found_fit), "RU").allowed


def test_staying_in_the_detaining_state_is_no_journey():
    unfit = at([*READY[:2], wish("STAY_IN_DETAINING_STATE"), medical("2025-05-25", fit=False)])
    assert disposition(K.STAY_IN_DETAINING_STATE, unfit, None).allowed


# -- 4. one conflict at a time ------------------------------------------------------------------------


def test_a_cessation_in_another_conflict_changes_nothing_for_him():
    sick_wants_to_stay = [*READY[:2], risk("KP"), medical("2025-03-01"), wish("STAY_IN_DETAINING_STATE")]
    elsewhere = at([*sick_wants_to_stay, ceased("2025-04-01", conflict="another-war")])
    assert not elsewhere.hostilities.ceased
    assert "D9" in blocked(disposition(K.DIRECT_REPATRIATION, elsewhere, None))  # Art. 109(3): not against his will
    assert "D11" in blocked(disposition(K.REPATRIATION_AFTER_HOSTILITIES, elsewhere, None))
    his_own = at([*sick_wants_to_stay, ceased("2025-04-01")])
    assert his_own.hostilities.ceased
    assert disposition(K.REPATRIATION_AFTER_HOSTILITIES, his_own, None).allowed


# -- 5. POW-equivalent protection ---------------------------------------------------------------------


def test_a_pow_equivalent_man_is_protected_like_a_pow_in_every_rule():
    # AP I Art. 44(4): protections "equivalent in all respects" to a POW's.
    equivalent = [registered(), status("POW_EQUIVALENT"), *NO_WISH[2:], wish("REPATRIATE")]
    assert exchange_eligibility(at(equivalent), "RU").allowed
    to_kr = [*equivalent, wish("THIRD_STATE", "2025-05-21", third_state="KR"), risk("KR")]
    assert disposition(K.ART_12_TRANSFER, at(to_kr), "KR").allowed
    civilian = [registered(), status("AP_I_ART_75"), *NO_WISH[2:], wish("REPATRIATE")]
    assert blocked(exchange_eligibility(at(civilian), "RU")) == ["D2"]


# -- 6. the commission's route ends --------------------------------------------------------------------


def commission_facts(moment: datetime, wish_kind: str | None = None, referred: datetime | None = None):
    handed = datetime(2025, 3, 1, tzinfo=UTC)
    base = at([*READY[:2], risk("KP"), risk("KR"), assurance("KR"), assurance("CH")], "2025-03-01")
    from dataclasses import replace

    chosen = None
    if wish_kind:
        chosen = at(
            [*READY[:2], wish(wish_kind, "2025-05-25", third_state="KR" if wish_kind == "THIRD_STATE" else None)]
        )
        chosen = chosen.wish
    commission = Commission(
        "DSP-1", handed, 90, "ev-handed", referred, 30 if referred else 0, "ev-ref" if referred else None
    )
    return replace(base, at=moment, wish=chosen, commission=commission)


def test_explanations_last_ninety_days_unless_the_agreement_records_another_period():
    facts = at([*READY[:2], assurance("CH"), assurance("IN", explanation_days=120)])
    assert explanation_period(facts, "CH") == EXPLANATION_DAYS == 90
    assert explanation_period(facts, "IN") == 120
    assert explanation_period(facts, "XX") == 90


def test_one_still_undecided_after_the_explanations_is_referred_then_released_to_civilian_status():
    during = commission_facts(datetime(2025, 5, 1, tzinfo=UTC))
    assert "D15" in blocked(commission_referral(during, "DSP-1"))
    after = commission_facts(datetime(2025, 6, 5, tzinfo=UTC))  # the 90 days ended on 2025-05-30
    assert commission_referral(after, "DSP-1").allowed
    # Not referred: he cannot be released undecided.
    assert "D18" in blocked(commission_release(after, "DSP-1"))
    referred = datetime(2025, 6, 5, tzinfo=UTC)
    within = commission_facts(datetime(2025, 6, 20, tzinfo=UTC), referred=referred)
    assert blocked(commission_release(within, "DSP-1")) == ["D18"]
    released = commission_release(commission_facts(datetime(2025, 7, 6, tzinfo=UTC), referred=referred), "DSP-1")
    assert released.allowed and released.destination is None  # to civilian status where he is: no removal
    assert "released to civilian status" in finding(released, "D18")


def test_one_who_chose_is_released_to_his_choice_not_referred():
    chose = commission_facts(datetime(2025, 6, 5, tzinfo=UTC), "THIRD_STATE")
    assert blocked(commission_referral(chose, "DSP-1")) == ["D3"]
    release = commission_release(chose, "DSP-1")
    assert release.allowed and release.destination == "KR"
    assert "D17" not in blocked(commission_release(chose, "DSP-1", HandOver(30)))  # heard 11 days before
    assert "D17" in blocked(commission_release(chose, "DSP-1", HandOver(5)))


def test_assurance_records_keep_the_agreed_period():
    folded = at([assurance("IN", explanation_days=120)])
    assert folded.assurances["IN"] == Assurance(True, True, True, folded.assurances["IN"].event_id, True, 120)
    assert timedelta(days=90) == Commission("D", day("2025-01-01"), 90, "e").explanations_end - day("2025-01-01")


# -- 7. Art. 12(3): the receiving Power fails to apply the Convention ---------------------------------


def failure(state: str, effective: str) -> Dated:
    return fact("ConventionFailureRecorded", effective, state=state, notified_by="ICRC", standing=SYSTEM)


def measures(state: str, effective: str, by: str = OFFICER) -> Dated:
    return fact("Art12MeasuresRecorded", effective, state=state, measure="RETURN_REQUESTED", standing=by)


def test_a_recorded_failure_of_the_receiving_power_opens_a_duty_for_those_transferred_and_blocks_new_transfers():
    transferred = fact("CustodyEnded", "2025-05-01", kind="ART_12_TRANSFER", destination="KR")
    failed = failure("KR", "2025-05-10")
    facts = at([*READY, transferred, failed])
    assert facts.art_12_duty is not None and facts.art_12_duty.event_id == failed.event_id
    # Measures recorded by a system meet nothing; an officer's do.
    assert at([*READY, transferred, failed, measures("KR", "2025-05-20", by=SYSTEM)]).art_12_duty is not None
    assert at([*READY, transferred, failed, measures("KR", "2025-05-20")]).art_12_duty is None
    # Another state's failure is not his.
    assert at([*READY, transferred, failure("DE", "2025-05-10")]).art_12_duty is None
    # No new transfer to a Power that fails to apply the Convention (Art. 12(2)-(3)).
    to_kr = [*NO_WISH, wish("THIRD_STATE", third_state="KR"), risk("KR")]
    assert disposition(K.ART_12_TRANSFER, at(to_kr), "KR").allowed
    verdict = disposition(K.ART_12_TRANSFER, at([*to_kr, failed]), "KR")
    assert blocked(verdict) == ["D5"] and "fails to carry out the Convention" in finding(verdict, "D5")
    assert disposition(K.ART_12_TRANSFER, at([*to_kr, failed, measures("KR", "2025-05-20")]), "KR").allowed


# -- 8. Art. 115: disciplinary and judicial proceedings, and the detaining Power's consent ------------


def proceedings(stage: str, effective: str, kind: str | None = "JUDICIAL", pid: str = "P-1") -> Dated:
    return fact("ProsecutionRecorded", effective, proceedings_id=pid, stage=stage, proceedings_kind=kind)


def consent(effective: str, by: str = OFFICER, pid: str = "P-1") -> Dated:
    return fact("ReleaseDuringProceedingsConsented", effective, proceedings_id=pid, standing=by)


def test_a_disciplinary_punishment_never_keeps_him_back():
    # Art. 115(1): not "kept back on the plea that he has not undergone his punishment".
    assert exchange_eligibility(at([*READY, proceedings("OPENED", "2025-03-01", "DISCIPLINARY")]), "RU").allowed


def test_judicial_proceedings_keep_him_back_until_the_detaining_power_consents():
    judicial = [*READY, proceedings("OPENED", "2025-03-01")]
    assert blocked(exchange_eligibility(at(judicial), "RU")) == ["D7"]
    untold = [*READY, proceedings("OPENED", "2025-03-01", kind=None)]  # recorded before kinds: judicial
    assert blocked(exchange_eligibility(at(untold), "RU")) == ["D7"]
    # Art. 115(2): the detaining Power may consent that he leave before the proceedings end.
    consented = exchange_eligibility(at([*judicial, consent("2025-04-01")]), "RU")
    assert consented.allowed and "the detaining Power consenting" in finding(consented, "D7")
    # A system's record consents to nothing; and proceedings opened again need a consent again.
    assert blocked(exchange_eligibility(at([*judicial, consent("2025-04-01", by=SYSTEM)]), "RU")) == ["D7"]
    again = [*judicial, consent("2025-04-01"), proceedings("CLOSED", "2025-04-10"), proceedings("OPENED", "2025-05-01")]
    assert blocked(exchange_eligibility(at(again), "RU")) == ["D7"]
