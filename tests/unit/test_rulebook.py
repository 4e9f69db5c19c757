"""Rulebook v1 as a pure function: the decision and its trace."""

from datetime import UTC, datetime

from services.status.rulebook import CaptiveFacts, decide
from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import LegalStatus


def facts(**overrides) -> CaptiveFacts:
    base = dict(
        captive_id="CAP-0000-0000-0001",
        captured_at=datetime(2025, 1, 11, tzinfo=UTC),
        nationality="KP",
        claimed_affiliation=ClaimedAffiliation.INTEGRATED_IN_COBELLIGERENT_FORCES,
        registration_event_id="ev-registration",
    )
    return CaptiveFacts(**{**base, **overrides})


def test_a_captive_whose_home_state_is_not_acknowledged_as_a_party_is_presumed_pow():
    decision = decide(facts())
    assert decision.status is LegalStatus.PRESUMED_POW
    assert [rule.rule_id for rule in decision.rules] == ["R1", "R7"]
    assert "home state not acknowledged" in decision.rules[-1].finding


def test_a_member_of_a_party_s_forces_is_a_pow_citing_art_4a1_and_the_fact_s_event():
    decision = decide(facts(home_state_is_party=True, home_state_fact_event_id="ev-acknowledged"))
    assert decision.status is LegalStatus.POW
    assert decision.rules[-1].rule_id == "R3" and "4A(1)" in decision.rules[-1].article
    used = {fact.name: fact for fact in decision.facts}
    assert used["home_state_is_party"].value is True
    assert used["home_state_is_party"].source_event_id == "ev-acknowledged"
    assert used["claimed_affiliation"].source_event_id == "ev-registration"


def test_unclear_affiliation_stays_presumed_pow_even_when_the_state_is_a_party():
    decision = decide(facts(claimed_affiliation=ClaimedAffiliation.UNCLEAR, home_state_is_party=True))
    assert decision.status is LegalStatus.PRESUMED_POW
    assert "affiliation unclear" in decision.rules[-1].finding


def test_the_same_facts_always_give_the_same_decision():
    assert decide(facts()) == decide(facts())
