"""The disposition rules as pure functions, written from the law (docs/legal-basis.md,
"Disposition"): exchange eligibility and each other disposition, non-refoulement failing closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.disposition.commission import commission_release
from services.disposition.facts import Assurance, Commission, DeclaredWish, DispositionFacts, Hostilities, Risk
from services.disposition.rules import RULES, disposition, exchange_eligibility, non_refoulement
from shared.contracts.disposition import DispositionKind, RiskOutcome
from shared.contracts.intake import InterviewSetting, Wish

PRIVATE = InterviewSetting.PRIVATE_ICRC_INTERVIEW
NOW = datetime(2025, 6, 1, tzinfo=UTC)
REAL, NONE_, NOT = RiskOutcome.REAL_RISK, RiskOutcome.NO_REAL_RISK, RiskOutcome.NOT_ASSESSED


def wish(kind: Wish, state: str | None = None, setting=PRIVATE, free: bool = True, days_ago: int = 3) -> DeclaredWish:
    """A wish an ICRC delegate recorded as herself, heard `days_ago` before NOW."""
    return DeclaredWish(
        kind, state, setting, free, f"ev-wish-{kind.value}", NOW - timedelta(days=days_ago), "ICRC_DELEGATE"
    )


def risk(outcome: RiskOutcome, *onward: str, hands_on: bool | None = False, assurances=False, relies=False) -> Risk:
    return Risk(
        outcome, True if onward else hands_on, tuple(onward), assurances, relies, f"ev-risk-{outcome.value}", NOW
    )


def facts(**overrides) -> DispositionFacts:
    base = dict(
        captive_id="CAP-0000-0000-0001",
        at=NOW,
        captured_at=datetime(2025, 1, 11, tzinfo=UTC),
        registration_event_id="ev-reg",
        force="Korean People's Army",
        force_state="KP",
        integrated_in_forces_of="RU",
        force_event_id="ev-reg",
        status="POW",
        status_event_id="ev-status",
    )
    return DispositionFacts(**{**base, **overrides})


def blocked(verdict) -> list[str]:
    return [reason.rule_id for reason in verdict.blocked_by]


# RU would hand him on to KP; KP is a real risk for him (BRIEF section 3).
RU_HANDS_ON = {"RU": risk(NONE_, "KP"), "KP": risk(REAL)}
RU_KEEPS = {"RU": risk(NONE_, hands_on=False)}
READY = dict(wish=wish(Wish.REPATRIATE), risks=RU_KEEPS)


def test_every_rule_has_an_id_and_an_article():
    assert [rule.rule_id for rule in RULES] == [f"D{n}" for n in range(1, 19)]
    assert all(rule.article for rule in RULES)


def test_a_pow_with_a_verified_wish_to_return_and_no_risk_is_exchange_eligible():
    verdict = exchange_eligibility(facts(**READY), "RU")
    assert verdict.allowed and blocked(verdict) == []
    assert [r.rule_id for r in verdict.reasons] == ["D1", "D2", "D3", "D4", "D7", "D16"]
    assert all(r.finding.startswith("satisfied") for r in verdict.reasons)


@pytest.mark.parametrize(
    ("overrides", "rule", "words"),
    [
        ({"in_custody": False, "custody_event_id": "ev-escaped"}, "D1", "no longer in custody"),
        ({"in_custody": False, "dead": True, "custody_event_id": "ev-died"}, "D1", "he died"),
        ({"status": "CIVILIAN_GC_IV"}, "D2", "not POW, presumed POW or POW-equivalent"),
        ({"wish": None}, "D3", "no verified wish"),
        ({"wish": wish(Wish.THIRD_STATE, "KR")}, "D3", "THIRD_STATE to KR (event ev-wish-THIRD_STATE), not REPATRIATE"),
        ({"risks": {}}, "D4", "risk in RU not assessed"),
        ({"risks": {"RU": risk(NOT)}}, "D4", "risk in RU not assessed"),
        ({"risks": {"RU": risk(REAL, assurances=True)}}, "D4", "do not clear it"),
        ({"open_prosecutions": {"P-1": "ev-pros"}}, "D7", "proceedings open: P-1 (event ev-pros)"),
    ],
)
def test_each_exchange_rule_blocks_with_its_reason(overrides, rule, words):
    verdict = exchange_eligibility(facts(**{**READY, **overrides}), "RU")
    assert not verdict.allowed
    assert blocked(verdict) == [rule]
    assert words in verdict.blocked_by[0].finding


def test_a_media_statement_is_named_but_never_verifies_a_wish():
    media = wish(Wish.REPATRIATE, setting=InterviewSetting.MEDIA)
    verdict = exchange_eligibility(facts(**{**READY, "wish": None, "unverified_wish": media}), "RU")
    assert blocked(verdict) == ["D3"]
    assert "a media statement never verifies a wish" in verdict.blocked_by[0].finding


def test_a_media_statement_does_not_override_a_verified_wish():
    media = wish(Wish.REPATRIATE, setting=InterviewSetting.MEDIA)
    kr = facts(wish=wish(Wish.THIRD_STATE, "KR"), unverified_wish=media, risks={"KR": risk(NONE_)})
    assert blocked(exchange_eligibility(kr, "KR")) == ["D3"]  # still his verified wish to go to KR


# -- non-refoulement fails closed -------------------------------------------------------------------


def test_an_onward_real_risk_counts_against_the_receiving_state():
    verdict = exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks=RU_HANDS_ON), "RU")
    assert blocked(verdict) == ["D4"]
    assert "real risk in KP (he could be sent on there from RU)" in verdict.blocked_by[0].finding
    assert {f.name for f in verdict.facts} >= {"risk:RU", "onward:RU", "risk:KP"}


def test_an_onward_state_never_assessed_blocks():
    verdict = exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks={"RU": risk(NONE_, "KP")}), "RU")
    assert blocked(verdict) == ["D4"]
    assert "risk in KP (he could be sent on there from RU) not assessed" in verdict.blocked_by[0].finding


def test_an_assessment_silent_on_handing_him_on_leaves_the_question_open_and_blocks():
    silent = {"RU": risk(NONE_, hands_on=None), "KP": risk(REAL)}
    verdict = exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks=silent), "RU")
    assert blocked(verdict) == ["D4"]
    assert "does not say whether RU would hand him on" in verdict.blocked_by[0].finding


def test_no_real_risk_resting_on_assurances_never_clears():
    relies = {"RU": risk(NONE_, assurances=True, relies=True)}
    assert blocked(exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks=relies), "RU")) == ["D4"]
    noted = {"RU": risk(NONE_, assurances=True, relies=False)}  # assurances exist; the finding does not rest on them
    assert exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks=noted), "RU").allowed


def test_a_stale_assessment_blocks_until_assessed_again():
    from dataclasses import replace

    stale = {"RU": replace(risk(NONE_), stale_since="ev-exposure")}
    verdict = exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks=stale), "RU")
    assert blocked(verdict) == ["D4"] and "predates event ev-exposure" in verdict.blocked_by[0].finding


def test_a_cycle_of_onward_states_ends():
    risks = {"RU": risk(NONE_, "BY"), "BY": risk(NONE_, "RU")}
    assert non_refoulement(facts(risks=risks), "RU").clear


# -- the other dispositions -------------------------------------------------------------------------

KR_READY = dict(
    wish=wish(Wish.THIRD_STATE, "KR"),
    risks={"KR": risk(NONE_, hands_on=False)},
    assurances={"KR": Assurance(True, True, False, "ev-assure")},
    partner_claims={"KR": "ev-claim"},
)


def test_art_12_transfer_needs_the_receiving_state_s_assurance_and_no_risk_there():
    without = disposition(DispositionKind.ART_12_TRANSFER, facts(**{**KR_READY, "assurances": {}}), "KR")
    assert blocked(without) == ["D5"]
    allowed = disposition(DispositionKind.ART_12_TRANSFER, facts(**KR_READY), "KR")
    assert allowed.allowed
    assert "claims him as its national (event ev-claim)" in allowed.reasons[3].finding
    unassessed = disposition(DispositionKind.ART_12_TRANSFER, facts(**{**KR_READY, "risks": {}}), "KR")
    assert blocked(unassessed) == ["D4"]


def test_a_verified_withdrawal_of_the_wish_blocks_the_transfer():
    withdrawn = {**KR_READY, "wish": wish(Wish.STAY_IN_DETAINING_STATE)}
    assert blocked(disposition(DispositionKind.ART_12_TRANSFER, facts(**withdrawn), "KR")) == ["D3"]


def test_resettlement_needs_acceptance_and_no_open_prosecution():
    assert disposition(DispositionKind.RESETTLEMENT, facts(**KR_READY), "KR").allowed
    prosecuted = facts(**KR_READY, open_prosecutions={"P-1": "ev-p"})
    assert blocked(disposition(DispositionKind.RESETTLEMENT, prosecuted, "KR")) == ["D7"]
    refused = {**KR_READY, "assurances": {"KR": Assurance(True, False, False, "ev")}}
    assert blocked(disposition(DispositionKind.RESETTLEMENT, facts(**refused), "KR")) == ["D6"]


def test_an_open_prosecution_blocks_every_removal():
    prosecuted = dict(open_prosecutions={"P-1": "ev-p"})
    assert blocked(disposition(DispositionKind.ART_12_TRANSFER, facts(**KR_READY, **prosecuted), "KR")) == ["D7"]
    assert "D7" in blocked(exchange_eligibility(facts(**READY, **prosecuted), "RU"))


def test_stay_needs_a_verified_wish_to_stay():
    assert disposition(
        DispositionKind.STAY_IN_DETAINING_STATE, facts(wish=wish(Wish.STAY_IN_DETAINING_STATE)), None
    ).allowed
    assert blocked(disposition(DispositionKind.STAY_IN_DETAINING_STATE, facts(wish=wish(Wish.UNDECIDED)), None)) == [
        "D3"
    ]


SICK = dict(seriously_wounded_or_sick=True, medical_event_id="ev-mmc", risks={"KP": risk(NONE_, hands_on=False)})
CEASED = Hostilities(True, "active hostilities ceased with KP", ("ev-ceased",))


def test_direct_repatriation_of_the_seriously_wounded_not_against_his_will_during_hostilities():
    assert disposition(DispositionKind.DIRECT_REPATRIATION, facts(**SICK, wish=wish(Wish.REPATRIATE)), None).allowed
    against_will = disposition(
        DispositionKind.DIRECT_REPATRIATION, facts(**SICK, wish=wish(Wish.STAY_IN_DETAINING_STATE)), None
    )
    assert blocked(against_will) == ["D9"]
    at_risk = {**SICK, "risks": {"KP": risk(REAL)}}
    assert blocked(
        disposition(DispositionKind.DIRECT_REPATRIATION, facts(**at_risk, wish=wish(Wish.REPATRIATE)), None)
    ) == ["D4"]
    not_sick = facts(wish=wish(Wish.REPATRIATE), risks=SICK["risks"])
    assert blocked(disposition(DispositionKind.DIRECT_REPATRIATION, not_sick, None)) == ["D8"]


def test_direct_repatriation_with_the_home_risk_never_assessed_is_blocked():
    verdict = disposition(
        DispositionKind.DIRECT_REPATRIATION, facts(**{**SICK, "risks": {}}, wish=wish(Wish.REPATRIATE)), None
    )
    assert blocked(verdict) == ["D4"] and "risk in KP not assessed" in verdict.blocked_by[0].finding


def test_neutral_accommodation_needs_an_agreement_and_no_risk_there():
    sick = dict(seriously_wounded_or_sick=True, risks={"CH": risk(NONE_, hands_on=False)})
    assert blocked(disposition(DispositionKind.NEUTRAL_ACCOMMODATION, facts(**sick), "CH")) == ["D10"]
    agreed = {"CH": Assurance(False, False, True, "ev-ch")}
    assert disposition(DispositionKind.NEUTRAL_ACCOMMODATION, facts(**sick, assurances=agreed), "CH").allowed
    unassessed = facts(seriously_wounded_or_sick=True, assurances=agreed)
    assert blocked(disposition(DispositionKind.NEUTRAL_ACCOMMODATION, unassessed, "CH")) == ["D4"]


def test_repatriation_after_hostilities():
    at_risk = dict(hostilities=CEASED, risks={"KP": risk(REAL)})
    assert blocked(disposition(DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(risks=SICK["risks"]), None)) == [
        "D11"
    ]
    refused = disposition(
        DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(**at_risk, wish=wish(Wish.THIRD_STATE, "KR")), None
    )
    assert blocked(refused) == ["D12"] and "does not wish to return" in refused.blocked_by[0].finding
    wants = disposition(
        DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(**at_risk, wish=wish(Wish.REPATRIATE)), None
    )
    assert wants.allowed and wants.destination == "KP"
    safe = facts(hostilities=CEASED, risks=SICK["risks"])
    assert disposition(DispositionKind.REPATRIATION_AFTER_HOSTILITIES, safe, None).allowed


def test_art_118_with_no_assessment_is_blocked_even_if_he_wishes_to_return():
    verdict = disposition(
        DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(hostilities=CEASED, wish=wish(Wish.REPATRIATE)), None
    )
    assert blocked(verdict) == ["D12"] and "risk in KP not assessed" in verdict.blocked_by[0].finding


def test_art_118_with_the_home_state_unknown_is_blocked():
    unknown = facts(force_state=None, integrated_in_forces_of=None, nationality="KP", hostilities=CEASED)
    verdict = disposition(DispositionKind.REPATRIATION_AFTER_HOSTILITIES, unknown, None)
    assert "D12" in blocked(verdict) and "home state unknown" in verdict.blocked_by[-1].finding


def test_repatriation_goes_to_the_state_he_depends_on_not_elsewhere():
    verdict = disposition(DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(hostilities=CEASED), "KR")
    assert "repatriation is to KP" in verdict.blocked_by[-1].finding


# -- the Korean War route ---------------------------------------------------------------------------

COMMISSION_READY = dict(
    wish=wish(Wish.THIRD_STATE, "KR"),
    risks={"IN": risk(NONE_, hands_on=False), "KR": risk(NONE_, hands_on=False)},
    assurances={"IN": Assurance(False, False, False, "ev-in", True), "KR": Assurance(True, True, False, "ev-kr")},
)


def test_he_may_be_handed_to_a_neutral_commission_only_if_he_does_not_insist_on_return():
    kind = DispositionKind.NEUTRAL_REPATRIATION_COMMISSION
    assert disposition(kind, facts(**COMMISSION_READY), "IN").allowed
    insists = {**COMMISSION_READY, "wish": wish(Wish.REPATRIATE)}
    assert blocked(disposition(kind, facts(**insists), "IN")) == ["D13"]
    no_agreement = {**COMMISSION_READY, "assurances": {}}
    assert blocked(disposition(kind, facts(**no_agreement), "IN")) == ["D14"]


def test_release_from_the_commission_waits_for_the_explanations_and_goes_where_he_chooses():
    handed = Commission("DSP-1", NOW, 90, "ev-handed")
    during = facts(**COMMISSION_READY, commission=handed, at=NOW + timedelta(days=30))
    assert blocked(commission_release(during, "DSP-1")) == ["D15"]
    after = facts(**COMMISSION_READY, commission=handed, at=NOW + timedelta(days=90))
    verdict = commission_release(after, "DSP-1")
    assert verdict.allowed and verdict.destination == "KR"
    other = commission_release(after, "DSP-2")
    assert blocked(other) == ["D1"]


def test_while_with_the_commission_no_other_removal_is_allowed():
    handed = Commission("DSP-1", NOW, 90, "ev-handed")
    verdict = disposition(DispositionKind.ART_12_TRANSFER, facts(**KR_READY, commission=handed), "KR")
    assert blocked(verdict) == ["D1"]
