"""The disposition rules as pure functions: exchange eligibility and each other disposition."""

from __future__ import annotations

import pytest

from services.disposition.rules import (
    RULES,
    Assurance,
    DeclaredWish,
    DispositionFacts,
    Risk,
    disposition,
    exchange_eligibility,
    risk_in,
)
from shared.contracts.disposition import DispositionKind, RiskOutcome
from shared.contracts.intake import InterviewSetting, Wish

PRIVATE = InterviewSetting.PRIVATE_ICRC_INTERVIEW


def wish(kind: Wish, state: str | None = None, setting=PRIVATE, free: bool = True) -> DeclaredWish:
    return DeclaredWish(kind, state, setting, free, "ev-wish")


def risk(outcome: RiskOutcome, onward: str | None = None, assurances: bool = False) -> Risk:
    return Risk(outcome, onward, assurances, f"ev-risk-{outcome.value}")


def facts(**overrides) -> DispositionFacts:
    base = dict(
        captive_id="CAP-0000-0000-0001",
        home_state="KP",
        registration_event_id="ev-reg",
        status="POW",
        status_event_id="ev-status",
    )
    return DispositionFacts(**{**base, **overrides})


def blocked(verdict) -> list[str]:
    return [reason.rule_id for reason in verdict.blocked_by]


NO_RISK_RU = {"RU": risk(RiskOutcome.NO_REAL_RISK)}


def test_every_rule_has_an_id_and_an_article():
    assert [rule.rule_id for rule in RULES] == [f"D{n}" for n in range(1, 13)]


def test_a_pow_with_a_verified_wish_to_return_and_no_risk_is_exchange_eligible():
    verdict = exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks=NO_RISK_RU), "RU")
    assert verdict.allowed and blocked(verdict) == []
    assert [r.rule_id for r in verdict.reasons] == ["D1", "D2", "D3", "D4"]
    assert all(r.finding.startswith("satisfied") for r in verdict.reasons)


@pytest.mark.parametrize(
    ("overrides", "rule", "words"),
    [
        ({"in_custody": False, "custody_event_id": "ev-died"}, "D1", "no longer in custody"),
        ({"status": "CIVILIAN_GC_IV"}, "D2", "not POW or presumed POW"),
        ({"wish": None}, "D3", "no declared wish"),
        ({"wish": wish(Wish.REPATRIATE, setting=InterviewSetting.MEDIA)}, "D3", "media interview is never"),
        ({"wish": wish(Wish.REPATRIATE, free=False)}, "D3", "not verified"),
        ({"wish": wish(Wish.THIRD_STATE, "KR")}, "D3", "THIRD_STATE to KR, not REPATRIATE"),
        ({"risks": {}}, "D4", "not assessed"),
        ({"risks": {"RU": risk(RiskOutcome.REAL_RISK, assurances=True)}}, "D4", "do not clear it"),
    ],
)
def test_each_exchange_rule_blocks_with_its_reason(overrides, rule, words):
    verdict = exchange_eligibility(facts(**{"wish": wish(Wish.REPATRIATE), "risks": NO_RISK_RU, **overrides}), "RU")
    assert not verdict.allowed
    assert blocked(verdict) == [rule]
    assert words in verdict.blocked_by[0].finding


def test_an_onward_real_risk_counts_against_the_receiving_state():
    risks = {"RU": risk(RiskOutcome.NO_REAL_RISK, onward="KP"), "KP": risk(RiskOutcome.REAL_RISK)}
    outcome, why = risk_in(facts(risks=risks), "RU")
    assert outcome is RiskOutcome.REAL_RISK and "onward real risk: RU would hand him on to KP" in why
    verdict = exchange_eligibility(facts(wish=wish(Wish.REPATRIATE), risks=risks), "RU")
    assert blocked(verdict) == ["D4"]
    assert {f.name for f in verdict.facts} >= {"risk:RU", "onward:RU", "risk:KP"}


def test_a_cycle_of_onward_risks_ends():
    risks = {"RU": risk(RiskOutcome.NO_REAL_RISK, onward="BY"), "BY": risk(RiskOutcome.NO_REAL_RISK, onward="RU")}
    assert risk_in(facts(risks=risks), "RU")[0] is RiskOutcome.NO_REAL_RISK


KR_READY = dict(
    wish=wish(Wish.THIRD_STATE, "KR"),
    risks={"KR": risk(RiskOutcome.NO_REAL_RISK)},
    assurances={"KR": Assurance(True, True, False, "ev-assure")},
    partner_claims={"KR": "ev-claim"},
)


def test_art_12_transfer_needs_the_receiving_state_s_assurance():
    without = disposition(DispositionKind.ART_12_TRANSFER, facts(**{**KR_READY, "assurances": {}}), "KR")
    assert blocked(without) == ["D5"]
    allowed = disposition(DispositionKind.ART_12_TRANSFER, facts(**KR_READY), "KR")
    assert allowed.allowed
    assert "claims him as its national (event ev-claim)" in allowed.reasons[3].finding


def test_resettlement_needs_acceptance_and_no_pending_prosecution():
    assert disposition(DispositionKind.RESETTLEMENT, facts(**KR_READY), "KR").allowed
    assert blocked(disposition(DispositionKind.RESETTLEMENT, facts(**KR_READY, pending_prosecution=True), "KR")) == [
        "D7"
    ]
    refused = {**KR_READY, "assurances": {"KR": Assurance(True, False, False, "ev")}}
    assert blocked(disposition(DispositionKind.RESETTLEMENT, facts(**refused), "KR")) == ["D6"]


def test_stay_needs_a_verified_wish_to_stay():
    assert disposition(
        DispositionKind.STAY_IN_DETAINING_STATE, facts(wish=wish(Wish.STAY_IN_DETAINING_STATE)), None
    ).allowed
    assert blocked(disposition(DispositionKind.STAY_IN_DETAINING_STATE, facts(wish=wish(Wish.UNDECIDED)), None)) == [
        "D3"
    ]


def test_direct_repatriation_of_the_seriously_wounded_not_against_his_will_during_hostilities():
    sick = dict(seriously_wounded_or_sick=True, medical_event_id="ev-mmc", risks={"KP": risk(RiskOutcome.NO_REAL_RISK)})
    assert disposition(DispositionKind.DIRECT_REPATRIATION, facts(**sick, wish=wish(Wish.REPATRIATE)), None).allowed
    against_will = disposition(
        DispositionKind.DIRECT_REPATRIATION, facts(**sick, wish=wish(Wish.STAY_IN_DETAINING_STATE)), None
    )
    assert blocked(against_will) == ["D9"]
    at_risk = {**sick, "risks": {"KP": risk(RiskOutcome.REAL_RISK)}}
    assert blocked(
        disposition(DispositionKind.DIRECT_REPATRIATION, facts(**at_risk, wish=wish(Wish.REPATRIATE)), None)
    ) == ["D4"]
    assert blocked(
        disposition(DispositionKind.DIRECT_REPATRIATION, facts(wish=wish(Wish.REPATRIATE), risks=sick["risks"]), None)
    ) == ["D8"]


def test_neutral_accommodation_needs_an_agreement():
    sick = dict(seriously_wounded_or_sick=True)
    assert blocked(disposition(DispositionKind.NEUTRAL_ACCOMMODATION, facts(**sick), "CH")) == ["D10"]
    agreed = {"CH": Assurance(False, False, True, "ev-ch")}
    assert disposition(DispositionKind.NEUTRAL_ACCOMMODATION, facts(**sick, assurances=agreed), "CH").allowed


def test_repatriation_after_hostilities_is_refused_where_the_risk_is_real_and_he_does_not_wish_to_return():
    ceased = dict(hostilities_ceased=True, hostilities_event_id="ev-ceased", risks={"KP": risk(RiskOutcome.REAL_RISK)})
    assert blocked(disposition(DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(), None)) == ["D11"]
    refused = disposition(
        DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(**ceased, wish=wish(Wish.THIRD_STATE, "KR")), None
    )
    assert blocked(refused) == ["D12"] and "does not wish to return" in refused.blocked_by[0].finding
    wants = disposition(
        DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(**ceased, wish=wish(Wish.REPATRIATE)), None
    )
    assert wants.allowed
    safe = {**ceased, "risks": {"KP": risk(RiskOutcome.NO_REAL_RISK)}}
    assert disposition(DispositionKind.REPATRIATION_AFTER_HOSTILITIES, facts(**safe), None).allowed
