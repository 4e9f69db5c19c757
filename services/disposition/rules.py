"""What may lawfully be done with a captive (../shared/domain/BRIEF.md sections 3 and 4), as pure
functions: facts in, a verdict with every rule checked and the facts used out. No I/O, no clock.

A verdict is allowed only when every rule it checks is satisfied; the rules that are not are the
reasons it is blocked. Each fact used names the event it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.contracts.disposition import DispositionKind, RiskOutcome
from shared.contracts.intake import InterviewSetting, Wish
from shared.contracts.status import FactUsed, RuleApplied


@dataclass(frozen=True)
class Rule:
    rule_id: str
    article: str


IN_CUSTODY = Rule("D1", "GC III Arts. 5(1), 21")
PROTECTED_STATUS = Rule("D2", "GC III Arts. 6, 12, 109(2)")
VERIFIED_WISH = Rule("D3", "GC III Art. 7; ICRC practice: private interview")
NO_REAL_RISK = Rule("D4", "CAT Art. 3; ICCPR Arts. 6-7 (non-refoulement)")
RECEIVING_STATE_APPLIES_GC_III = Rule("D5", "GC III Art. 12(2)")
RECEIVING_STATE_ACCEPTS = Rule("D6", "state practice (Korean War, 1953)")
NO_PENDING_PROSECUTION = Rule("D7", "GC III Art. 119(5)")
SERIOUSLY_WOUNDED_OR_SICK = Rule("D8", "GC III Arts. 109-110, Annex I")
NOT_AGAINST_HIS_WILL = Rule("D9", "GC III Art. 109(3)")
NEUTRAL_AGREEMENT = Rule("D10", "GC III Arts. 109(2), 111")
HOSTILITIES_CEASED = Rule("D11", "GC III Art. 118")
NO_RETURN_TO_RISK_AGAINST_WILL = Rule("D12", "GC III Art. 118; ICRC 2020 Commentary")

RULES = (
    IN_CUSTODY,
    PROTECTED_STATUS,
    VERIFIED_WISH,
    NO_REAL_RISK,
    RECEIVING_STATE_APPLIES_GC_III,
    RECEIVING_STATE_ACCEPTS,
    NO_PENDING_PROSECUTION,
    SERIOUSLY_WOUNDED_OR_SICK,
    NOT_AGAINST_HIS_WILL,
    NEUTRAL_AGREEMENT,
    HOSTILITIES_CEASED,
    NO_RETURN_TO_RISK_AGAINST_WILL,
)

POW_STATUSES = {"POW", "PRESUMED_POW"}


@dataclass(frozen=True)
class DeclaredWish:
    wish: Wish
    third_state: str | None
    setting: InterviewSetting
    free_and_informed: bool
    event_id: str

    @property
    def verified(self) -> bool:
        """Only a private ICRC interview judged free and informed verifies a wish; a media
        interview never does (the captive is exposed and cannot speak freely)."""
        return self.setting is InterviewSetting.PRIVATE_ICRC_INTERVIEW and self.free_and_informed


@dataclass(frozen=True)
class Risk:
    outcome: RiskOutcome
    onward_state: str | None
    diplomatic_assurances: bool
    event_id: str


@dataclass(frozen=True)
class Assurance:
    willing_and_able: bool
    accepts_for_resettlement: bool
    neutral_accommodation_agreement: bool
    event_id: str


@dataclass(frozen=True)
class DispositionFacts:
    captive_id: str
    home_state: str | None = None
    registration_event_id: str | None = None
    status: str | None = None
    status_event_id: str | None = None
    in_custody: bool = True
    custody_event_id: str | None = None  # the event that ended custody, if it ended
    wish: DeclaredWish | None = None
    risks: Mapping[str, Risk] = field(default_factory=dict)
    seriously_wounded_or_sick: bool = False  # found by a mixed medical commission
    medical_event_id: str | None = None
    assurances: Mapping[str, Assurance] = field(default_factory=dict)
    partner_claims: Mapping[str, str] = field(default_factory=dict)  # state -> event id
    hostilities_ceased: bool = False
    hostilities_event_id: str | None = None
    pending_prosecution: bool = False  # no event sets it yet: the prosecution record comes later


@dataclass(frozen=True)
class Check:
    rule: Rule
    satisfied: bool
    finding: str

    def applied(self) -> RuleApplied:
        prefix = "satisfied" if self.satisfied else "BLOCKED"
        return RuleApplied(rule_id=self.rule.rule_id, article=self.rule.article, finding=f"{prefix}: {self.finding}")


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]
    facts: tuple[FactUsed, ...]

    @property
    def allowed(self) -> bool:
        return all(check.satisfied for check in self.checks)

    @property
    def reasons(self) -> list[RuleApplied]:
        return [check.applied() for check in self.checks]

    @property
    def blocked_by(self) -> list[RuleApplied]:
        return [check.applied() for check in self.checks if not check.satisfied]

    def key(self) -> tuple:
        return self.allowed, tuple((check.rule.rule_id, check.satisfied, check.finding) for check in self.checks)


# -- the checks -------------------------------------------------------------------------------------


def _custody(facts: DispositionFacts) -> Check:
    if facts.in_custody:
        return Check(IN_CUSTODY, True, "held by the detaining state")
    return Check(IN_CUSTODY, False, f"no longer in custody (event {facts.custody_event_id})")


def _status(facts: DispositionFacts) -> Check:
    if facts.status in POW_STATUSES:
        return Check(PROTECTED_STATUS, True, f"status {facts.status}")
    return Check(PROTECTED_STATUS, False, f"status {facts.status or 'not yet determined'} is not POW or presumed POW")


def _wish(facts: DispositionFacts, wanted: Wish, state: str | None = None) -> Check:
    wish = facts.wish
    what = wanted.value + (f" to {state}" if state else "")
    if wish is None:
        return Check(VERIFIED_WISH, False, f"no declared wish ({what} needed)")
    if not wish.verified:
        how = (
            "a media interview is never a verified wish"
            if wish.setting is InterviewSetting.MEDIA
            else "not verified by a private ICRC interview judged free and informed"
        )
        return Check(VERIFIED_WISH, False, f"wish {wish.wish.value}: {how}")
    if wish.wish is not wanted or (state and wish.third_state != state):
        said = wish.wish.value + (f" to {wish.third_state}" if wish.third_state else "")
        return Check(VERIFIED_WISH, False, f"his verified wish is {said}, not {what}")
    return Check(VERIFIED_WISH, True, f"verified wish {what} (event {wish.event_id})")


def risk_in(facts: DispositionFacts, state: str, seen: tuple[str, ...] = ()) -> tuple[RiskOutcome, str]:
    """The risk in `state`, counting a real risk of being handed on to another state."""
    risk = facts.risks.get(state)
    if risk is None or risk.outcome is RiskOutcome.NOT_ASSESSED:
        return RiskOutcome.NOT_ASSESSED, f"risk in {state} not assessed"
    if risk.outcome is RiskOutcome.REAL_RISK:
        cleared = " (diplomatic assurances do not clear it)" if risk.diplomatic_assurances else ""
        return RiskOutcome.REAL_RISK, f"real risk in {state}{cleared} (event {risk.event_id})"
    if risk.onward_state and risk.onward_state not in seen:
        onward, why = risk_in(facts, risk.onward_state, (*seen, state))
        if onward is RiskOutcome.REAL_RISK:
            return RiskOutcome.REAL_RISK, f"onward real risk: {state} would hand him on to {risk.onward_state}; {why}"
    return RiskOutcome.NO_REAL_RISK, f"no real risk in {state} (event {risk.event_id})"


def _no_risk(facts: DispositionFacts, state: str | None) -> Check:
    if state is None:
        return Check(NO_REAL_RISK, False, "no destination state given")
    outcome, why = risk_in(facts, state)
    return Check(NO_REAL_RISK, outcome is RiskOutcome.NO_REAL_RISK, why)


def _facts(facts: DispositionFacts, states: tuple[str | None, ...] = ()) -> tuple[FactUsed, ...]:
    used = [
        FactUsed(name="home_state", value=facts.home_state, source_event_id=facts.registration_event_id),
        FactUsed(name="status", value=facts.status, source_event_id=facts.status_event_id),
        FactUsed(name="in_custody", value=facts.in_custody, source_event_id=facts.custody_event_id),
        FactUsed(
            name="wish",
            value=facts.wish.wish.value if facts.wish else None,
            source_event_id=facts.wish.event_id if facts.wish else None,
        ),
        FactUsed(
            name="wish_third_state",
            value=facts.wish.third_state if facts.wish else None,
            source_event_id=facts.wish.event_id if facts.wish else None,
        ),
        FactUsed(
            name="wish_verified",
            value=facts.wish.verified if facts.wish else None,
            source_event_id=facts.wish.event_id if facts.wish else None,
        ),
    ]
    seen: list[str] = []
    frontier = [state for state in states if state]
    while frontier:  # each state's assessment, and those of the states it would hand him on to
        state = frontier.pop(0)
        if state in seen:
            continue
        seen.append(state)
        risk = facts.risks.get(state)
        used.append(
            FactUsed(
                name=f"risk:{state}",
                value=risk.outcome.value if risk else None,
                source_event_id=risk.event_id if risk else None,
            )
        )
        if risk and risk.onward_state:
            used.append(FactUsed(name=f"onward:{state}", value=risk.onward_state, source_event_id=risk.event_id))
            frontier.append(risk.onward_state)
    return tuple(used)


def exchange_eligibility(facts: DispositionFacts, counterpart: str) -> Verdict:
    """May he be on a prisoner exchange to `counterpart` during hostilities (Arts. 6, 109(2))?"""
    checks = (_custody(facts), _status(facts), _wish(facts, Wish.REPATRIATE), _no_risk(facts, counterpart))
    return Verdict(checks, _facts(facts, (counterpart,)))


def disposition(kind: DispositionKind, facts: DispositionFacts, destination: str | None) -> Verdict:
    """May this disposition be carried out now?"""
    custody = _custody(facts)
    if kind is DispositionKind.EXCHANGE:
        return exchange_eligibility(facts, destination or "")
    if kind is DispositionKind.ART_12_TRANSFER:
        assurance = facts.assurances.get(destination or "")
        claim = facts.partner_claims.get(destination or "")
        applies = Check(
            RECEIVING_STATE_APPLIES_GC_III,
            bool(assurance and assurance.willing_and_able),
            f"{destination} assured it is willing and able to apply GC III (event {assurance.event_id})"
            + (f"; it claims him as its national (event {claim})" if claim else "")
            if assurance and assurance.willing_and_able
            else f"no recorded assurance that {destination} is willing and able to apply GC III",
        )
        checks = (
            custody,
            _status(facts),
            _wish(facts, Wish.THIRD_STATE, destination),
            applies,
            _no_risk(facts, destination),
        )
    elif kind is DispositionKind.RESETTLEMENT:
        assurance = facts.assurances.get(destination or "")
        accepts = Check(
            RECEIVING_STATE_ACCEPTS,
            bool(assurance and assurance.accepts_for_resettlement),
            f"{destination} accepts him for resettlement"
            if assurance and assurance.accepts_for_resettlement
            else f"{destination} has not accepted him",
        )
        prosecution = Check(
            NO_PENDING_PROSECUTION,
            not facts.pending_prosecution,
            "prosecution pending" if facts.pending_prosecution else "no prosecution pending",
        )
        checks = (
            custody,
            _wish(facts, Wish.THIRD_STATE, destination),
            accepts,
            prosecution,
            _no_risk(facts, destination),
        )
    elif kind is DispositionKind.STAY_IN_DETAINING_STATE:
        checks = (custody, _wish(facts, Wish.STAY_IN_DETAINING_STATE))
    elif kind is DispositionKind.DIRECT_REPATRIATION:
        home = destination or facts.home_state
        medical = Check(
            SERIOUSLY_WOUNDED_OR_SICK,
            facts.seriously_wounded_or_sick,
            f"seriously wounded or sick, found by a mixed medical commission (event {facts.medical_event_id})"
            if facts.seriously_wounded_or_sick
            else "no mixed medical commission finding",
        )
        will = _wish(facts, Wish.REPATRIATE)
        will = Check(
            NOT_AGAINST_HIS_WILL,
            will.satisfied or facts.hostilities_ceased,
            will.finding if not facts.hostilities_ceased else "hostilities have ceased",
        )
        checks = (custody, medical, will, _no_risk(facts, home))
        return Verdict(checks, _facts(facts, (home,)))
    elif kind is DispositionKind.NEUTRAL_ACCOMMODATION:
        assurance = facts.assurances.get(destination or "")
        agreement = Check(
            NEUTRAL_AGREEMENT,
            bool(assurance and assurance.neutral_accommodation_agreement),
            f"agreement with {destination}"
            if assurance and assurance.neutral_accommodation_agreement
            else f"no accommodation agreement with {destination}",
        )
        medical = Check(
            SERIOUSLY_WOUNDED_OR_SICK,
            facts.seriously_wounded_or_sick,
            "medical criteria met" if facts.seriously_wounded_or_sick else "no medical finding",
        )
        checks = (custody, medical, agreement)
    else:  # REPATRIATION_AFTER_HOSTILITIES
        home = destination or facts.home_state
        ceased = Check(
            HOSTILITIES_CEASED,
            facts.hostilities_ceased,
            f"active hostilities ceased (event {facts.hostilities_event_id})"
            if facts.hostilities_ceased
            else "active hostilities have not ceased",
        )
        outcome, why = risk_in(facts, home) if home else (RiskOutcome.NOT_ASSESSED, "home state unknown")
        wants = _wish(facts, Wish.REPATRIATE).satisfied
        refuse = outcome is RiskOutcome.REAL_RISK and not wants
        against_risk = Check(
            NO_RETURN_TO_RISK_AGAINST_WILL,
            not refuse,
            f"{why}, and he does not wish to return" if refuse else (f"{why}; he wishes to return" if wants else why),
        )
        checks = (custody, ceased, against_risk)
        return Verdict(checks, _facts(facts, (home,)))
    return Verdict(checks, _facts(facts, (destination,)))
