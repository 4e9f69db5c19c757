"""The Art. 5 tribunal as an aggregate (services/status/tribunal.py): the whole transition table,
the ruling that stands after rulings and reviews, and what each refusal says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from services.status.history import Dated
from services.status.tribunal import (
    TRANSITIONS,
    Stage,
    Step,
    StepRefused,
    Tribunal,
    TribunalConflict,
    fold,
)
from shared.contracts.status import NotPowGround, ReviewOutcome, TribunalOutcome

DAY = datetime(2025, 8, 1, tzinfo=UTC)

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

DATA = {
    Step.CONVENE: {},
    Step.HEAR: {},
    Step.RULE: {"outcome": "POW"},
    Step.REVIEW: {"outcome": "UPHELD"},
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
