"""The Art. 5 tribunal of one captive as an aggregate (pure; no I/O): folded from his own
tribunal events, in the order they were recorded, into a stage, the ruling that stands, and what
the record shows of the tribunal's guarantees.

GC III Art. 5(2) and AP I Art. 45: a competent tribunal is convened with notice to the captive,
hears him (with an interpreter), rules with written reasons, and its ruling may be reviewed. Each
step may follow only the stages the table below names; any other is refused with the stage the
tribunal is in and what the step needs (TribunalConflict, 409).

A ruling that he is not a POW takes away the presumption of AP I Art. 45(1), so it stands only on
a record that shows every guarantee (`missing_guarantees`; ../shared/domain/BRIEF.md s.2 r.8):
notice, a hearing he attended or whose absence is explained, an interpreter where needed,
evidence, written reasons. The API refuses such a ruling (or a review that would leave one
standing) without them, and the status rules set aside any that was recorded without them (an
older event): fail closed, the presumption holds. A ruling that he is a POW needs none: a ruling
in his favour cannot harm him. Review is the guarantee that follows the ruling: any ruling may be
reviewed, again and again (the table below)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from shared.contracts.status import NotPowGround, ReviewOutcome, TribunalOutcome
from shared.platform.errors import DomainConflict


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


class Guarantee(StrEnum):
    """A guarantee of a competent tribunal (GC III Art. 5(2); BRIEF s.2 r.8) that a ruling that
    he is not a POW needs the record to show."""

    NOTICE = "notice"
    HEARING = "hearing"
    INTERPRETER = "interpreter"
    EVIDENCE = "evidence"
    WRITTEN_REASONS = "written_reasons"


# What each guarantee asks of the record, said when it is not shown.
GUARANTEE_WORDS = {
    Guarantee.NOTICE: "notice to the captive, in a language, when the tribunal was convened",
    Guarantee.HEARING: "a hearing with the captive present, or with his absence recorded with its reason "
    "(absence_reason)",
    Guarantee.INTERPRETER: "an interpreter where he does not speak the language of the proceedings: at a hearing "
    "he attended, an interpreter named, or the language of the proceedings and his own recorded and the same",
    Guarantee.EVIDENCE: "evidence examined at a hearing that counts as his hearing",
    Guarantee.WRITTEN_REASONS: "written reasons for the ruling",
}


class GuaranteesMissing(TribunalConflict):
    """A ruling that he is not a POW would stand without the tribunal's guarantees (409)."""

    def __init__(self, message: str, missing: tuple[Guarantee, ...]):
        super().__init__(message)
        self.missing = missing


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
    written_reasons: bool = True  # whether its event gives written reasons


@dataclass(frozen=True)
class Hearing:
    """What the guarantees read from one recorded hearing."""

    captive_present: bool
    absence_reason: str | None
    interpreter: bool
    proceedings_language: str | None
    captive_language: str | None
    evidence_count: int

    @classmethod
    def of(cls, data: Mapping) -> Hearing:
        count = data.get("evidence_count")
        refs = data.get("evidence_refs")
        if count is None and isinstance(refs, list):  # unsealed data (the references themselves)
            count = len(refs)
        return cls(
            captive_present=data.get("captive_present") is True,
            absence_reason=data.get("absence_reason") or None,
            interpreter=bool(data.get("interpreter")),
            proceedings_language=data.get("proceedings_language") or None,
            captive_language=data.get("captive_language") or None,
            evidence_count=count if isinstance(count, int) else 0,
        )

    @property
    def counts(self) -> bool:
        """His hearing: he was present, or his absence is recorded with its reason."""
        return self.captive_present or self.absence_reason is not None

    @property
    def interpreted(self) -> bool:
        """He could follow it: an interpreter was there, or he speaks the language it was held in
        (both recorded). Where neither is shown, it is not (fail closed)."""
        if self.interpreter:
            return True
        return self.proceedings_language is not None and self.proceedings_language == self.captive_language


@dataclass(frozen=True)
class Tribunal:
    stage: Stage = Stage.NONE
    standing: Ruling | None = None
    last_step_at: datetime | None = None
    notice: bool = False  # the convening recorded notice to the captive, and its language
    hearings: tuple[Hearing, ...] = ()

    def guarantees_missing(self) -> tuple[Guarantee, ...]:
        """The guarantees of GC III Art. 5(2) the record does not show, for the ruling that stands
        (whatever it is; `missing_guarantees` asks only where it removes the presumption)."""
        missing = []
        if not self.notice:
            missing.append(Guarantee.NOTICE)
        heard = [hearing for hearing in self.hearings if hearing.counts]
        if not heard:
            missing.append(Guarantee.HEARING)
        attended = [hearing for hearing in heard if hearing.captive_present]
        if attended and not any(hearing.interpreted for hearing in attended):
            missing.append(Guarantee.INTERPRETER)
        if not any(hearing.evidence_count > 0 for hearing in heard):
            missing.append(Guarantee.EVIDENCE)
        if self.standing is None or not self.standing.written_reasons:
            missing.append(Guarantee.WRITTEN_REASONS)
        return tuple(missing)

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

    def check_guarantees(self, step: Step, data: Mapping, captive_id: str, at: datetime) -> None:
        """Whether recording this ruling or review (`data`, its body) would leave standing a
        ruling that he is not a POW without the tribunal's guarantees: GuaranteesMissing (409)
        naming each one the record does not show, if so."""
        after = self.after(Pending(at, PENDING, step.value, dict(data)))
        missing = missing_guarantees(after)
        if not missing:
            return
        what = (
            "a ruling that he is not a POW"
            if step is Step.RULE
            else "this review would leave standing a ruling that he is not a POW, which"
        )
        shown = "; ".join(f"{guarantee.value}: {GUARANTEE_WORDS[guarantee]}" for guarantee in missing)
        raise GuaranteesMissing(
            f"{step.value} refused: {what} removes the presumption that {captive_id} is one (AP I Art. 45(1)) "
            f"and stands only with the guarantees of a competent tribunal (GC III Art. 5(2)); the tribunal's "
            f"record does not show {len(missing)} of them: {shown}. A ruling that he is a POW needs none",
            missing,
        )

    def after(self, event: Recorded) -> Tribunal:
        """The tribunal after one recorded step (TribunalConflict if it cannot follow)."""
        step = Step(event.kind)
        allowed_from, leads_to = TRANSITIONS[step]
        if self.stage not in allowed_from:
            raise TribunalConflict(f"{step.value} cannot follow stage {self.stage.value}; {NEEDS[step]}")
        moved = replace(self, stage=leads_to, last_step_at=event.effective_at)
        data = event.data
        if step is Step.CONVENE:
            return replace(moved, notice=bool(data.get("notice_to_captive") and data.get("notice_language")))
        if step is Step.HEAR:
            return replace(moved, hearings=(*self.hearings, Hearing.of(data)))
        if step is Step.RULE:
            outcome = TribunalOutcome(data["outcome"])
            return replace(moved, standing=_ruling(outcome, event.event_id, data))
        if step is Step.REVIEW and data["outcome"] == ReviewOutcome.REVERSED:
            was = self.standing.outcome if self.standing else TribunalOutcome.POW
            reversed_to = TribunalOutcome.NOT_POW if was is TribunalOutcome.POW else TribunalOutcome.POW
            return replace(moved, standing=_ruling(reversed_to, event.event_id, data))
        return moved


PENDING = "(the step being recorded)"  # the event id of a step not yet recorded


@dataclass(frozen=True)
class Pending:
    """A step as a request would record it, to be checked before anything is appended."""

    effective_at: datetime
    event_id: str
    kind: str
    data: dict


def _ruling(outcome: TribunalOutcome, event_id: str, data: Mapping) -> Ruling:
    # Written reasons are required in every ruling and review; sealed, they read as a marker.
    reasons = bool(data.get("written_reasons"))
    if outcome is TribunalOutcome.POW:
        return Ruling(outcome, event_id, written_reasons=reasons)
    ground = NotPowGround(data["ground"]) if data.get("ground") else NotPowGround.NOT_A_COMBATANT
    return Ruling(outcome, event_id, ground, data.get("gc_iv_nationality_test_met"), reasons)


def missing_guarantees(tribunal: Tribunal) -> tuple[Guarantee, ...]:
    """The guarantees the record does not show for the ruling that stands, where that ruling
    removes the presumption (NOT_POW, by the tribunal or by a review); () for any other (no
    ruling, or a ruling that he is a POW: one in his favour cannot harm him). What the API refuses
    a ruling or review for, and what makes the status rules set a recorded one aside."""
    if tribunal.standing is None or tribunal.standing.outcome is not TribunalOutcome.NOT_POW:
        return ()
    return tribunal.guarantees_missing()


def fold(events: Iterable[Recorded]) -> Tribunal:
    """The tribunal from a captive's tribunal events in recorded order (others are skipped)."""
    tribunal = Tribunal()
    for event in events:
        if event.kind in TRIBUNAL_EVENTS:
            tribunal = tribunal.after(event)
    return tribunal
