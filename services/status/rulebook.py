"""The status rulebooks (../shared/domain/BRIEF.md section 2) as pure functions: the facts as they
stood at one moment in, a decision with its trace out. No I/O and no clock: the moment decided
for is itself a fact (`at`), taken from events.

A decision's trace lists every fact the rules read, with the event each came from, so the
decision can be reproduced from its own trace under its own rulebook version (`reproduce`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import (
    DEFAULT_CONFLICT,
    FactUsed,
    LegalStatus,
    NotPowGround,
    RuleApplied,
    TribunalOutcome,
)


@dataclass(frozen=True)
class Rule:
    rule_id: str
    article: str
    summary: str


R1 = Rule("R1", "GC III Art. 5(1)", "protection starts on falling into enemy hands and lasts until final release")
R2 = Rule("R2", "GC I-IV Common Art. 2", "the conflict between the parties must be international")
R3 = Rule("R3", "GC III Art. 4A(1); AP I Art. 43", "a member of the armed forces of a party is a POW")
R4 = Rule(
    "R4",
    "GC III Art. 4A(2)-(6), 4B",
    "the other categories of persons entitled to POW status, as a tribunal finds them",
)
R5 = Rule(
    "R5",
    "AP I Art. 47",
    "a mercenary needs all six criteria, found by a tribunal; a state's own soldiers on official duty never are",
)
R6 = Rule(
    "R6",
    "AP I Arts. 44(3)-(4), 45(1)-(2), 46",
    "ruled by a tribunal: failing to distinguish forfeits POW status, not equivalent protection; a spy has no "
    "right to POW status; a legal officer's finding is only evidence",
)
R7 = Rule("R7", "AP I Art. 45(1); GC III Art. 5(2)", "in doubt, a captive is presumed a POW until a tribunal decides")
R8 = Rule(
    "R8",
    "GC III Art. 5(2)",
    "a competent tribunal's ruling overrides the presumption; one that he is not a POW only with the tribunal's "
    "guarantees (notice, hearing, interpreter, evidence, written reasons)",
)
R9 = Rule(
    "R9",
    "GC IV Art. 4; AP I Art. 75",
    "not a POW: civilian protection if the nationality test is met, otherwise at least the fundamental guarantees",
)
R10 = Rule("R10", "GC III Art. 7", "a captive cannot renounce POW rights: his wishes are not a fact these rules read")

RULES = (R1, R2, R3, R4, R5, R6, R7, R8, R9, R10)


@dataclass(frozen=True)
class CaptiveFacts:
    """What the rules may read about one captive, as it stood at `at`, each with its source event."""

    captive_id: str
    at: datetime
    captured_at: datetime
    nationality: str | None
    claimed_affiliation: ClaimedAffiliation
    registration_event_id: str
    conflict: str = DEFAULT_CONFLICT  # the conflict whose facts are read
    conflict_international: bool | None = None
    conflict_international_event_id: str | None = None
    # Membership of armed forces (GC III Art. 4A(1)), from the registration or a later record;
    # None: no membership recorded. Nationality is kept for the record and decides nothing.
    force: str | None = None
    force_state: str | None = None  # whose armed forces these are
    integrated_in_forces_of: str | None = None  # the party whose forces he is embedded in
    membership_event_id: str | None = None
    force_state_party: bool | None = None  # None: no event acknowledges the force's state as a party
    force_state_party_event_id: str | None = None
    integrated_in_party: bool | None = None  # None: no event acknowledges that state as a party
    integrated_in_party_event_id: str | None = None
    # A legal officer's findings: evidence for the tribunal, never a ruling (AP I Art. 45(1)-(2)).
    espionage_event_id: str | None = None
    failure_to_distinguish_event_id: str | None = None
    other_category: str | None = None
    other_category_event_id: str | None = None
    mercenary_event_id: str | None = None
    # The ruling that stands (the tribunal's, or what a review reversed it to).
    tribunal_outcome: TribunalOutcome | None = None
    tribunal_event_id: str | None = None
    tribunal_ground: NotPowGround | None = None
    gc_iv_nationality_test_met: bool | None = None
    # The guarantees of GC III Art. 5(2) that the record of a standing ruling that he is not a POW
    # does not show (services/status/tribunal.py Guarantee values); such a ruling is set aside (R8).
    # Empty for any other ruling, and in decisions recorded before it was read.
    tribunal_guarantees_missing: tuple[str, ...] = ()

    def trace(self) -> list[FactUsed]:
        """The facts as the trace records them: every field, with the event it came from."""
        registration = self.registration_event_id
        source = {
            "at": None,
            "captured_at": registration,
            "nationality": registration,
            "claimed_affiliation": registration,
            "conflict": None,
            "conflict_international": self.conflict_international_event_id,
            "force": self.membership_event_id,
            "force_state": self.membership_event_id,
            "integrated_in_forces_of": self.membership_event_id,
            "force_state_party": self.force_state_party_event_id,
            "integrated_in_party": self.integrated_in_party_event_id,
            "espionage": self.espionage_event_id,
            "failure_to_distinguish": self.failure_to_distinguish_event_id,
            "other_category": self.other_category_event_id,
            "mercenary": self.mercenary_event_id,
            "tribunal_outcome": self.tribunal_event_id,
            "tribunal_ground": self.tribunal_event_id,
            "gc_iv_nationality_test_met": self.tribunal_event_id,
            "tribunal_guarantees_missing": self.tribunal_event_id,
        }
        values = {
            "at": self.at.isoformat(),
            "captured_at": self.captured_at.isoformat(),
            "nationality": self.nationality,
            "claimed_affiliation": self.claimed_affiliation.value,
            "conflict": self.conflict,
            "conflict_international": self.conflict_international,
            "force": self.force,
            "force_state": self.force_state,
            "integrated_in_forces_of": self.integrated_in_forces_of,
            "force_state_party": self.force_state_party,
            "integrated_in_party": self.integrated_in_party,
            "espionage": self.espionage_event_id is not None,
            "failure_to_distinguish": self.failure_to_distinguish_event_id is not None,
            "other_category": self.other_category,
            "mercenary": self.mercenary_event_id is not None,
            "tribunal_outcome": self.tribunal_outcome.value if self.tribunal_outcome else None,
            "tribunal_ground": self.tribunal_ground.value if self.tribunal_ground else None,
            "gc_iv_nationality_test_met": self.gc_iv_nationality_test_met,
            "tribunal_guarantees_missing": ", ".join(self.tribunal_guarantees_missing) or None,
        }
        return [FactUsed(name=name, value=values[name], source_event_id=source[name]) for name in values]

    @classmethod
    def from_trace(cls, captive_id: str, facts: list[FactUsed]) -> CaptiveFacts:
        """The inverse of `trace`: the facts a recorded decision was made from."""
        by_name = {fact.name: fact for fact in facts}

        def value(name, default=None):
            return by_name[name].value if name in by_name else default

        def source(name):
            return by_name[name].source_event_id if name in by_name else None

        def flagged(name):  # a finding that is present carries its event id
            return source(name) if value(name) else None

        return cls(
            captive_id=captive_id,
            at=datetime.fromisoformat(value("at")),
            captured_at=datetime.fromisoformat(value("captured_at")),
            nationality=value("nationality"),
            claimed_affiliation=ClaimedAffiliation(value("claimed_affiliation")),
            registration_event_id=source("claimed_affiliation"),
            conflict=value("conflict", DEFAULT_CONFLICT),
            conflict_international=value("conflict_international"),
            conflict_international_event_id=source("conflict_international"),
            force=value("force"),
            force_state=value("force_state"),
            integrated_in_forces_of=value("integrated_in_forces_of"),
            membership_event_id=source("force"),
            force_state_party=value("force_state_party"),
            force_state_party_event_id=source("force_state_party"),
            integrated_in_party=value("integrated_in_party"),
            integrated_in_party_event_id=source("integrated_in_party"),
            espionage_event_id=flagged("espionage"),
            failure_to_distinguish_event_id=flagged("failure_to_distinguish"),
            other_category=value("other_category"),
            other_category_event_id=source("other_category"),
            mercenary_event_id=flagged("mercenary"),
            tribunal_outcome=TribunalOutcome(value("tribunal_outcome")) if value("tribunal_outcome") else None,
            tribunal_event_id=source("tribunal_outcome"),
            tribunal_ground=NotPowGround(value("tribunal_ground")) if value("tribunal_ground") else None,
            gc_iv_nationality_test_met=value("gc_iv_nationality_test_met"),
            tribunal_guarantees_missing=tuple(value("tribunal_guarantees_missing").split(", "))
            if value("tribunal_guarantees_missing")
            else (),
        )


@dataclass(frozen=True)
class Decision:
    status: LegalStatus
    rules: tuple[RuleApplied, ...]
    facts: tuple[FactUsed, ...]
    rulebook_version: str

    def key(self) -> tuple:
        """What makes two decisions the same: the answer and its reasons (not the moment)."""
        return self.status, self.rulebook_version, tuple((r.rule_id, r.finding) for r in self.rules)


def _applied(rule: Rule, finding: str) -> RuleApplied:
    return RuleApplied(rule_id=rule.rule_id, article=rule.article, finding=finding)


class RulebookV1:
    version = "v1"

    def decide(self, facts: CaptiveFacts) -> Decision:
        fired = [_applied(R1, f"protected since capture on {facts.captured_at.date().isoformat()}")]

        def done(status: LegalStatus) -> Decision:
            return Decision(status, tuple(fired), tuple(facts.trace()), self.version)

        if facts.tribunal_outcome is not None:
            ruled = self.ruling(facts, fired)
            if ruled is not None:
                return done(ruled)

        party = facts.force_state_party or facts.integrated_in_party
        international = facts.conflict_international or party
        if facts.conflict_international is False and not party:
            fired.append(
                _applied(
                    R2,
                    "the conflict is recorded as not international: no POW status; "
                    "Common Art. 3 and the fundamental guarantees apply",
                )
            )
            return done(LegalStatus.AP_I_ART_75)
        if international:
            fired.append(_applied(R2, "an international armed conflict" + self.parties_said(facts)))

        sent_by_a_state = self.sent_by_a_state(facts)
        if sent_by_a_state:
            finding = "not a mercenary: sent by a state on official duty as a member of its armed forces"
            if facts.mercenary_event_id:
                finding += f"; the finding of mercenarism (event {facts.mercenary_event_id}) cannot stand"
            fired.append(_applied(R5, finding + " (AP I Art. 47(2)(e)-(f))"))
        fired.extend(self.evidence_pending(facts, sent_by_a_state))

        if international and self.member_of_a_party(facts):
            fired.append(_applied(R3, self.membership_finding(facts)))
            return done(LegalStatus.POW)

        fired.append(_applied(R7, "presumed POW until a competent tribunal decides: " + "; ".join(self.doubts(facts))))
        return done(LegalStatus.PRESUMED_POW)

    def ruling(self, facts: CaptiveFacts, fired: list[RuleApplied]) -> LegalStatus | None:
        """The status the standing ruling gives (R8), or None where the law sets it aside."""
        outcome = facts.tribunal_outcome
        ground = facts.tribunal_ground or NotPowGround.NOT_A_COMBATANT
        said = f"the competent tribunal ruled {outcome.value}"
        if outcome is TribunalOutcome.NOT_POW:
            said += f" on the ground {ground.value}"
        if outcome is TribunalOutcome.NOT_POW and facts.tribunal_guarantees_missing:
            fired.append(
                _applied(
                    R8,
                    f"{said} (event {facts.tribunal_event_id}), but its record does not show the tribunal's "
                    f"guarantees of {', '.join(facts.tribunal_guarantees_missing)}: a ruling reached without them "
                    "does not override the presumption: the other rules decide, as if no ruling had been made",
                )
            )
            return None
        fired.append(_applied(R8, f"{said} (event {facts.tribunal_event_id})"))
        if outcome is TribunalOutcome.POW:
            return LegalStatus.POW
        if ground is NotPowGround.FAILURE_TO_DISTINGUISH:
            fired.append(
                _applied(
                    R6,
                    "failed to distinguish himself from the civilian population (AP I Art. 44(3)): POW status "
                    "forfeited, protections equivalent in all respects to a POW's kept (Art. 44(4))",
                )
            )
            return LegalStatus.POW_EQUIVALENT
        if ground is NotPowGround.MERCENARY and self.sent_by_a_state(facts):
            fired.append(
                _applied(
                    R5,
                    "the ruling rests on mercenarism, but he is recorded as a member of a state's armed forces "
                    "sent on official duty, who is never a mercenary (AP I Art. 47(2)(e)-(f)): the ruling "
                    "cannot remove his status",
                )
            )
            return None
        if ground is NotPowGround.ESPIONAGE:
            fired.append(
                _applied(
                    R6,
                    "a spy caught in the act, with no exception of AP I Art. 46(2)-(4) found by the tribunal: "
                    "no right to POW status (Art. 46(1))",
                )
            )
        elif ground is NotPowGround.MERCENARY:
            fired.append(_applied(R5, "a mercenary on all six criteria of AP I Art. 47(2): no right to POW status"))
        if facts.gc_iv_nationality_test_met:
            fired.append(_applied(R9, "not a POW; meets the GC IV nationality test: a protected civilian"))
            return LegalStatus.CIVILIAN_GC_IV
        fired.append(_applied(R9, "not a POW and not a GC IV protected person: AP I Art. 75 guarantees"))
        return LegalStatus.AP_I_ART_75

    @staticmethod
    def evidence_pending(facts: CaptiveFacts, sent_by_a_state: bool) -> list[RuleApplied]:
        """A legal officer's findings, noted as evidence before the tribunal (AP I Art. 45(1)-(2)):
        none of them removes the presumption or decides a status by itself."""
        pending = "is evidence for the Art. 5 tribunal, not a ruling: until it rules, the presumption holds"
        notes = []
        if facts.espionage_event_id:
            notes.append(
                _applied(R6, f"a finding of spying (AP I Art. 46; event {facts.espionage_event_id}) {pending}")
            )
        if facts.failure_to_distinguish_event_id:
            notes.append(
                _applied(
                    R6,
                    "a finding of failure to distinguish himself (AP I Art. 44(3); "
                    f"event {facts.failure_to_distinguish_event_id}) {pending}",
                )
            )
        if facts.mercenary_event_id and not sent_by_a_state:
            notes.append(
                _applied(R5, f"a finding of mercenarism (AP I Art. 47; event {facts.mercenary_event_id}) {pending}")
            )
        if facts.other_category:
            notes.append(
                _applied(
                    R4,
                    f"a finding that he falls under GC III Art. {facts.other_category} "
                    f"(event {facts.other_category_event_id}) is evidence for the Art. 5 tribunal, "
                    "whose ruling decides",
                )
            )
        return notes

    def sent_by_a_state(self, facts: CaptiveFacts) -> bool:
        """A member of a state's armed forces (AP I Art. 47(2)(e)-(f)): recorded membership of the
        forces of a state, or integration in a state's forces. A claimed affiliation is not enough."""
        return facts.force is not None and (facts.force_state is not None or facts.integrated_in_forces_of is not None)

    @staticmethod
    def parties_said(facts: CaptiveFacts) -> str:
        if facts.force_state_party:
            return f" ({facts.force_state}, the state of his force, is a party to it)"
        return ""

    def member_of_a_party(self, facts: CaptiveFacts) -> bool:
        """v1: a member of the armed forces of a state acknowledged as a party at the date."""
        return facts.force is not None and facts.force_state is not None and bool(facts.force_state_party)

    def membership_finding(self, facts: CaptiveFacts) -> str:
        return (
            f"member of the armed forces of a party to an international armed conflict: {facts.force} "
            f"({facts.force_state}; membership event {facts.membership_event_id}), {facts.force_state} "
            f"acknowledged as a party (event {facts.force_state_party_event_id})"
        )

    def membership_doubts(self, facts: CaptiveFacts) -> list[str]:
        if facts.force is None:
            return [
                "force not established: no membership of a named armed force is recorded "
                f"(the claimed affiliation {facts.claimed_affiliation.value} is not membership)"
            ]
        if facts.force_state is None:
            return [f"the state whose forces {facts.force} are is not established"]
        if not facts.force_state_party:
            return [f"{facts.force_state}, the state of {facts.force}, not acknowledged as a party to the conflict"]
        return []

    def doubts(self, facts: CaptiveFacts) -> list[str]:
        doubts = self.membership_doubts(facts)
        if not (facts.conflict_international or facts.force_state_party or facts.integrated_in_party):
            doubts.append("no international armed conflict recorded")
        if self.evidence_pending(facts, self.sent_by_a_state(facts)):
            doubts.append("a legal officer's findings await the tribunal")
        return doubts or ["facts missing"]


class RulebookV2(RulebookV1):
    """v2 reads GC III Art. 4A(1) as the 2020 ICRC Commentary does: a soldier integrated in the
    armed forces of a party is a member of that party's forces, whether or not his own state has
    been acknowledged as a party. Everything else is v1."""

    version = "v2"

    def integrated_in_a_party(self, facts: CaptiveFacts) -> bool:
        return facts.force is not None and facts.integrated_in_forces_of is not None and bool(facts.integrated_in_party)

    def member_of_a_party(self, facts: CaptiveFacts) -> bool:
        return super().member_of_a_party(facts) or self.integrated_in_a_party(facts)

    def parties_said(self, facts: CaptiveFacts) -> str:
        if facts.force_state_party or not facts.integrated_in_party:
            return super().parties_said(facts)
        return f" ({facts.integrated_in_forces_of}, in whose forces he is integrated, is a party to it)"

    def membership_finding(self, facts: CaptiveFacts) -> str:
        if super().member_of_a_party(facts):
            return super().membership_finding(facts)
        return (
            f"integrated in the armed forces of a party to an international armed conflict: {facts.force} "
            f"embedded in the forces of {facts.integrated_in_forces_of} (membership event "
            f"{facts.membership_event_id}), {facts.integrated_in_forces_of} acknowledged as a party "
            f"(event {facts.integrated_in_party_event_id})"
        )

    def membership_doubts(self, facts: CaptiveFacts) -> list[str]:
        doubts = super().membership_doubts(facts)
        if facts.force is None or self.integrated_in_a_party(facts):
            return doubts
        if facts.integrated_in_forces_of is not None:
            doubts.append(
                f"{facts.integrated_in_forces_of}, in whose forces he is integrated, not acknowledged as a party"
            )
        return doubts


RULEBOOKS = {book.version: book for book in (RulebookV1(), RulebookV2())}
FIRST_RULEBOOK = "v1"


def decide(facts: CaptiveFacts, version: str = FIRST_RULEBOOK) -> Decision:
    return RULEBOOKS[version].decide(facts)


FACT_NAMES = tuple(field.name for field in fields(CaptiveFacts))
