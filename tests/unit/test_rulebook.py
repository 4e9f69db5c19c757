"""The status rulebooks as pure functions: every rule, the trace, reproduction, and the timeline
of decisions built from dated facts (property-based where it matters)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.status.history import CaptiveHistory, Dated
from services.status.rulebook import FACT_NAMES, RULES, CaptiveFacts, decide, reproduce
from services.status.timeline import Recorded, to_emit
from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import LegalStatus, NotPowGround, StatusDetermined, TribunalOutcome

CAPTURED = datetime(2025, 1, 11, 9, tzinfo=UTC)
ACKNOWLEDGED = datetime(2025, 4, 28, tzinfo=UTC)
INTEGRATED = ClaimedAffiliation.INTEGRATED_IN_COBELLIGERENT_FORCES


def facts(**overrides) -> CaptiveFacts:
    base = dict(
        captive_id="CAP-0000-0000-0001",
        at=CAPTURED,
        captured_at=CAPTURED,
        nationality="KP",
        claimed_affiliation=INTEGRATED,
        registration_event_id="ev-registration",
    )
    return CaptiveFacts(**{**base, **overrides})


def rule_ids(decision) -> list[str]:
    return [rule.rule_id for rule in decision.rules]


def test_every_rule_has_an_id_and_an_article():
    assert [rule.rule_id for rule in RULES] == [f"R{n}" for n in range(1, 11)]
    assert all(rule.article for rule in RULES)


def test_r7_doubt_home_state_not_acknowledged_means_presumed_pow():
    decision = decide(facts(conflict_international=True, conflict_international_event_id="ev-iac"))
    assert decision.status is LegalStatus.PRESUMED_POW
    assert rule_ids(decision) == ["R1", "R2", "R5", "R7"]
    assert "home state not acknowledged" in decision.rules[-1].finding


def test_r7_with_nothing_known_about_the_conflict():
    decision = decide(facts())
    assert decision.status is LegalStatus.PRESUMED_POW
    assert "no international armed conflict recorded" in decision.rules[-1].finding


def test_r3_member_of_a_party_is_pow_and_the_trace_points_at_the_acknowledgement():
    decision = decide(facts(at=ACKNOWLEDGED, home_state_party=True, home_state_party_event_id="ev-ack"))
    assert decision.status is LegalStatus.POW
    assert rule_ids(decision) == ["R1", "R2", "R5", "R3"]
    assert decision.rules[-1].article == "GC III Art. 4A(1); AP I Art. 43"
    used = {fact.name: fact for fact in decision.facts}
    assert (used["home_state_party"].value, used["home_state_party"].source_event_id) == (True, "ev-ack")
    assert used["claimed_affiliation"].source_event_id == "ev-registration"
    assert used["at"].value == ACKNOWLEDGED.isoformat()


def test_r2_a_conflict_recorded_as_not_international_gives_fundamental_guarantees_only():
    decision = decide(facts(conflict_international=False, conflict_international_event_id="ev-niac"))
    assert decision.status is LegalStatus.AP_I_ART_75
    assert rule_ids(decision) == ["R1", "R2"]


def test_r4_another_category_found_by_a_legal_officer_is_evidence_until_the_tribunal_rules():
    finding = facts(
        claimed_affiliation=ClaimedAffiliation.UNCLEAR,
        conflict_international=True,
        other_category="4A(4)",
        other_category_event_id="ev-finding",
    )
    decision = decide(finding)
    assert decision.status is LegalStatus.PRESUMED_POW
    r4 = decision.rules[rule_ids(decision).index("R4")]
    assert "4A(4)" in r4.finding and "evidence for the Art. 5 tribunal" in r4.finding
    ruled = decide(replace(finding, tribunal_outcome=TribunalOutcome.POW, tribunal_event_id="ev-ruling"))
    assert ruled.status is LegalStatus.POW and rule_ids(ruled) == ["R1", "R8"]


def test_r5_a_state_s_own_soldier_is_never_a_mercenary():
    decision = decide(facts(home_state_party=True, mercenary_event_id="ev-merc"))
    assert decision.status is LegalStatus.POW
    r5 = decision.rules[rule_ids(decision).index("R5")]
    assert "not a mercenary" in r5.finding and "ev-merc" in r5.finding and "cannot stand" in r5.finding


def test_r5_a_tribunal_ruling_of_mercenarism_cannot_remove_a_state_soldier_s_status():
    decision = decide(
        facts(
            home_state_party=True,
            tribunal_outcome=TribunalOutcome.NOT_POW,
            tribunal_ground=NotPowGround.MERCENARY,
            tribunal_event_id="ev-ruling",
            gc_iv_nationality_test_met=False,
        )
    )
    assert decision.status is LegalStatus.POW
    assert rule_ids(decision)[:3] == ["R1", "R8", "R5"] and rule_ids(decision)[-1] == "R3"
    assert "cannot remove his status" in decision.rules[2].finding


def test_r5_a_finding_of_mercenarism_outside_state_forces_is_evidence_not_a_ruling():
    decision = decide(
        facts(claimed_affiliation=ClaimedAffiliation.UNCLEAR, conflict_international=True, mercenary_event_id="ev-merc")
    )
    assert decision.status is LegalStatus.PRESUMED_POW
    assert rule_ids(decision) == ["R1", "R2", "R5", "R7"]
    assert "evidence for the Art. 5 tribunal" in decision.rules[2].finding
    assert "findings await the tribunal" in decision.rules[-1].finding


@pytest.mark.parametrize("finding", ["espionage_event_id", "failure_to_distinguish_event_id"])
def test_r6_a_finding_of_spying_or_failure_to_distinguish_without_a_ruling_keeps_the_presumption(finding):
    before = decide(facts(conflict_international=True, **{finding: "ev-f"}))
    assert before.status is LegalStatus.PRESUMED_POW
    note = before.rules[rule_ids(before).index("R6")]
    assert "ev-f" in note.finding and "not a ruling" in note.finding
    # Where R3 holds, he stays a POW: the finding goes before the tribunal.
    after = decide(facts(at=ACKNOWLEDGED, home_state_party=True, **{finding: "ev-f"}))
    assert after.status is LegalStatus.POW and rule_ids(after)[-1] == "R3" and "R6" in rule_ids(after)


def ruled_not_pow(ground: NotPowGround | None, test_met: bool | None, **overrides) -> CaptiveFacts:
    return facts(
        tribunal_outcome=TribunalOutcome.NOT_POW,
        tribunal_event_id="ev-ruling",
        tribunal_ground=ground,
        gc_iv_nationality_test_met=test_met,
        **overrides,
    )


def test_r8_a_tribunal_ruling_overrides_everything_else():
    ruled = decide(
        facts(tribunal_outcome=TribunalOutcome.POW, tribunal_event_id="ev-ruling", espionage_event_id="ev-f")
    )
    assert ruled.status is LegalStatus.POW
    assert rule_ids(ruled) == ["R1", "R8"] and "ev-ruling" in ruled.rules[-1].finding


def test_r6_ruled_failure_to_distinguish_forfeits_status_but_keeps_pow_equivalent_protection():
    for test_met in (True, False, None):
        decision = decide(ruled_not_pow(NotPowGround.FAILURE_TO_DISTINGUISH, test_met, home_state_party=True))
        assert decision.status is LegalStatus.POW_EQUIVALENT
        assert rule_ids(decision) == ["R1", "R8", "R6"] and "Art. 44(4)" in decision.rules[-1].finding


@pytest.mark.parametrize(
    ("ground", "rule"), [(NotPowGround.ESPIONAGE, "R6"), (NotPowGround.MERCENARY, "R5")], ids=["spy", "mercenary"]
)
@pytest.mark.parametrize(("test_met", "status"), [(True, LegalStatus.CIVILIAN_GC_IV), (False, LegalStatus.AP_I_ART_75)])
def test_a_spy_or_a_mercenary_ruled_not_a_pow_gets_gc_iv_or_art_75_never_pow_equivalent(ground, rule, test_met, status):
    decision = decide(ruled_not_pow(ground, test_met, claimed_affiliation=ClaimedAffiliation.UNCLEAR))
    assert decision.status is status
    assert rule_ids(decision) == ["R1", "R8", rule, "R9"]


@pytest.mark.parametrize("ground", [NotPowGround.NOT_A_COMBATANT, None], ids=["not-a-combatant", "old-event"])
@pytest.mark.parametrize(("test_met", "status"), [(True, LegalStatus.CIVILIAN_GC_IV), (False, LegalStatus.AP_I_ART_75)])
def test_r9_ruled_not_a_pow_as_no_combatant(ground, test_met, status):
    decision = decide(ruled_not_pow(ground, test_met))
    assert decision.status is status
    assert rule_ids(decision) == ["R1", "R8", "R9"]
    assert "NOT_A_COMBATANT" in decision.rules[1].finding


def test_v2_treats_integration_in_a_party_s_forces_as_membership():
    before_acknowledgement = facts(conflict_international=True)
    assert decide(before_acknowledgement, "v1").status is LegalStatus.PRESUMED_POW
    under_v2 = decide(before_acknowledgement, "v2")
    assert under_v2.status is LegalStatus.POW and under_v2.rulebook_version == "v2"
    assert "integrated" in under_v2.rules[-1].finding
    own_forces = facts(conflict_international=True, claimed_affiliation=ClaimedAffiliation.OWN_STATE_FORCES)
    assert decide(own_forces, "v2").status is LegalStatus.PRESUMED_POW


# -- property-based ---------------------------------------------------------------------------------

optional_event = st.one_of(st.none(), st.sampled_from(["ev-a", "ev-b"]))
captive_facts = st.builds(
    facts,
    claimed_affiliation=st.sampled_from(list(ClaimedAffiliation)),
    nationality=st.sampled_from(["KP", "RU", None]),
    conflict_international=st.sampled_from([None, True, False]),
    home_state_party=st.sampled_from([None, True]),
    espionage_event_id=optional_event,
    failure_to_distinguish_event_id=optional_event,
    other_category=st.sampled_from([None, "4A(2)", "4B"]),
    mercenary_event_id=optional_event,
    tribunal_outcome=st.sampled_from([None, *TribunalOutcome]),
    tribunal_ground=st.sampled_from([None, *NotPowGround]),
    gc_iv_nationality_test_met=st.sampled_from([None, True, False]),
)


@given(captive_facts, st.sampled_from(["v1", "v2"]))
def test_the_same_facts_always_give_the_same_decision_and_it_reproduces_from_its_trace(case, version):
    decision = decide(case, version)
    assert decide(case, version) == decision
    assert decision.rules[0].rule_id == "R1"
    recorded = StatusDetermined(
        captive_id=case.captive_id,
        status=decision.status,
        rulebook_version=version,
        rules=list(decision.rules),
        facts=list(decision.facts),
    )
    assert reproduce(recorded) == decision


FINDINGS = ("espionage_event_id", "failure_to_distinguish_event_id", "mercenary_event_id", "other_category")


@given(captive_facts, st.sampled_from(["v1", "v2"]))
def test_without_a_ruling_a_finding_never_changes_the_status(case, version):
    case = replace(case, tribunal_outcome=None, tribunal_ground=None)
    without = replace(case, **dict.fromkeys(FINDINGS), other_category_event_id=None)
    assert decide(case, version).status is decide(without, version).status
    assert decide(case, version).status is not LegalStatus.POW_EQUIVALENT


@given(captive_facts, st.sampled_from(["v1", "v2"]))
def test_a_spy_never_gets_pow_equivalent_status(case, version):
    spy = replace(case, tribunal_outcome=TribunalOutcome.NOT_POW, tribunal_ground=NotPowGround.ESPIONAGE)
    assert decide(spy, version).status in (LegalStatus.CIVILIAN_GC_IV, LegalStatus.AP_I_ART_75)


def history_with(legal=(), conflict=(), rulebooks=()) -> CaptiveHistory:
    return CaptiveHistory(
        captive_id="CAP-0000-0000-0001",
        captured_at=CAPTURED,
        nationality="KP",
        claimed_affiliation=INTEGRATED,
        registration_event_id="ev-registration",
        legal=list(legal),
        conflict=list(conflict),
        rulebooks=list(rulebooks),
    )


IAC = Dated(datetime(2022, 2, 24, tzinfo=UTC), "ev-iac", "CONFLICT_INTERNATIONAL", {"kind": "CONFLICT_INTERNATIONAL"})
ACK = Dated(ACKNOWLEDGED, "ev-ack", "STATE_ACKNOWLEDGED_AS_PARTY", {"state": "KP"})
OTHER_ACK = Dated(datetime(2025, 2, 1, tzinfo=UTC), "ev-ru", "STATE_ACKNOWLEDGED_AS_PARTY", {"state": "RU"})
CONVENED = Dated(datetime(2025, 8, 1, tzinfo=UTC), "ev-convened", "TribunalConvened", {}, 2)
HEARD = Dated(datetime(2025, 8, 20, tzinfo=UTC), "ev-heard", "TribunalHearingHeld", {}, 3)
RULING = Dated(
    datetime(2025, 9, 1, tzinfo=UTC),
    "ev-ruling",
    "TribunalRuled",
    {"outcome": "NOT_POW", "gc_iv_nationality_test_met": True, "ground": "NOT_A_COMBATANT"},
    4,
)
TRIBUNAL = [CONVENED, HEARD, RULING]
V2 = Dated(datetime(2026, 1, 1, tzinfo=UTC), "ev-v2", "RulebookAdopted", {"version": "v2"})


def test_the_worked_example_timeline():
    timeline = history_with(conflict=[IAC, ACK, OTHER_ACK]).timeline()
    assert [(moment, decision.status) for moment, decision in timeline] == [
        (CAPTURED, LegalStatus.PRESUMED_POW),
        (ACKNOWLEDGED, LegalStatus.POW),
    ]
    with_ruling = history_with(conflict=[IAC, ACK], legal=TRIBUNAL).timeline()
    assert [(moment, decision.status) for moment, decision in with_ruling] == [
        (CAPTURED, LegalStatus.PRESUMED_POW),
        (ACKNOWLEDGED, LegalStatus.POW),
        (RULING.effective_at, LegalStatus.CIVILIAN_GC_IV),
    ]


def test_a_reversal_on_review_stands_from_its_date():
    review = Dated(
        datetime(2025, 10, 1, tzinfo=UTC), "ev-review", "TribunalRulingReviewed", {"outcome": "REVERSED"}, 5
    )
    timeline = history_with(conflict=[IAC, ACK], legal=[*TRIBUNAL, review]).timeline()
    assert [decision.status for _, decision in timeline] == [
        LegalStatus.PRESUMED_POW,
        LegalStatus.POW,
        LegalStatus.CIVILIAN_GC_IV,
        LegalStatus.POW,
    ]
    assert "ev-review" in timeline[-1][1].rules[1].finding


@given(st.permutations([IAC, ACK, OTHER_ACK, *TRIBUNAL, V2]), st.randoms())
def test_facts_in_any_arrival_order_give_the_same_timeline(order, rng):
    legal = [fact for fact in order if fact.kind.startswith("Tribunal")]
    conflict = [fact for fact in order if fact in (IAC, ACK, OTHER_ACK)]
    rulebooks = [fact for fact in order if fact.kind == "RulebookAdopted"]
    rng.shuffle(conflict)
    expected = history_with(legal=TRIBUNAL, conflict=[IAC, ACK, OTHER_ACK], rulebooks=[V2]).timeline()
    assert history_with(legal=legal, conflict=conflict, rulebooks=rulebooks).timeline() == expected


def recorded_from(timeline) -> list[Recorded]:
    return [
        Recorded(moment, order, decision.key(), decision.status.value)
        for order, (moment, decision) in enumerate(timeline, start=1)
    ]


def test_nothing_is_emitted_when_the_recorded_decisions_already_agree():
    timeline = history_with(conflict=[IAC, ACK]).timeline()
    assert to_emit(recorded_from(timeline), timeline) == []


def test_a_new_fact_emits_only_from_the_moment_it_changes_something():
    before = history_with(conflict=[IAC]).timeline()
    after = history_with(conflict=[IAC, ACK]).timeline()
    emitted = to_emit(recorded_from(before), after)
    assert [(moment, decision.status, previous) for moment, decision, previous in emitted] == [
        (ACKNOWLEDGED, LegalStatus.POW, "PRESUMED_POW")
    ]


def test_a_retroactive_fact_rewrites_every_later_decision_it_contradicts():
    # A finding of spying dated 2025-02-01, recorded later, changes no status, but the trace of
    # every decision from then on notes it as evidence pending before the tribunal.
    spying = Dated(datetime(2025, 2, 1, tzinfo=UTC), "ev-spy", "LegalFindingRecorded", {"finding": "ESPIONAGE"})
    before = history_with(conflict=[IAC, ACK]).timeline()
    after = history_with(conflict=[IAC, ACK], legal=[spying]).timeline()
    emitted = to_emit(recorded_from(before), after)
    assert [(moment, decision.status, previous) for moment, decision, previous in emitted] == [
        (datetime(2025, 2, 1, tzinfo=UTC), LegalStatus.PRESUMED_POW, "PRESUMED_POW"),
        (ACKNOWLEDGED, LegalStatus.POW, "POW"),
    ]
    assert all("R6" in [rule.rule_id for rule in decision.rules] for _, decision, _ in emitted)


def test_a_rulebook_adoption_re_decides_from_its_date_only():
    before = history_with(conflict=[IAC]).timeline()
    after = history_with(conflict=[IAC], rulebooks=[V2]).timeline()
    emitted = to_emit(recorded_from(before), after)
    assert [(moment, decision.status, decision.rulebook_version) for moment, decision, _ in emitted] == [
        (V2.effective_at, LegalStatus.POW, "v2")
    ]
    assert all(decision.rulebook_version == "v1" for moment, decision in after if moment < V2.effective_at)


def test_facts_about_other_states_do_not_touch_the_captive():
    assert history_with(conflict=[IAC, OTHER_ACK]).change_points() == [CAPTURED]


def test_a_wish_to_defect_is_not_a_fact_the_rules_read():
    assert not [name for name in FACT_NAMES if "wish" in name]
