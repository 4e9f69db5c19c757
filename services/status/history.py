"""Everything recorded that bears on one captive's status, and what it amounted to at any moment
(pure; no I/O). Facts take effect at their event's `time`, whenever they were recorded, so the
same events in any arrival order give the same timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.status import tribunal
from services.status.conflict import conflict_of
from services.status.rulebook import FIRST_RULEBOOK, CaptiveFacts, Decision, decide
from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import DEFAULT_CONFLICT, ConflictFactKind, FindingKind


@dataclass(frozen=True)
class Dated:
    """One recorded fact: when it takes effect, its event, and what it says."""

    effective_at: datetime
    event_id: str
    kind: str
    data: dict
    order: int = 0  # the position in its stream: at the same moment, the later recorded comes after

    def key(self) -> tuple:
        return self.effective_at, self.order, self.event_id


@dataclass
class CaptiveHistory:
    captive_id: str
    captured_at: datetime
    nationality: str | None
    claimed_affiliation: ClaimedAffiliation
    registration_event_id: str
    legal: list[Dated] = field(default_factory=list)  # findings and tribunal events of this captive
    conflict: list[Dated] = field(default_factory=list)  # conflict-level facts (all)
    rulebooks: list[Dated] = field(default_factory=list)  # adoptions (data: {"version": ...})
    # Which armed force he belongs to (data: force, force_state, integrated_in_forces_of), each
    # from its time until the next: the registration's (from the capture), then any recorded later.
    memberships: list[Dated] = field(default_factory=list)
    # Every captive's status is decided in the conflict a deployment follows (docs/legal-basis.md).
    conflict_id: str = DEFAULT_CONFLICT

    def membership_states(self) -> set[str]:
        """Every state his recorded memberships name: whose acknowledgement bears on him."""
        return {
            state
            for membership in self.memberships
            for state in (membership.data.get("force_state"), membership.data.get("integrated_in_forces_of"))
            if state
        }

    def relevant_conflict(self) -> list[Dated]:
        """The facts of his conflict that the rules read: the conflict being international, and
        the acknowledgement of a state whose forces he belongs to or is integrated in (never of
        his nationality; the state of hostilities does not bear on status)."""
        states = self.membership_states()
        return [
            fact
            for fact in self.conflict
            if conflict_of(fact.data) == self.conflict_id
            and (
                fact.kind == ConflictFactKind.CONFLICT_INTERNATIONAL
                or (fact.kind == ConflictFactKind.STATE_ACKNOWLEDGED_AS_PARTY and fact.data.get("state") in states)
            )
        ]

    def change_points(self) -> list[datetime]:
        """The moments at which the decision may change: capture, and every later fact's effect."""
        later = [
            fact.effective_at for fact in (*self.legal, *self.relevant_conflict(), *self.rulebooks, *self.memberships)
        ]
        return sorted({self.captured_at, *(moment for moment in later if moment > self.captured_at)})

    def rulebook_at(self, moment: datetime) -> str:
        adopted = [fact for fact in self.rulebooks if fact.effective_at <= moment]
        return (
            max(adopted, key=lambda fact: (fact.effective_at, fact.event_id)).data["version"]
            if adopted
            else FIRST_RULEBOOK
        )

    def facts_at(self, moment: datetime) -> CaptiveFacts:
        def in_force(facts):
            return sorted((fact for fact in facts if fact.effective_at <= moment), key=Dated.key)

        values: dict = {}
        memberships = in_force(self.memberships)
        force_state = integrated_in = None
        if memberships:  # the latest in force replaces every earlier one
            membership = memberships[-1]
            force_state = membership.data.get("force_state")
            integrated_in = membership.data.get("integrated_in_forces_of")
            values.update(
                force=membership.data["force"],
                force_state=force_state,
                integrated_in_forces_of=integrated_in,
                membership_event_id=membership.event_id,
            )
        # The earliest fact of each kind is the one that made it so (the beginning of the conflict,
        # the first acknowledgement); later ones only confirm it.
        for fact in reversed(in_force(self.relevant_conflict())):
            if fact.kind == ConflictFactKind.CONFLICT_INTERNATIONAL:
                values.update(conflict_international=True, conflict_international_event_id=fact.event_id)
                continue
            state = fact.data.get("state")
            if force_state and state == force_state:
                values.update(force_state_party=True, force_state_party_event_id=fact.event_id)
            if integrated_in and state == integrated_in:
                values.update(integrated_in_party=True, integrated_in_party_event_id=fact.event_id)
        legal = in_force(self.legal)
        for fact in legal:
            self._apply_finding(values, fact)
        folded = tribunal.fold(legal)
        standing = folded.standing
        if standing is not None:
            values.update(
                tribunal_outcome=standing.outcome,
                tribunal_event_id=standing.event_id,
                tribunal_ground=standing.ground,
                gc_iv_nationality_test_met=standing.gc_iv_nationality_test_met,
                # A ruling that he is not a POW without the tribunal's guarantees does not override
                # the presumption (BRIEF s.2 r.8): the rules read what is missing and set it aside.
                tribunal_guarantees_missing=tuple(g.value for g in tribunal.missing_guarantees(folded)),
            )
        return CaptiveFacts(
            captive_id=self.captive_id,
            at=moment,
            captured_at=self.captured_at,
            nationality=self.nationality,
            claimed_affiliation=self.claimed_affiliation,
            registration_event_id=self.registration_event_id,
            conflict=self.conflict_id,
            **values,
        )

    @staticmethod
    def _apply_finding(values: dict, fact: Dated) -> None:
        if fact.kind != "LegalFindingRecorded":
            return
        finding = FindingKind(fact.data["finding"])
        if finding is FindingKind.ESPIONAGE:
            values["espionage_event_id"] = fact.event_id
        elif finding is FindingKind.FAILURE_TO_DISTINGUISH:
            values["failure_to_distinguish_event_id"] = fact.event_id
        elif finding is FindingKind.OTHER_CATEGORY:
            values.update(other_category=fact.data["category"], other_category_event_id=fact.event_id)
        else:
            values["mercenary_event_id"] = fact.event_id

    def timeline(self) -> list[tuple[datetime, Decision]]:
        """The decision at each change point, consecutive equal decisions merged."""
        decisions: list[tuple[datetime, Decision]] = []
        for moment in self.change_points():
            decision = decide(self.facts_at(moment), self.rulebook_at(moment))
            if not decisions or decisions[-1][1].key() != decision.key():
                decisions.append((moment, decision))
        return decisions
