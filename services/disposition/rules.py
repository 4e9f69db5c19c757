"""What may lawfully be done with a captive (../shared/domain/BRIEF.md sections 3 and 4;
docs/legal-basis.md, "Disposition"), as pure functions: the facts as they stood at one moment in
(services/disposition/facts.py), a verdict with every rule checked and the facts used out. No
I/O, no clock.

A verdict is allowed only when every rule it checks is satisfied; the rules that are not are the
reasons it is blocked. A missing fact never counts as "fine": a risk not assessed, an onward
question the assessment leaves open, an unknown home state or an unestablished party all block."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.disposition.facts import DeclaredWish, DispositionFacts, Risk
from shared.contracts.disposition import DispositionKind, RiskOutcome
from shared.contracts.intake import InterviewSetting, Wish
from shared.contracts.status import FactUsed, RuleApplied


@dataclass(frozen=True)
class Rule:
    rule_id: str
    article: str


IN_CUSTODY = Rule("D1", "GC III Arts. 5(1), 21, 120")
PROTECTED_STATUS = Rule("D2", "GC III Arts. 6, 12, 109(2)")
VERIFIED_WISH = Rule("D3", "GC III Art. 7; ICRC practice: private interview")
NO_REAL_RISK = Rule("D4", "CAT Art. 3; ICCPR Arts. 6-7 (non-refoulement)")
RECEIVING_STATE_APPLIES_GC_III = Rule("D5", "GC III Art. 12(2)")
RECEIVING_STATE_ACCEPTS = Rule("D6", "state practice (Korean War, 1953)")
NO_PENDING_PROSECUTION = Rule("D7", "GC III Arts. 115, 119(5)")
SERIOUSLY_WOUNDED_OR_SICK = Rule("D8", "GC III Arts. 109-110, Annex I")
NOT_AGAINST_HIS_WILL = Rule("D9", "GC III Art. 109(3)")
NEUTRAL_AGREEMENT = Rule("D10", "GC III Arts. 109(2), 111")
HOSTILITIES_CEASED = Rule("D11", "GC III Art. 118")
NO_RETURN_TO_RISK_AGAINST_WILL = Rule("D12", "GC III Art. 118; ICRC 2020 Commentary")
DID_NOT_INSIST_ON_RETURN = Rule("D13", "Korean Armistice Agreement 1953, Annex (NNRC terms of reference)")
COMMISSION_AGREEMENT = Rule("D14", "Korean Armistice Agreement 1953, Annex, paras. 1-4")
EXPLANATIONS_COMPLETED = Rule("D15", "Korean Armistice Agreement 1953, Annex, paras. 8, 11")

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
    DID_NOT_INSIST_ON_RETURN,
    COMMISSION_AGREEMENT,
    EXPLANATIONS_COMPLETED,
)

POW_STATUSES = {"POW", "PRESUMED_POW"}


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
    destination: str | None = None
    events_used: tuple[str, ...] = ()  # every event the facts were folded from
    at: datetime | None = None  # the moment it stands for

    @property
    def allowed(self) -> bool:
        return all(check.satisfied for check in self.checks)

    @property
    def reasons(self) -> list[RuleApplied]:
        return [check.applied() for check in self.checks]

    @property
    def blocked_by(self) -> list[RuleApplied]:
        return [check.applied() for check in self.checks if not check.satisfied]

    def blocks(self, *rules: Rule) -> bool:
        return any(not check.satisfied and check.rule in rules for check in self.checks)

    def key(self) -> tuple:
        return self.allowed, tuple((check.rule.rule_id, check.satisfied, check.finding) for check in self.checks)


# -- the checks -------------------------------------------------------------------------------------


def _custody(facts: DispositionFacts, *, commission_of: str | None = None) -> Check:
    """Held by the detaining state. After a hand-over to the neutral repatriation commission he is
    held by the commission: only that disposition's release may follow."""
    if facts.dead:
        return Check(IN_CUSTODY, False, f"he died (event {facts.custody_event_id}, Art. 120)")
    if not facts.in_custody:
        return Check(IN_CUSTODY, False, f"no longer in custody (event {facts.custody_event_id})")
    commission = facts.commission
    if commission_of is not None:
        if commission is None or commission.disposition_id != commission_of:
            return Check(IN_CUSTODY, False, "not in the custody of the neutral repatriation commission")
        return Check(IN_CUSTODY, True, f"held by the neutral repatriation commission (event {commission.event_id})")
    if commission is not None:
        return Check(
            IN_CUSTODY, False, f"in the custody of the neutral repatriation commission (event {commission.event_id})"
        )
    return Check(IN_CUSTODY, True, "held by the detaining state")


def _status(facts: DispositionFacts) -> Check:
    if facts.status in POW_STATUSES:
        return Check(PROTECTED_STATUS, True, f"status {facts.status} (event {facts.status_event_id})")
    return Check(PROTECTED_STATUS, False, f"status {facts.status or 'not yet determined'} is not POW or presumed POW")


def _unverified(wish: DeclaredWish | None) -> str:
    if wish is None:
        return ""
    how = "a media statement never verifies a wish" if wish.setting is InterviewSetting.MEDIA else "not verified"
    return f"; a statement ({wish.describe()}, event {wish.event_id}) is recorded: {how}"


def _wish(facts: DispositionFacts, wanted: Wish, state: str | None = None) -> Check:
    """The standing verified wish must be `wanted` (to `state`). Statements that verify nothing
    (media, official interviews, not free and informed) are named, never counted."""
    wish = facts.wish
    what = wanted.value + (f" to {state}" if state else "")
    if wish is None:
        return Check(VERIFIED_WISH, False, f"no verified wish ({what} needed){_unverified(facts.unverified_wish)}")
    if wish.wish is not wanted or (state and wish.third_state != state):
        return Check(
            VERIFIED_WISH, False, f"his verified wish is {wish.describe()} (event {wish.event_id}), not {what}"
        )
    later = facts.unverified_wish
    note = _unverified(later) if later and (later.declared_at or facts.at) >= (wish.declared_at or facts.at) else ""
    return Check(VERIFIED_WISH, True, f"verified wish {what} (event {wish.event_id}){note}")


def _prosecution(facts: DispositionFacts) -> Check:
    if facts.open_prosecutions:
        open_ = ", ".join(f"{pid} (event {event})" for pid, event in sorted(facts.open_prosecutions.items()))
        return Check(NO_PENDING_PROSECUTION, False, f"judicial proceedings open: {open_}")
    return Check(NO_PENDING_PROSECUTION, True, "no judicial proceedings open")


def _medical(facts: DispositionFacts) -> Check:
    if facts.seriously_wounded_or_sick:
        return Check(
            SERIOUSLY_WOUNDED_OR_SICK,
            True,
            f"seriously wounded or sick, found by a mixed medical commission (event {facts.medical_event_id})",
        )
    return Check(SERIOUSLY_WOUNDED_OR_SICK, False, "no finding of a mixed medical commission that he is seriously ill")


# -- non-refoulement ----------------------------------------------------------------------------------


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


def _no_risk(facts: DispositionFacts, destination: str | None) -> Check:
    found = non_refoulement(facts, destination)
    return Check(NO_REAL_RISK, found.clear, found.finding())


# -- the facts behind an answer ---------------------------------------------------------------------


def _facts(facts: DispositionFacts, states: tuple[str | None, ...] = ()) -> tuple[FactUsed, ...]:
    wish, statement = facts.wish, facts.unverified_wish
    used = [
        FactUsed(name="force", value=facts.force, source_event_id=facts.force_event_id),
        FactUsed(name="home_state", value=facts.home_state, source_event_id=facts.force_event_id),
        FactUsed(name="nationality", value=facts.nationality, source_event_id=facts.registration_event_id),
        FactUsed(name="status", value=facts.status, source_event_id=facts.status_event_id),
        FactUsed(name="in_custody", value=facts.in_custody, source_event_id=facts.custody_event_id),
        FactUsed(name="dead", value=facts.dead, source_event_id=facts.custody_event_id if facts.dead else None),
        FactUsed(name="verified_wish", value=wish.describe() if wish else None, source_event_id=wish and wish.event_id),
        FactUsed(
            name="unverified_statement",
            value=statement.describe() if statement else None,
            source_event_id=statement and statement.event_id,
        ),
        FactUsed(
            name="seriously_wounded_or_sick",
            value=facts.seriously_wounded_or_sick,
            source_event_id=facts.medical_event_id,
        ),
        FactUsed(
            name="hostilities_ceased",
            value=facts.hostilities.ceased,
            source_event_id=facts.hostilities.event_ids[-1] if facts.hostilities.event_ids else None,
        ),
    ]
    used += [
        FactUsed(name=f"prosecution:{pid}", value="OPEN", source_event_id=event)
        for pid, event in sorted(facts.open_prosecutions.items())
    ]
    used += [FactUsed(name="exposure", value=True, source_event_id=event) for event in facts.exposures]
    for state in dict.fromkeys(s for s in states if s):
        for checked in non_refoulement(facts, state).checked:
            risk = facts.risks.get(checked)
            used.append(
                FactUsed(
                    name=f"risk:{checked}",
                    value=None if risk is None else risk.outcome.value + (" (stale)" if risk.stale_since else ""),
                    source_event_id=risk.event_id if risk else None,
                )
            )
            if risk is not None:
                onward = None if risk.would_hand_on is None else ",".join(risk.onward_states) or "none"
                used.append(FactUsed(name=f"onward:{checked}", value=onward, source_event_id=risk.event_id))
        assurance = facts.assurances.get(state)
        if assurance is not None:
            used.append(FactUsed(name=f"assurance:{state}", value=True, source_event_id=assurance.event_id))
        if state in facts.partner_claims:
            used.append(FactUsed(name=f"claim:{state}", value=True, source_event_id=facts.partner_claims[state]))
    return tuple(used)


# -- the verdicts -----------------------------------------------------------------------------------


def exchange_eligibility(facts: DispositionFacts, counterpart: str) -> Verdict:
    """May he be on a prisoner exchange to `counterpart` during hostilities (Arts. 6, 109(2))?"""
    checks = (
        _custody(facts),
        _status(facts),
        _wish(facts, Wish.REPATRIATE),
        _no_risk(facts, counterpart),
        _prosecution(facts),
    )
    return Verdict(checks, _facts(facts, (counterpart,)), counterpart, facts.used_events, facts.at)


def _assured(facts: DispositionFacts, rule: Rule, state: str | None, flag: str, yes: str, no: str) -> Check:
    assurance = facts.assurances.get(state or "")
    if assurance is not None and getattr(assurance, flag):
        return Check(rule, True, f"{state} {yes} (event {assurance.event_id})")
    return Check(rule, False, f"{state or 'no state'} {no}")


def _repatriation(facts: DispositionFacts, destination: str | None) -> tuple[str | None, Check | None]:
    """Repatriation is to the Power on which he depends: the state of his armed force."""
    home = facts.home_state
    if home is None:
        return None, Check(
            NO_RETURN_TO_RISK_AGAINST_WILL, False, "home state unknown: the force he belongs to is not established"
        )
    if destination and destination != home:
        return None, Check(
            NO_RETURN_TO_RISK_AGAINST_WILL,
            False,
            f"repatriation is to {home}, the state he depends on, not {destination}",
        )
    return home, None


def _return_despite_risk(facts: DispositionFacts, home: str) -> Check:
    """Art. 118 and a release home from the commission: the risk must have been assessed (never
    assumed); a real risk blocks unless his verified free and informed wish is to return."""
    found = non_refoulement(facts, home)
    if found.clear:
        return Check(NO_RETURN_TO_RISK_AGAINST_WILL, True, found.finding())
    if found.unresolved:
        return Check(NO_RETURN_TO_RISK_AGAINST_WILL, False, found.finding())
    wants = _wish(facts, Wish.REPATRIATE)
    if wants.satisfied:
        return Check(NO_RETURN_TO_RISK_AGAINST_WILL, True, f"{found.finding()}; he wishes to return ({wants.finding})")
    return Check(NO_RETURN_TO_RISK_AGAINST_WILL, False, f"{found.finding()}, and he does not wish to return")


def disposition(kind: DispositionKind, facts: DispositionFacts, destination: str | None) -> Verdict:
    """May this disposition be proposed, approved or carried out now? (For the neutral
    repatriation commission: may he be handed to it; his release is `commission_release`.)"""
    custody = _custody(facts)
    if kind is DispositionKind.EXCHANGE:
        return exchange_eligibility(facts, destination or "")
    if kind is DispositionKind.ART_12_TRANSFER:
        claim = facts.partner_claims.get(destination or "")
        applies = _assured(
            facts,
            RECEIVING_STATE_APPLIES_GC_III,
            destination,
            "willing_and_able",
            "assured it is willing and able to apply GC III"
            + (f"; it claims him as its national (event {claim})" if claim else ""),
            "has given no recorded assurance that it is willing and able to apply GC III",
        )
        checks = (
            custody,
            _status(facts),
            _wish(facts, Wish.THIRD_STATE, destination),
            applies,
            _no_risk(facts, destination),
            _prosecution(facts),
        )
    elif kind is DispositionKind.RESETTLEMENT:
        accepts = _assured(
            facts,
            RECEIVING_STATE_ACCEPTS,
            destination,
            "accepts_for_resettlement",
            "accepts him for resettlement",
            "has not accepted him",
        )
        checks = (
            custody,
            _wish(facts, Wish.THIRD_STATE, destination),
            accepts,
            _prosecution(facts),
            _no_risk(facts, destination),
        )
    elif kind is DispositionKind.STAY_IN_DETAINING_STATE:
        checks = (custody, _wish(facts, Wish.STAY_IN_DETAINING_STATE))
    elif kind is DispositionKind.DIRECT_REPATRIATION:
        home, wrong = _repatriation(facts, destination)
        will = _wish(facts, Wish.REPATRIATE)
        ceased = facts.hostilities
        against_will = Check(
            NOT_AGAINST_HIS_WILL,
            will.satisfied or ceased.ceased,
            f"{will.finding}" if not ceased.ceased else ceased.finding,
        )
        risk = wrong or Check(NO_REAL_RISK, *_clear(non_refoulement(facts, home)))
        checks = (custody, _medical(facts), against_will, risk, _prosecution(facts))
        return Verdict(checks, _facts(facts, (home,)), home, facts.used_events, facts.at)
    elif kind is DispositionKind.NEUTRAL_ACCOMMODATION:
        agreement = _assured(
            facts,
            NEUTRAL_AGREEMENT,
            destination,
            "neutral_accommodation_agreement",
            "has agreed to accommodate him",
            "has no accommodation agreement with the detaining state",
        )
        checks = (custody, _medical(facts), agreement, _no_risk(facts, destination), _prosecution(facts))
    elif kind is DispositionKind.NEUTRAL_REPATRIATION_COMMISSION:
        agreement = _assured(
            facts,
            COMMISSION_AGREEMENT,
            destination,
            "repatriation_commission_agreement",
            "hosts a neutral repatriation commission that will take custody of him",
            "hosts no neutral repatriation commission by agreement",
        )
        checks = (
            custody,
            _status(facts),
            _did_not_insist(facts),
            agreement,
            _no_risk(facts, destination),
            _prosecution(facts),
        )
    else:  # REPATRIATION_AFTER_HOSTILITIES
        home, wrong = _repatriation(facts, destination)
        ceased = Check(HOSTILITIES_CEASED, facts.hostilities.ceased, facts.hostilities.finding)
        checks = (custody, ceased, wrong or _return_despite_risk(facts, home), _prosecution(facts))
        return Verdict(checks, _facts(facts, (home,)), home, facts.used_events, facts.at)
    return Verdict(checks, _facts(facts, (destination,)), destination, facts.used_events, facts.at)


def _clear(found) -> tuple[bool, str]:
    return found.clear, found.finding()


def _did_not_insist(facts: DispositionFacts) -> Check:
    wish = facts.wish
    if wish is None:
        return Check(DID_NOT_INSIST_ON_RETURN, False, "no verified wish: whether he insists on return is not known")
    if wish.wish is Wish.REPATRIATE:
        return Check(DID_NOT_INSIST_ON_RETURN, False, f"his verified wish is to return (event {wish.event_id})")
    return Check(
        DID_NOT_INSIST_ON_RETURN, True, f"he does not insist on return: {wish.describe()} (event {wish.event_id})"
    )


def commission_release(facts: DispositionFacts, disposition_id: str) -> Verdict:
    """May he be released as a civilian from the neutral repatriation commission's custody, now
    that its explanations are over, to the country his verified wish names at this moment?"""
    commission = facts.commission
    custody = _custody(facts, commission_of=disposition_id)
    days = commission.explanation_days if commission else 0
    if commission is not None and facts.at is not None and facts.at >= commission.explanations_end:
        over = Check(
            EXPLANATIONS_COMPLETED,
            True,
            f"the {days} days of explanations ended on {commission.explanations_end.date().isoformat()}",
        )
    elif commission is not None:
        over = Check(
            EXPLANATIONS_COMPLETED,
            False,
            f"the {days} days of explanations run until {commission.explanations_end.isoformat()}",
        )
    else:
        over = Check(EXPLANATIONS_COMPLETED, False, "he was not handed to the commission")
    wish = facts.wish
    destination: str | None = None
    if wish is None or wish.wish is Wish.UNDECIDED:
        choice = [Check(VERIFIED_WISH, False, "he has not chosen, by a verified wish, where to go")]
    elif wish.wish is Wish.REPATRIATE:
        destination, wrong = _repatriation(facts, None)
        choice = [wrong or _return_despite_risk(facts, destination)]
    elif wish.wish is Wish.THIRD_STATE:
        destination = wish.third_state
        choice = [
            Check(VERIFIED_WISH, True, f"verified wish {wish.describe()} (event {wish.event_id})"),
            _assured(
                facts,
                RECEIVING_STATE_ACCEPTS,
                destination,
                "accepts_for_resettlement",
                "accepts him",
                "has not accepted him",
            ),
            _no_risk(facts, destination),
        ]
    else:  # he stays, released as a civilian in the detaining state: no removal
        choice = [Check(VERIFIED_WISH, True, f"verified wish {wish.describe()} (event {wish.event_id})")]
    checks = (custody, over, *choice, _prosecution(facts))
    return Verdict(checks, _facts(facts, (destination,)), destination, facts.used_events, facts.at)
