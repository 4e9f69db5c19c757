"""The status rulebooks as pure functions, written from ../shared/domain/BRIEF.md section 2 and
docs/legal-basis.md: every rule, the trace, reproduction, and the timeline of decisions built
from dated facts (property-based where it matters)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.status.history import CaptiveHistory, Dated
from services.status.reproduce import reproduce
from services.status.rulebook import FACT_NAMES, RULES, CaptiveFacts, decide
from services.status.timeline import Recorded, to_emit
from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import LegalStatus, NotPowGround, StatusDetermined, TribunalOutcome

CAPTURED = datetime(2025, 1, 11, 9, tzinfo=UTC)
ACKNOWLEDGED = datetime(2025, 4, 28, tzinfo=UTC)
INTEGRATED = ClaimedAffiliation.INTEGRATED_IN_COBELLIGERENT_FORCES
KPA = "Korean People's Army"
KPA_MEMBER = dict(force=KPA, force_state="KP", membership_event_id="ev-registration")
NO_MEMBERSHIP = dict(force=None, force_state=None, integrated_in_forces_of=None, membership_event_id=None)


def facts(**overrides) -> CaptiveFacts:
    """A KPA soldier (membership recorded at registration) whose nationality was left blank."""
    base = dict(
        captive_id="CAP-0000-0000-0001",
        at=CAPTURED,
        captured_at=CAPTURED,
        nationality=None,
        claimed_affiliation=INTEGRATED,
        registration_event_id="ev-registration",
        **KPA_MEMBER,
    )
    return CaptiveFacts(**{**base, **overrides})


KP_PARTY = dict(force_state_party=True, force_state_party_event_id="ev-ack")


def rule_ids(decision) -> list[str]:
    return [rule.rule_id for rule in decision.rules]


def test_every_rule_has_an_id_and_an_article():
    assert [rule.rule_id for rule in RULES] == [f"R{n}" for n in range(1, 11)]
    assert all(rule.article for rule in RULES)


def test_r7_doubt_the_force_s_state_not_acknowledged_means_presumed_pow():
    decision = decide(facts(conflict_international=True, conflict_international_event_id="ev-iac"))
    assert decision.status is LegalStatus.PRESUMED_POW
    assert rule_ids(decision) == ["R1", "R2", "R5", "R7"]
    assert f"KP, the state of {KPA}, not acknowledged as a party" in decision.rules[-1].finding


@pytest.mark.parametrize("nationality", [None, "KR", "KP"], ids=["blank", "claimed-by-south-korea", "KP"])
def test_r3_a_kpa_soldier_is_decided_by_his_force_never_by_his_nationality(nationality):
    """The worked example for a soldier whose nationality is unknown or claimed by South Korea
    (Art. 3 of its constitution): a member of the KPA is a POW once KP is a party (2025-04-28)."""
    march = decide(facts(at=datetime(2025, 3, 1, tzinfo=UTC), nationality=nationality))
    assert march.status is LegalStatus.PRESUMED_POW and rule_ids(march)[-1] == "R7"
    may = decide(facts(at=datetime(2025, 5, 1, tzinfo=UTC), nationality=nationality, **KP_PARTY))
    assert may.status is LegalStatus.POW and rule_ids(may)[-1] == "R3"
    assert KPA in may.rules[-1].finding and "ev-ack" in may.rules[-1].finding


@pytest.mark.parametrize("affiliation", list(ClaimedAffiliation))
def test_r7_with_no_membership_recorded_the_force_is_not_established_whatever_he_claims(affiliation):
    decision = decide(facts(claimed_affiliation=affiliation, nationality="KP", **NO_MEMBERSHIP, **KP_PARTY))
    assert decision.status is LegalStatus.PRESUMED_POW
    assert "force not established" in decision.rules[-1].finding
    assert "R5" not in rule_ids(decision)  # nothing says a state sent him


def test_r7_a_force_whose_state_is_not_recorded_is_a_doubt():
    decision = decide(facts(force="Unit 82", force_state=None, conflict_international=True))
    assert decision.status is LegalStatus.PRESUMED_POW
    assert "the state whose forces Unit 82 are is not established" in decision.rules[-1].finding


def test_r7_with_nothing_known_about_the_conflict():
    decision = decide(facts())
    assert decision.status is LegalStatus.PRESUMED_POW
    assert "no international armed conflict recorded" in decision.rules[-1].finding


def test_r3_member_of_a_party_is_pow_and_the_trace_points_at_the_membership_and_the_acknowledgement():
    decision = decide(facts(at=ACKNOWLEDGED, membership_event_id="ev-membership", **KP_PARTY))
    assert decision.status is LegalStatus.POW
    assert rule_ids(decision) == ["R1", "R2", "R5", "R3"]
    assert decision.rules[-1].article == "GC III Art. 4A(1); AP I Art. 43"
    used = {fact.name: fact for fact in decision.facts}
    assert (used["force_state_party"].value, used["force_state_party"].source_event_id) == (True, "ev-ack")
    for name, value in (("force", KPA), ("force_state", "KP"), ("integrated_in_forces_of", None)):
        assert (used[name].value, used[name].source_event_id) == (value, "ev-membership")
    assert used["claimed_affiliation"].source_event_id == "ev-registration"
    assert used["at"].value == ACKNOWLEDGED.isoformat()


def test_r2_a_conflict_recorded_as_not_international_gives_fundamental_guarantees_only():
    decision = decide(facts(conflict_international=False, conflict_international_event_id="ev-niac"))
    assert decision.status is LegalStatus.AP_I_ART_75
    assert rule_ids(decision) == ["R1", "R2"]


def test_r4_another_category_found_by_a_legal_officer_is_evidence_until_the_tribunal_rules():
    finding = facts(
        **NO_MEMBERSHIP,
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
    decision = decide(facts(mercenary_event_id="ev-merc", **KP_PARTY))
    assert decision.status is LegalStatus.POW
    r5 = decision.rules[rule_ids(decision).index("R5")]
    assert "not a mercenary" in r5.finding and "ev-merc" in r5.finding and "cannot stand" in r5.finding


def test_r5_a_tribunal_ruling_of_mercenarism_cannot_remove_a_state_soldier_s_status():
    decision = decide(
        facts(
            **KP_PARTY,
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
    decision = decide(facts(**NO_MEMBERSHIP, conflict_international=True, mercenary_event_id="ev-merc"))
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
    after = decide(facts(at=ACKNOWLEDGED, **KP_PARTY, **{finding: "ev-f"}))
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


@pytest.mark.parametrize("ground", list(NotPowGround))
def test_r8_a_not_pow_ruling_without_the_tribunal_s_guarantees_does_not_override_the_presumption(ground):
    missing = ("hearing", "interpreter")
    presumed = decide(ruled_not_pow(ground, False, **NO_MEMBERSHIP, tribunal_guarantees_missing=missing))
    assert presumed.status is LegalStatus.PRESUMED_POW
    assert rule_ids(presumed) == ["R1", "R8", "R7"]
    assert "hearing, interpreter" in presumed.rules[1].finding and "ev-ruling" in presumed.rules[1].finding
    # Where R3 holds, he stays a POW: the other rules decide as if there were no ruling.
    member = decide(ruled_not_pow(ground, False, at=ACKNOWLEDGED, **KP_PARTY, tribunal_guarantees_missing=missing))
    assert member.status is LegalStatus.POW and rule_ids(member)[:2] == ["R1", "R8"] and rule_ids(member)[-1] == "R3"
    # What is missing is in the trace, from the ruling's event, so the decision reproduces.
    [fact] = [fact for fact in presumed.facts if fact.name == "tribunal_guarantees_missing"]
    assert (fact.value, fact.source_event_id) == ("hearing, interpreter", "ev-ruling")


def test_r6_ruled_failure_to_distinguish_forfeits_status_but_keeps_pow_equivalent_protection():
    for test_met in (True, False, None):
        decision = decide(ruled_not_pow(NotPowGround.FAILURE_TO_DISTINGUISH, test_met, **KP_PARTY))
        assert decision.status is LegalStatus.POW_EQUIVALENT
        assert rule_ids(decision) == ["R1", "R8", "R6"] and "Art. 44(4)" in decision.rules[-1].finding


@pytest.mark.parametrize(
    ("ground", "rule"), [(NotPowGround.ESPIONAGE, "R6"), (NotPowGround.MERCENARY, "R5")], ids=["spy", "mercenary"]
)
@pytest.mark.parametrize(("test_met", "status"), [(True, LegalStatus.CIVILIAN_GC_IV), (False, LegalStatus.AP_I_ART_75)])
def test_a_spy_or_a_mercenary_ruled_not_a_pow_gets_gc_iv_or_art_75_never_pow_equivalent(ground, rule, test_met, status):
    decision = decide(ruled_not_pow(ground, test_met, **NO_MEMBERSHIP))
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
    ru_party = dict(integrated_in_party=True, integrated_in_party_event_id="ev-ru")
    embedded = facts(conflict_international=True, integrated_in_forces_of="RU", **ru_party)
    assert decide(embedded, "v1").status is LegalStatus.PRESUMED_POW  # v1 reads the force's own state only
    under_v2 = decide(embedded, "v2")
    assert under_v2.status is LegalStatus.POW and under_v2.rulebook_version == "v2"
    assert "integrated in the armed forces of a party" in under_v2.rules[-1].finding
    assert "ev-ru" in under_v2.rules[-1].finding
    # Integrated in the forces of a state not acknowledged as a party: still in doubt.
    not_yet = decide(facts(conflict_international=True, integrated_in_forces_of="RU"), "v2")
    assert not_yet.status is LegalStatus.PRESUMED_POW
    assert "RU, in whose forces he is integrated, not acknowledged as a party" in not_yet.rules[-1].finding
    # Own forces only (no integration recorded): v2 changes nothing.
    assert decide(facts(conflict_international=True), "v2").status is LegalStatus.PRESUMED_POW
    # What he claims is not integration: without integrated_in_forces_of, a claim reads nothing.
    assert decide(facts(conflict_international=True, claimed_affiliation=INTEGRATED, **ru_party), "v2").status is (
        LegalStatus.PRESUMED_POW
    )


# -- property-based ---------------------------------------------------------------------------------

optional_event = st.one_of(st.none(), st.sampled_from(["ev-a", "ev-b"]))
captive_facts = st.builds(
    facts,
    claimed_affiliation=st.sampled_from(list(ClaimedAffiliation)),
    nationality=st.sampled_from(["KP", "KR", "RU", None]),
    force=st.sampled_from([None, KPA]),
    force_state=st.sampled_from([None, "KP"]),
    integrated_in_forces_of=st.sampled_from([None, "RU"]),
    membership_event_id=optional_event,
    conflict_international=st.sampled_from([None, True, False]),
    force_state_party=st.sampled_from([None, True]),
    integrated_in_party=st.sampled_from([None, True]),
    espionage_event_id=optional_event,
    failure_to_distinguish_event_id=optional_event,
    other_category=st.sampled_from([None, "4A(2)", "4B"]),
    mercenary_event_id=optional_event,
    tribunal_outcome=st.sampled_from([None, *TribunalOutcome]),
    tribunal_ground=st.sampled_from([None, *NotPowGround]),
    gc_iv_nationality_test_met=st.sampled_from([None, True, False]),
    tribunal_guarantees_missing=st.sampled_from([(), ("hearing",), ("interpreter", "evidence")]),
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


@given(captive_facts, st.sampled_from(["v1", "v2"]), st.sampled_from(["KP", "KR", "RU", "UA", None]))
def test_nationality_never_decides(case, version, nationality):
    assert decide(replace(case, nationality=nationality), version).key() == decide(case, version).key()


@given(captive_facts, st.sampled_from(["v1", "v2"]))
def test_a_spy_never_gets_pow_equivalent_status(case, version):
    spy = replace(case, tribunal_outcome=TribunalOutcome.NOT_POW, tribunal_ground=NotPowGround.ESPIONAGE)
    if spy.tribunal_guarantees_missing:  # set aside (R8): the other rules decide, never POW-equivalent
        assert decide(spy, version).status in (LegalStatus.POW, LegalStatus.PRESUMED_POW, LegalStatus.AP_I_ART_75)
        spy = replace(spy, tribunal_guarantees_missing=())
    assert decide(spy, version).status in (LegalStatus.CIVILIAN_GC_IV, LegalStatus.AP_I_ART_75)


REGISTERED_KPA = Dated(CAPTURED, "ev-registration", "ForceMembership", {"force": KPA, "force_state": "KP"}, 1)


def history_with(
    legal=(), conflict=(), rulebooks=(), memberships=(REGISTERED_KPA,), nationality=None
) -> CaptiveHistory:
    return CaptiveHistory(
        captive_id="CAP-0000-0000-0001",
        captured_at=CAPTURED,
        nationality=nationality,
        claimed_affiliation=INTEGRATED,
        registration_event_id="ev-registration",
        legal=list(legal),
        conflict=list(conflict),
        rulebooks=list(rulebooks),
        memberships=list(memberships),
    )


IAC = Dated(datetime(2022, 2, 24, tzinfo=UTC), "ev-iac", "CONFLICT_INTERNATIONAL", {"kind": "CONFLICT_INTERNATIONAL"})
ACK = Dated(ACKNOWLEDGED, "ev-ack", "STATE_ACKNOWLEDGED_AS_PARTY", {"state": "KP"})
OTHER_ACK = Dated(datetime(2025, 2, 1, tzinfo=UTC), "ev-by", "STATE_ACKNOWLEDGED_AS_PARTY", {"state": "BY"})
RU_ACK = Dated(datetime(2022, 2, 24, tzinfo=UTC), "ev-ru", "STATE_ACKNOWLEDGED_AS_PARTY", {"state": "RU"})
SEALED = {"withheld": "sealed"}  # a sealed value, as the read models hold it
# A tribunal with every guarantee of GC III Art. 5(2) on record (services/status/tribunal.py).
CONVENED = Dated(
    datetime(2025, 8, 1, tzinfo=UTC),
    "ev-convened",
    "TribunalConvened",
    {"notice_to_captive": SEALED, "notice_language": SEALED},
    2,
)
HEARD = Dated(
    datetime(2025, 8, 20, tzinfo=UTC),
    "ev-heard",
    "TribunalHearingHeld",
    {"captive_present": True, "interpreter": "K. Lee", "evidence_refs": SEALED, "evidence_count": 1},
    3,
)
RULING = Dated(
    datetime(2025, 9, 1, tzinfo=UTC),
    "ev-ruling",
    "TribunalRuled",
    {
        "outcome": "NOT_POW",
        "gc_iv_nationality_test_met": True,
        "ground": "NOT_A_COMBATANT",
        "written_reasons": SEALED,
    },
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
        datetime(2025, 10, 1, tzinfo=UTC),
        "ev-review",
        "TribunalRulingReviewed",
        {"outcome": "REVERSED", "written_reasons": SEALED},
        5,
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
    embedded = Dated(
        CAPTURED, "ev-registration", "ForceMembership", {**REGISTERED_KPA.data, "integrated_in_forces_of": "RU"}, 1
    )
    before = history_with(conflict=[IAC, RU_ACK], memberships=[embedded]).timeline()
    after = history_with(conflict=[IAC, RU_ACK], rulebooks=[V2], memberships=[embedded]).timeline()
    emitted = to_emit(recorded_from(before), after)
    assert [(moment, decision.status, decision.rulebook_version) for moment, decision, _ in emitted] == [
        (V2.effective_at, LegalStatus.POW, "v2")
    ]
    assert all(decision.rulebook_version == "v1" for moment, decision in after if moment < V2.effective_at)


def test_facts_about_other_states_do_not_touch_the_captive():
    assert history_with(conflict=[IAC, OTHER_ACK]).change_points() == [CAPTURED]


def test_the_acknowledgement_of_his_nationality_s_state_does_not_touch_him_only_his_force_s_does():
    kr_ack = Dated(ACKNOWLEDGED, "ev-kr", "STATE_ACKNOWLEDGED_AS_PARTY", {"state": "KR"})
    recorded_kr = history_with(conflict=[IAC, kr_ack], nationality="KR")
    assert recorded_kr.change_points() == [CAPTURED]
    assert recorded_kr.timeline()[-1][1].status is LegalStatus.PRESUMED_POW
    kpa_with_kr = history_with(conflict=[IAC, ACK], nationality="KR").timeline()
    assert [(moment, decision.status) for moment, decision in kpa_with_kr] == [
        (CAPTURED, LegalStatus.PRESUMED_POW),
        (ACKNOWLEDGED, LegalStatus.POW),
    ]
    unknown_force = history_with(conflict=[IAC, ACK], memberships=[], nationality="KP").timeline()
    assert [decision.status for _, decision in unknown_force] == [LegalStatus.PRESUMED_POW]
    assert "force not established" in unknown_force[0][1].rules[-1].finding


def test_a_membership_recorded_later_holds_from_its_time_until_another_replaces_it():
    established = Dated(datetime(2025, 3, 1, tzinfo=UTC), "ev-m1", "ForceMembership", REGISTERED_KPA.data, 3)
    corrected = Dated(datetime(2025, 6, 1, tzinfo=UTC), "ev-m2", "ForceMembership", {"force": "unknown unit"}, 4)
    timeline = history_with(conflict=[IAC, ACK], memberships=[corrected, established]).timeline()
    assert [(moment, decision.status) for moment, decision in timeline] == [
        (CAPTURED, LegalStatus.PRESUMED_POW),  # force not established
        (datetime(2025, 3, 1, tzinfo=UTC), LegalStatus.PRESUMED_POW),  # KP not yet a party
        (ACKNOWLEDGED, LegalStatus.POW),
        (datetime(2025, 6, 1, tzinfo=UTC), LegalStatus.PRESUMED_POW),  # the state of his force unknown
    ]
    used = {fact.name: fact for fact in timeline[2][1].facts}
    assert (used["force"].value, used["force"].source_event_id) == (KPA, "ev-m1")


def test_a_wish_to_defect_is_not_a_fact_the_rules_read():
    assert not [name for name in FACT_NAMES if "wish" in name]
