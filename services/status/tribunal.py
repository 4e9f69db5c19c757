"""The Art. 5 tribunal of one captive as an aggregate (pure; no I/O): folded from his own
tribunal events, in the order they were recorded, into a stage and the ruling that stands.

GC III Art. 5(2) and AP I Art. 45: a competent tribunal is convened with notice to the captive,
hears him (with an interpreter), rules with written reasons, and its ruling may be reviewed. Each
step may follow only the stages the table below names; any other is refused with the stage the
tribunal is in and what the step needs (TribunalConflict, 409)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from shared.contracts.status import NotPowGround, ReviewOutcome, TribunalOutcome
from shared.errors import DomainConflict


class Stage(StrEnum):
    NONE = "NONE"  # no tribunal convened
    CONVENED = "CONVENED"  # convened, notice given, not yet heard
    HEARD = "HEARD"  # at least one hearing held, no ruling yet
    RULED = "RULED"  # the tribunal has ruled
    REVIEWED = "REVIEWED"  # its ruling has been reviewed (upheld or reversed)


class Step(StrEnum):
    """A tribunal step, named by the event that records it."""

    CONVENE = "TribunalConvened"
    HEAR = "TribunalHearingHeld"
    RULE = "TribunalRuled"
    REVIEW = "TribunalRulingReviewed"


TRIBUNAL_EVENTS = frozenset(step.value for step in Step)


class TribunalConflict(DomainConflict):
    """The step cannot follow the tribunal's current stage; the API answers 409."""


class StepRefused(ValueError):
    """The step is malformed for the tribunal's state (e.g. misdated); the API answers 422
    naming `field`."""

    def __init__(self, message: str, field: str = "occurred_at"):
        super().__init__(message)
        self.field = field


# step -> (stages it may follow, stage it leads to)
TRANSITIONS: dict[Step, tuple[frozenset[Stage], Stage]] = {
    Step.CONVENE: (frozenset({Stage.NONE}), Stage.CONVENED),
    Step.HEAR: (frozenset({Stage.CONVENED, Stage.HEARD}), Stage.HEARD),
    Step.RULE: (frozenset({Stage.HEARD}), Stage.RULED),
    Step.REVIEW: (frozenset({Stage.RULED, Stage.REVIEWED}), Stage.REVIEWED),
}

# What each step needs, said when it is refused.
NEEDS = {
    Step.CONVENE: "a tribunal is convened once for a captive; a tribunal is already convened, and a change of "
    "its ruling goes through review",
    Step.HEAR: "a hearing needs a convened tribunal and notice to the captive first, and comes before the ruling "
    "(after it, the ruling is reviewed)",
    Step.RULE: "a ruling needs a hearing first (GC III Art. 5(2): the captive is heard), and the tribunal rules "
    "once: a change goes through review",
    Step.REVIEW: "a review needs a ruling: there is no ruling to review yet",
}

STAGE_WORDS = {
    Stage.NONE: "no tribunal convened",
    Stage.CONVENED: "convened, not yet heard",
    Stage.HEARD: "heard, not yet ruled",
    Stage.RULED: "ruled",
    Stage.REVIEWED: "ruled and reviewed",
}


class Recorded(Protocol):
    """A recorded tribunal event as the fold reads it (history.Dated fits)."""

    effective_at: datetime
    event_id: str
    kind: str
    data: dict


@dataclass(frozen=True)
class Ruling:
    """The ruling that stands: the tribunal's, or what a review reversed it to."""

    outcome: TribunalOutcome
    event_id: str  # the ruling, or the review that reversed it
    ground: NotPowGround | None = None  # for NOT_POW; NOT_A_COMBATANT where an old event named none
    gc_iv_nationality_test_met: bool | None = None


@dataclass(frozen=True)
class Tribunal:
    stage: Stage = Stage.NONE
    standing: Ruling | None = None
    last_step_at: datetime | None = None

    def allows(self, step: Step) -> bool:
        return self.stage in TRANSITIONS[step][0]

    def check(self, step: Step, captive_id: str, at: datetime) -> None:
        """Whether `step`, dated `at`, can be recorded now: TribunalConflict or StepRefused if not."""
        if not self.allows(step):
            raise TribunalConflict(
                f"{step.value} refused: the tribunal of {captive_id} is at stage {self.stage.value} "
                f"({STAGE_WORDS[self.stage]}); {NEEDS[step]}"
            )
        if self.last_step_at is not None and at < self.last_step_at:
            raise StepRefused(
                f"{step.value} dated {at.isoformat()} would come before the tribunal's last step, "
                f"dated {self.last_step_at.isoformat()}: its steps follow one another in time"
            )

    def check_review(self, outcome: ReviewOutcome, ground: NotPowGround | None, test_met: bool | None) -> None:
        """A reversal of a POW ruling needs the ground and the GC IV test, as a NOT_POW ruling
        does; any other review carries neither (StepRefused)."""
        reversing_pow = (
            outcome is ReviewOutcome.REVERSED
            and self.standing is not None
            and self.standing.outcome is TribunalOutcome.POW
        )
        if reversing_pow:
            if ground is None:
                raise StepRefused("ground is required when reversing a POW ruling (why he is not a POW)", "ground")
            if test_met is None and ground is not NotPowGround.FAILURE_TO_DISTINGUISH:
                raise StepRefused(
                    "gc_iv_nationality_test_met is required when reversing a POW ruling", "gc_iv_nationality_test_met"
                )
        elif ground is not None or test_met is not None:
            raise StepRefused(
                "gc_iv_nationality_test_met and ground are given only when reversing a POW ruling, and only then",
                "ground" if ground is not None else "gc_iv_nationality_test_met",
            )

    def after(self, event: Recorded) -> Tribunal:
        """The tribunal after one recorded step (TribunalConflict if it cannot follow)."""
        step = Step(event.kind)
        allowed_from, leads_to = TRANSITIONS[step]
        if self.stage not in allowed_from:
            raise TribunalConflict(f"{step.value} cannot follow stage {self.stage.value}; {NEEDS[step]}")
        moved = replace(self, stage=leads_to, last_step_at=event.effective_at)
        data = event.data
        if step is Step.RULE:
            outcome = TribunalOutcome(data["outcome"])
            return replace(moved, standing=_ruling(outcome, event.event_id, data))
        if step is Step.REVIEW and data["outcome"] == ReviewOutcome.REVERSED:
            was = self.standing.outcome if self.standing else TribunalOutcome.POW
            reversed_to = TribunalOutcome.NOT_POW if was is TribunalOutcome.POW else TribunalOutcome.POW
            return replace(moved, standing=_ruling(reversed_to, event.event_id, data))
        return moved


def _ruling(outcome: TribunalOutcome, event_id: str, data: dict) -> Ruling:
    if outcome is TribunalOutcome.POW:
        return Ruling(outcome, event_id)
    ground = NotPowGround(data["ground"]) if data.get("ground") else NotPowGround.NOT_A_COMBATANT
    return Ruling(outcome, event_id, ground, data.get("gc_iv_nationality_test_met"))


def fold(events: Iterable[Recorded]) -> Tribunal:
    """The tribunal from a captive's tribunal events in recorded order (others are skipped)."""
    tribunal = Tribunal()
    for event in events:
        if event.kind in TRIBUNAL_EVENTS:
            tribunal = tribunal.after(event)
    return tribunal
