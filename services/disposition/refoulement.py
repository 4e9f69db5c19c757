"""Non-refoulement (CAT Art. 3; ICCPR Arts. 6-7; BRIEF section 3), as a pure function: what stands
between him and a destination, checking every state he could be sent on to from there. Fails
closed: "not assessed", a stale assessment, an onward question left open and a "no real risk"
resting on assurances all block, as a real risk does."""

from __future__ import annotations

from dataclasses import dataclass

from services.disposition.facts import DispositionFacts, Risk
from shared.contracts.disposition import RiskOutcome


@dataclass(frozen=True)
class Refoulement:
    """What stands between him and `destination`: the states checked (the destination and every
    state he could be sent on to from there) and each problem found."""

    destination: str | None
    checked: tuple[str, ...]
    unresolved: tuple[str, ...]  # not assessed, stale, or an onward question left open
    real_risks: tuple[str, ...]

    @property
    def clear(self) -> bool:
        return self.destination is not None and not self.unresolved and not self.real_risks

    def finding(self) -> str:
        if self.destination is None:
            return "no destination state known"
        if self.clear:
            return "no real risk in " + ", ".join(self.checked)
        return "; ".join((*self.real_risks, *self.unresolved))


def non_refoulement(facts: DispositionFacts, destination: str | None) -> Refoulement:
    """Fails closed: for the destination and every state it would hand him on to, "not assessed"
    blocks exactly as "real risk" does, and so does an assessment that leaves the onward question
    open, one made stale by a later exposure, or a "no real risk" that rests on assurances."""
    if destination is None:
        return Refoulement(None, (), ("no destination state known",), ())
    checked: list[str] = []
    unresolved: list[str] = []
    real: list[str] = []
    frontier: list[tuple[str, tuple[str, ...]]] = [(destination, ())]
    while frontier:
        state, path = frontier.pop(0)
        if state in checked:
            continue
        checked.append(state)
        via = f" (he could be sent on there from {' via '.join(path)})" if path else ""
        risk: Risk | None = facts.risks.get(state)
        if risk is None or risk.outcome is RiskOutcome.NOT_ASSESSED:
            unresolved.append(f"risk in {state}{via} not assessed")
            continue
        if risk.stale_since:
            unresolved.append(
                f"the assessment of {state} (event {risk.event_id}) predates event {risk.stale_since}, which "
                "raised the risk: it must be assessed again"
            )
            continue
        if risk.outcome is RiskOutcome.REAL_RISK:
            cleared = " (diplomatic assurances do not clear it)" if risk.diplomatic_assurances else ""
            real.append(f"real risk in {state}{via}{cleared} (event {risk.event_id})")
            continue
        if risk.relies_on_assurances:
            real.append(
                f"'no real risk' in {state} rests on diplomatic assurances (event {risk.event_id}), "
                "which never clear a risk"
            )
            continue
        if risk.would_hand_on is None or (risk.would_hand_on and not risk.onward_states):
            unresolved.append(
                f"the assessment of {state} (event {risk.event_id}) does not say whether {state} would hand him on, "
                "or to whom: the onward question is open"
            )
            continue
        for onward in risk.onward_states:
            frontier.append((onward, (*path, state)))
    return Refoulement(destination, tuple(checked), tuple(unresolved), tuple(real))
