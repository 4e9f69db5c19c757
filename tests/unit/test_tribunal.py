"""The Art. 5 tribunal as an aggregate (services/status/tribunal.py): the whole transition table,
the ruling that stands after rulings and reviews, what each refusal says, and the guarantees a
ruling that he is not a POW needs (GC III Art. 5(2); AP I Art. 45(1); BRIEF s.2 r.8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.status.history import CaptiveHistory, Dated
from services.status.tribunal import (
    TRANSITIONS,
    Guarantee,
    GuaranteesMissing,
    Stage,
    Step,
    StepRefused,
    Tribunal,
    TribunalConflict,
    fold,
    missing_guarantees,
)
from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import LegalStatus, NotPowGround, ReviewOutcome, TribunalOutcome

DAY = datetime(2025, 8, 1, tzinfo=UTC)
# A sealed value as the read models hold it (shared/privacy/keyring.py `as_published`).
SEALED = {"withheld": "sealed"}

# Which step may follow which stage, written out from GC III Art. 5(2) / AP I Art. 45: convened
# once with notice; heard (one hearing or more) before it rules; it rules once; its ruling may be
# reviewed, and a reviewed ruling reviewed again.
ALLOWED = {
    (Step.CONVENE, Stage.NONE): Stage.CONVENED,
    (Step.HEAR, Stage.CONVENED): Stage.HEARD,
    (Step.HEAR, Stage.HEARD): Stage.HEARD,
    (Step.RULE, Stage.HEARD): Stage.RULED,
    (Step.REVIEW, Stage.RULED): Stage.REVIEWED,
    (Step.REVIEW, Stage.REVIEWED): Stage.REVIEWED,
}

# Each step as the status service records it, with every guarantee of GC III Art. 5(2): notice in
# a language; a hearing with him present, held in Ukrainian, he speaks Korean, an interpreter;
# evidence; written reasons.
DATA = {
    Step.CONVENE: {"tribunal": "t", "notice_to_captive": SEALED, "notice_language": SEALED},
    Step.HEAR: {
        "captive_present": True,
        "interpreter": "K. Lee",
        "proceedings_language": "ukr",
        "captive_language": "kor",
        "evidence_refs": SEALED,
        "evidence_count": 2,
    },
    Step.RULE: {"outcome": "POW", "written_reasons": SEALED},
    Step.REVIEW: {"outcome": "UPHELD", "reviewing_body": "board", "written_reasons": SEALED},
}


def step(kind: Step, n: int = 0, **data) -> Dated:
    return Dated(DAY + timedelta(days=n), f"ev-{kind.name.lower()}-{n}", kind.value, {**DATA[kind], **data}, n)


def at_stage(stage: Stage) -> Tribunal:
    path = {
        Stage.NONE: [],
        Stage.CONVENED: [Step.CONVENE],
        Stage.HEARD: [Step.CONVENE, Step.HEAR],
        Stage.RULED: [Step.CONVENE, Step.HEAR, Step.RULE],
        Stage.REVIEWED: [Step.CONVENE, Step.HEAR, Step.RULE, Step.REVIEW],
    }[stage]
    return fold(step(kind, n) for n, kind in enumerate(path))


def test_the_table_is_exactly_the_law_s_order_of_steps():
    table = {(s, stage): leads_to for s, (froms, leads_to) in TRANSITIONS.items() for stage in froms}
    assert table == ALLOWED


@pytest.mark.parametrize(("kind", "stage"), list(product(Step, Stage)), ids=lambda v: v.name)
def test_every_step_from_every_stage(kind, stage):
    tribunal = at_stage(stage)
    assert tribunal.stage is stage
    if (kind, stage) in ALLOWED:
        tribunal.check(kind, "CAP-1", DAY + timedelta(days=10))
        assert tribunal.after(step(kind, 10)).stage is ALLOWED[kind, stage]
    else:
        with pytest.raises(TribunalConflict) as refused:
            tribunal.check(kind, "CAP-1", DAY + timedelta(days=10))
        # The refusal says which stage the tribunal is in and what the step needs.
        assert f"stage {stage.value}" in str(refused.value)
        assert "needs" in str(refused.value) or "once" in str(refused.value)
        with pytest.raises(TribunalConflict):
            tribunal.after(step(kind, 10))


def test_the_refusals_say_what_is_missing():
    with pytest.raises(TribunalConflict, match="a hearing needs a convened tribunal"):
        at_stage(Stage.NONE).check(Step.HEAR, "CAP-1", DAY)
    with pytest.raises(TribunalConflict, match="a ruling needs a hearing first"):
        at_stage(Stage.CONVENED).check(Step.RULE, "CAP-1", DAY)
    with pytest.raises(TribunalConflict, match="no ruling to review"):
        at_stage(Stage.HEARD).check(Step.REVIEW, "CAP-1", DAY)
    with pytest.raises(TribunalConflict, match="already convened"):
        at_stage(Stage.RULED).check(Step.CONVENE, "CAP-1", DAY)


def test_a_step_dated_before_the_last_one_is_refused():
    heard = at_stage(Stage.HEARD)
    with pytest.raises(StepRefused, match="before the tribunal's last step"):
        heard.check(Step.RULE, "CAP-1", DAY)
    heard.check(Step.RULE, "CAP-1", DAY + timedelta(days=1))  # the same moment as the hearing is fine


def test_the_standing_ruling_follows_rulings_and_reversals():
    convened, heard = step(Step.CONVENE, 0), step(Step.HEAR, 1)
    not_pow = step(Step.RULE, 2, outcome="NOT_POW", ground="ESPIONAGE", gc_iv_nationality_test_met=False)
    ruled = fold([convened, heard, not_pow])
    assert ruled.standing.outcome is TribunalOutcome.NOT_POW
    assert (ruled.standing.ground, ruled.standing.gc_iv_nationality_test_met) == (NotPowGround.ESPIONAGE, False)
    upheld = ruled.after(step(Step.REVIEW, 3))
    assert upheld.standing == ruled.standing and upheld.stage is Stage.REVIEWED
    reversed_ = upheld.after(step(Step.REVIEW, 4, outcome="REVERSED"))
    assert (reversed_.standing.outcome, reversed_.standing.event_id) == (TribunalOutcome.POW, "ev-review-4")
    assert reversed_.standing.ground is None
    again = reversed_.after(
        step(Step.REVIEW, 5, outcome="REVERSED", ground="FAILURE_TO_DISTINGUISH", gc_iv_nationality_test_met=None)
    )
    assert (again.standing.outcome, again.standing.ground) == (
        TribunalOutcome.NOT_POW,
        NotPowGround.FAILURE_TO_DISTINGUISH,
    )


def test_a_not_pow_ruling_without_a_ground_reads_as_not_a_combatant():
    old = fold(
        [
            step(Step.CONVENE, 0),
            step(Step.HEAR, 1),
            step(Step.RULE, 2, outcome="NOT_POW", gc_iv_nationality_test_met=True),
        ]
    )
    assert old.standing.ground is NotPowGround.NOT_A_COMBATANT


def test_a_reversal_of_a_pow_ruling_needs_the_ground_and_the_gc_iv_test():
    pow_ruled = at_stage(Stage.RULED)
    with pytest.raises(StepRefused, match="ground is required") as refused:
        pow_ruled.check_review(ReviewOutcome.REVERSED, None, True)
    assert refused.value.field == "ground"
    with pytest.raises(StepRefused, match="gc_iv_nationality_test_met is required"):
        pow_ruled.check_review(ReviewOutcome.REVERSED, NotPowGround.ESPIONAGE, None)
    pow_ruled.check_review(ReviewOutcome.REVERSED, NotPowGround.FAILURE_TO_DISTINGUISH, None)
    pow_ruled.check_review(ReviewOutcome.REVERSED, NotPowGround.MERCENARY, False)
    with pytest.raises(StepRefused, match="only when reversing a POW ruling"):
        pow_ruled.check_review(ReviewOutcome.UPHELD, NotPowGround.ESPIONAGE, None)
    not_pow = fold(
        [
            step(Step.CONVENE, 0),
            step(Step.HEAR, 1),
            step(Step.RULE, 2, outcome="NOT_POW", ground="NOT_A_COMBATANT", gc_iv_nationality_test_met=True),
        ]
    )
    with pytest.raises(StepRefused, match="only when reversing a POW ruling"):
        not_pow.check_review(ReviewOutcome.REVERSED, NotPowGround.ESPIONAGE, True)
    not_pow.check_review(ReviewOutcome.REVERSED, None, None)


def test_other_events_are_not_steps():
    finding = Dated(DAY, "ev-finding", "LegalFindingRecorded", {"finding": "ESPIONAGE"})
    assert fold([finding]) == Tribunal()


# -- the guarantees of a competent tribunal (GC III Art. 5(2); BRIEF s.2 r.8) ---------------------

NOT_POW = {"outcome": "NOT_POW", "ground": "ESPIONAGE", "gc_iv_nationality_test_met": False, "written_reasons": "r"}
AFTER = DAY + timedelta(days=30)


def heard(*hearings: dict, convening: dict | None = None) -> Tribunal:
    """Convened (with notice unless `convening` says otherwise), then each hearing in turn: each
    one the fully guaranteed hearing of DATA with the given fields changed."""
    events = [step(Step.CONVENE, 0, **(convening or {}))]
    events += [step(Step.HEAR, n, **hearing) for n, hearing in enumerate(hearings, start=1)]
    return fold(events)


ABSENT_WITHOUT_REASON = {"captive_present": False, "interpreter": None}
NO_INTERPRETER = {"interpreter": None}  # held in Ukrainian; he speaks Korean


def refused_for(tribunal: Tribunal, data: dict, step_: Step = Step.RULE) -> tuple[Guarantee, ...]:
    with pytest.raises(GuaranteesMissing) as refused:
        tribunal.check_guarantees(step_, data, "CAP-1", AFTER)
    message = str(refused.value)
    # The refusal names every missing guarantee, with what it asks, and nothing else.
    for guarantee in Guarantee:
        assert (f"{guarantee.value}: " in message) == (guarantee in refused.value.missing), message
    assert "GC III Art. 5(2)" in message and "CAP-1" in message
    return refused.value.missing


def test_a_not_pow_ruling_after_a_hearing_without_him_and_without_a_reason_is_refused():
    # He was not heard: a hearing in his absence counts only with the reason recorded, and the
    # evidence examined there was not examined at his hearing.
    tribunal = heard(ABSENT_WITHOUT_REASON)
    assert refused_for(tribunal, NOT_POW) == (Guarantee.HEARING, Guarantee.EVIDENCE)
    # His absence recorded with its reason makes it his hearing; nobody needed interpreting for him.
    for reason in ("DECLINED_TO_ATTEND", "UNABLE_TO_ATTEND"):
        heard({**ABSENT_WITHOUT_REASON, "absence_reason": reason}).check_guarantees(Step.RULE, NOT_POW, "CAP-1", AFTER)


def test_a_not_pow_ruling_without_an_interpreter_when_he_does_not_speak_the_language_is_refused():
    assert refused_for(heard(NO_INTERPRETER), NOT_POW) == (Guarantee.INTERPRETER,)
    # Where he speaks the language of the proceedings, none is needed.
    heard({**NO_INTERPRETER, "captive_language": "ukr"}).check_guarantees(Step.RULE, NOT_POW, "CAP-1", AFTER)
    # Where the languages are not recorded and no interpreter is named, it is not shown (fail closed)...
    unknown = {"interpreter": None, "proceedings_language": None, "captive_language": None}
    assert refused_for(heard(unknown), NOT_POW) == (Guarantee.INTERPRETER,)
    assert refused_for(heard({**NO_INTERPRETER, "proceedings_language": None}), NOT_POW) == (Guarantee.INTERPRETER,)
    # ...while a named interpreter shows that one was there, whatever was recorded of the languages.
    heard({"proceedings_language": None, "captive_language": None}).check_guarantees(Step.RULE, NOT_POW, "CAP-1", AFTER)


def test_a_not_pow_ruling_with_every_guarantee_is_accepted_and_stands():
    tribunal = heard({})
    tribunal.check_guarantees(Step.RULE, NOT_POW, "CAP-1", AFTER)
    ruled = tribunal.after(step(Step.RULE, 9, **NOT_POW))
    assert ruled.standing.outcome is TribunalOutcome.NOT_POW
    assert missing_guarantees(ruled) == ()
    # A flawed hearing is cured by a later one that gives him every guarantee.
    heard(ABSENT_WITHOUT_REASON, NO_INTERPRETER, {}).check_guarantees(Step.RULE, NOT_POW, "CAP-1", AFTER)


def test_notice_evidence_and_written_reasons_are_guarantees_too():
    no_notice = {"notice_to_captive": None, "notice_language": None}
    assert refused_for(heard({}, convening=no_notice), NOT_POW) == (Guarantee.NOTICE,)
    assert refused_for(heard({"evidence_count": 0}), NOT_POW) == (Guarantee.EVIDENCE,)
    # A hearing recorded before the evidence was counted (its references sealed): not shown.
    assert refused_for(heard({"evidence_count": None}), NOT_POW) == (Guarantee.EVIDENCE,)
    assert refused_for(heard({}), {**NOT_POW, "written_reasons": None}) == (Guarantee.WRITTEN_REASONS,)
    everything = heard(ABSENT_WITHOUT_REASON, convening=no_notice)
    assert refused_for(everything, {**NOT_POW, "written_reasons": None}) == (
        Guarantee.NOTICE,
        Guarantee.HEARING,
        Guarantee.EVIDENCE,
        Guarantee.WRITTEN_REASONS,
    )


def test_a_pow_ruling_needs_no_guarantee():
    # A ruling in his favour keeps the protection he has: it cannot harm him.
    bare = fold([Dated(DAY, "c", Step.CONVENE.value, {}), Dated(DAY, "h", Step.HEAR.value, {})])
    bare.check_guarantees(Step.RULE, {"outcome": "POW"}, "CAP-1", AFTER)
    assert missing_guarantees(bare.after(Dated(AFTER, "r", Step.RULE.value, {"outcome": "POW"}))) == ()


def test_a_review_reversing_a_pow_ruling_to_not_pow_needs_the_guarantees():
    reversal = {"outcome": "REVERSED", "reviewing_body": "b", "written_reasons": "r", **NOT_POW} | {
        "outcome": "REVERSED"
    }
    flawed = heard(NO_INTERPRETER).after(step(Step.RULE, 5))
    assert flawed.standing.outcome is TribunalOutcome.POW
    assert refused_for(flawed, reversal, Step.REVIEW) == (Guarantee.INTERPRETER,)
    # With them, the reversal stands as its own outcome, from the review's event.
    sound = heard({}).after(step(Step.RULE, 5))
    sound.check_guarantees(Step.REVIEW, reversal, "CAP-1", AFTER)
    reversed_ = sound.after(step(Step.REVIEW, 6, **reversal))
    assert (reversed_.standing.outcome, reversed_.standing.event_id) == (TribunalOutcome.NOT_POW, "ev-review-6")
    assert missing_guarantees(reversed_) == ()
    # A review in his favour (reversing a NOT_POW ruling) needs none.
    old_not_pow = heard(NO_INTERPRETER).after(step(Step.RULE, 5, **NOT_POW))
    in_his_favour = {"outcome": "REVERSED", "reviewing_body": "b", "written_reasons": "r"}
    old_not_pow.check_guarantees(Step.REVIEW, in_his_favour, "CAP-1", AFTER)
    assert old_not_pow.after(step(Step.REVIEW, 6, **in_his_favour)).standing.outcome is TribunalOutcome.POW


def test_upholding_keeps_the_ruling_and_cannot_make_one_without_the_guarantees_stand():
    sound = heard({}).after(step(Step.RULE, 5, **NOT_POW))
    upheld = sound.after(step(Step.REVIEW, 6))
    assert upheld.standing == sound.standing and upheld.stage is Stage.REVIEWED
    # An old NOT_POW ruling without them stays without effect: upholding it is refused.
    old = heard(ABSENT_WITHOUT_REASON).after(step(Step.RULE, 5, **NOT_POW))
    assert refused_for(old, DATA[Step.REVIEW], Step.REVIEW) == (Guarantee.HEARING, Guarantee.EVIDENCE)


hearings = st.fixed_dictionaries(
    {
        "captive_present": st.booleans(),
        "absence_reason": st.sampled_from([None, "DECLINED_TO_ATTEND"]),
        "interpreter": st.sampled_from([None, "K. Lee"]),
        "proceedings_language": st.sampled_from([None, "ukr"]),
        "captive_language": st.sampled_from([None, "ukr", "kor"]),
        "evidence_count": st.sampled_from([None, 0, 1]),
    }
)


@given(st.lists(hearings, min_size=1, max_size=4))
def test_a_hearing_with_every_guarantee_cures_earlier_ones_and_one_that_does_not_count_changes_nothing(earlier):
    def missing(*hearings_):
        return missing_guarantees(heard(*hearings_).after(step(Step.RULE, 9, **NOT_POW)))

    # A hearing he attended, interpreted, examining evidence: whatever came before, nothing is missing.
    assert missing(*earlier, DATA[Step.HEAR]) == ()
    # A hearing without him and without a reason is not his hearing: it neither gives nor takes away.
    assert missing(*earlier, {**ABSENT_WITHOUT_REASON, "evidence_count": 5}) == missing(*earlier)
    # And whatever the hearings, a ruling that he is a POW never lacks one.
    assert missing_guarantees(heard(*earlier).after(step(Step.RULE, 9))) == ()


def test_an_old_not_pow_ruling_without_its_guarantees_leaves_him_presumed_pow():
    """Recorded before the guarantees were checked: a hearing without him and no reason, no
    languages, the evidence uncounted. The status rules set it aside and say why."""
    captured = datetime(2025, 1, 11, tzinfo=UTC)
    old = [
        Dated(DAY, "ev-convened", Step.CONVENE.value, DATA[Step.CONVENE], 2),
        Dated(
            DAY + timedelta(days=1), "ev-heard", Step.HEAR.value, {"captive_present": False, "evidence_refs": SEALED}, 3
        ),
        Dated(DAY + timedelta(days=2), "ev-ruled", Step.RULE.value, {**NOT_POW, "written_reasons": SEALED}, 4),
    ]
    history = CaptiveHistory(
        captive_id="CAP-1",
        captured_at=captured,
        nationality="KP",
        claimed_affiliation=ClaimedAffiliation.INTEGRATED_IN_COBELLIGERENT_FORCES,
        registration_event_id="ev-registration",
        legal=old,
    )
    timeline = history.timeline()
    assert [decision.status for _, decision in timeline] == [LegalStatus.PRESUMED_POW, LegalStatus.PRESUMED_POW]
    ruled = timeline[-1][1]
    assert [rule.rule_id for rule in ruled.rules] == ["R1", "R8", "R7"]
    r8 = ruled.rules[1].finding
    assert "ev-ruled" in r8 and "hearing, evidence" in r8 and "does not override the presumption" in r8
    facts = {fact.name: fact for fact in ruled.facts}
    assert facts["tribunal_outcome"].value == "NOT_POW"
    assert (facts["tribunal_guarantees_missing"].value, facts["tribunal_guarantees_missing"].source_event_id) == (
        "hearing, evidence",
        "ev-ruled",
    )
    # The same ruling with its guarantees on record takes him out of the presumption (R8, R6, R9).
    sound = [old[0], Dated(old[1].effective_at, "ev-heard", Step.HEAR.value, DATA[Step.HEAR], 3), old[2]]
    with_guarantees = CaptiveHistory(**{**history.__dict__, "legal": sound}).timeline()
    assert with_guarantees[-1][1].status is LegalStatus.AP_I_ART_75
