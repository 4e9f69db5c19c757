"""What may lawfully be done with a captive (../shared/domain/BRIEF.md sections 3 and 4;
docs/legal-basis.md, "Disposition"), as pure functions: the facts as they stood at one moment in
(services/disposition/facts.py), a verdict with every rule checked and the facts used out. No
I/O, no clock.

A verdict is allowed only when every rule it checks is satisfied; the rules that are not are the
reasons it is blocked. A missing fact never counts as "fine": a risk not assessed, an onward
question the assessment leaves open, an unknown home state or an unestablished party all block."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.disposition.facts import DeclaredWish, DispositionFacts
from services.disposition.refoulement import non_refoulement
from services.disposition.trace import facts_behind
from shared.contracts.disposition import DispositionKind
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
RECEIVING_STATE_APPLIES_GC_III = Rule("D5", "GC III Art. 12(2)-(3)")
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
FIT_TO_TRAVEL = Rule("D16", "GC III Arts. 46-47, 109(1), 119(1)")
WISH_CONFIRMED = Rule("D17", "GC III Art. 7; ICRC practice: a private interview shortly before the hand-over")
REFERRAL_COMPLETED = Rule("D18", "Korean Armistice Agreement 1953, Annex, para. 11")

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
    FIT_TO_TRAVEL,
    WISH_CONFIRMED,
    REFERRAL_COMPLETED,
)

# Protected as prisoners of war: a POW, a man presumed one until a tribunal decides (AP I Art.
# 45(1)), and one who forfeited the status for failing to distinguish himself but keeps
# protections "equivalent in all respects" (AP I Art. 44(4)): every row open to a POW is open to him.
POW_STATUSES = {"POW", "PRESUMED_POW", "POW_EQUIVALENT"}

# How long before a hand-over the verified wish it rests on must have been heard again in a private
# interview, unless the deployment sets another period (DISPOSITION_WISH_CONFIRMATION_DAYS).
WISH_CONFIRMATION_DAYS = 30


@dataclass(frozen=True)
class HandOver:
    """The moment he is moved (a hand-over, a transfer, a release, an exchange carried out): the
    rules run then also ask that the wish the move rests on was confirmed recently."""

    wish_confirmation_days: int = WISH_CONFIRMATION_DAYS


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
    return Check(
        PROTECTED_STATUS,
        False,
        f"status {facts.status or 'not yet determined'} is not POW, presumed POW or POW-equivalent",
    )


def _unverified(wish: DeclaredWish | None) -> str:
    if wish is None:
        return ""
    if wish.setting is InterviewSetting.MEDIA:
        how = "a media statement never verifies a wish"
    elif wish.claims_verification:
        who = _author(wish.standing)
        how = f"it names a private interview, but was recorded by {who}, not by an ICRC delegate as herself"
    else:
        how = "not verified"
    return f"; a statement ({wish.describe()}, event {wish.event_id}) is recorded: {how}"


def _author(standing: str | None) -> str:
    return {
        "AGENCY_SYSTEM": "an agency's system",
        "UNKNOWN": "an author whose standing is not recorded",
        None: "an author whose standing is not recorded",
    }.get(standing, f"a person of standing {standing}")


def _fit(facts: DispositionFacts) -> Check:
    """Nobody is moved while a medical finding says he is not fit to travel (Arts. 46-47: no
    transfer while the journey endangers recovery; 109(1): cared for until fit to travel)."""
    fitness = facts.fitness
    if fitness.fit is False:
        return Check(FIT_TO_TRAVEL, False, fitness.finding)
    return Check(FIT_TO_TRAVEL, True, fitness.finding)


def _confirmed(facts: DispositionFacts, hand_over: HandOver) -> Check:
    """The verified wish a hand-over rests on must have been heard in a private interview within
    `wish_confirmation_days` before it: a wish can change, and nobody is moved on an old one."""
    wish, days = facts.wish, hand_over.wish_confirmation_days
    if wish is None or wish.declared_at is None or facts.at is None:
        return Check(WISH_CONFIRMED, False, "no verified wish to confirm before the hand-over")
    age = facts.at - wish.declared_at
    heard = f"the verified wish (event {wish.event_id}) was last heard on {wish.declared_at.date().isoformat()}"
    if age <= timedelta(days=days):
        return Check(WISH_CONFIRMED, True, f"{heard}, {age.days} days before the hand-over (at most {days})")
    return Check(
        WISH_CONFIRMED,
        False,
        f"{heard}, {age.days} days before the hand-over: more than the {days} days allowed; "
        "it must be confirmed again in a private interview",
    )


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
    """Open judicial proceedings keep him back (Arts. 115(2), 119(5)) unless the detaining Power
    consented that he leave before their end; disciplinary ones never do (Art. 115(1))."""
    consented = facts.consented_proceedings
    holding = {pid: event for pid, event in facts.open_prosecutions.items() if pid not in consented}
    if holding:
        open_ = ", ".join(f"{pid} (event {event})" for pid, event in sorted(holding.items()))
        return Check(NO_PENDING_PROSECUTION, False, f"judicial proceedings open: {open_}")
    if consented:
        which = ", ".join(f"{pid} (consent, event {event})" for pid, event in sorted(consented.items()))
        return Check(
            NO_PENDING_PROSECUTION, True, f"judicial proceedings open, the detaining Power consenting: {which}"
        )
    return Check(NO_PENDING_PROSECUTION, True, "no judicial proceedings open")


def _medical(facts: DispositionFacts) -> Check:
    if facts.seriously_wounded_or_sick:
        return Check(
            SERIOUSLY_WOUNDED_OR_SICK,
            True,
            f"seriously wounded or sick, found by a mixed medical commission (event {facts.medical_event_id})",
        )
    return Check(SERIOUSLY_WOUNDED_OR_SICK, False, "no finding of a mixed medical commission that he is seriously ill")


def _no_risk(facts: DispositionFacts, destination: str | None) -> Check:
    found = non_refoulement(facts, destination)
    return Check(NO_REAL_RISK, found.clear, found.finding())


# -- the verdicts -----------------------------------------------------------------------------------
#
# Each verdict lists its checks; `hand_over` is given at the step that moves him (a hand-over, a
# completion, an exchange carried out), where the verified wish the move rests on must also have
# been confirmed recently (D17).


def _verdict(
    facts: DispositionFacts,
    checks: list[Check],
    destination: str | None,
    *,
    rests_on_wish: bool = False,
    hand_over: HandOver | None = None,
) -> Verdict:
    if rests_on_wish and hand_over is not None:
        checks.append(_confirmed(facts, hand_over))
    return Verdict(tuple(checks), facts_behind(facts, (destination,)), destination, facts.used_events, facts.at)


def exchange_eligibility(facts: DispositionFacts, counterpart: str, hand_over: HandOver | None = None) -> Verdict:
    """May he be on a prisoner exchange to `counterpart` during hostilities (Arts. 6, 109(2))?"""
    checks = [
        _custody(facts),
        _status(facts),
        _wish(facts, Wish.REPATRIATE),
        _no_risk(facts, counterpart),
        _prosecution(facts),
        _fit(facts),
    ]
    return _verdict(facts, checks, counterpart, rests_on_wish=True, hand_over=hand_over)


def _assured(facts: DispositionFacts, rule: Rule, state: str | None, flag: str, yes: str, no: str) -> Check:
    assurance = facts.assurances.get(state or "")
    if assurance is not None and getattr(assurance, flag):
        return Check(rule, True, f"{state} {yes} (event {assurance.event_id})")
    return Check(rule, False, f"{state or 'no state'} {no}")


def _applies_convention(facts: DispositionFacts, state: str | None, yes: str, no: str) -> Check:
    """Art. 12(2)-(3): a recorded assurance, and no failure to carry out the Convention notified
    since that the detaining state's measures have not met."""
    failure = facts.failures.get(state or "")
    if failure is not None:
        return Check(
            RECEIVING_STATE_APPLIES_GC_III,
            False,
            f"{state} fails to carry out the Convention in an important respect, as {failure.notified_by} notified "
            f"on {failure.since.date().isoformat()} (event {failure.event_id}); no transfer there until the "
            "measures of Art. 12(3) are recorded",
        )
    return _assured(facts, RECEIVING_STATE_APPLIES_GC_III, state, "willing_and_able", yes, no)


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


def _return_despite_risk(facts: DispositionFacts, home: str) -> tuple[Check, bool]:
    """Art. 118 and a release home from the commission: the risk must have been assessed (never
    assumed); a real risk blocks unless his verified free and informed wish is to return. Also
    says whether the answer rests on that wish."""
    found = non_refoulement(facts, home)
    if found.clear:
        return Check(NO_RETURN_TO_RISK_AGAINST_WILL, True, found.finding()), False
    if found.unresolved:
        return Check(NO_RETURN_TO_RISK_AGAINST_WILL, False, found.finding()), False
    wants = _wish(facts, Wish.REPATRIATE)
    if wants.satisfied:
        return Check(
            NO_RETURN_TO_RISK_AGAINST_WILL, True, f"{found.finding()}; he wishes to return ({wants.finding})"
        ), True
    return Check(NO_RETURN_TO_RISK_AGAINST_WILL, False, f"{found.finding()}, and he does not wish to return"), False


def disposition(
    kind: DispositionKind, facts: DispositionFacts, destination: str | None, hand_over: HandOver | None = None
) -> Verdict:
    """May this disposition be proposed, approved or carried out now? (For the neutral
    repatriation commission: may he be handed to it; his release is `commission_release`.)"""
    custody = _custody(facts)
    if kind is DispositionKind.EXCHANGE:
        return exchange_eligibility(facts, destination or "", hand_over)
    if kind is DispositionKind.ART_12_TRANSFER:
        claim = facts.partner_claims.get(destination or "")
        applies = _applies_convention(
            facts,
            destination,
            "assured it is willing and able to apply GC III"
            + (f"; it claims him as its national (event {claim})" if claim else ""),
            "has given no recorded assurance that it is willing and able to apply GC III",
        )
        checks = [
            custody,
            _status(facts),
            _wish(facts, Wish.THIRD_STATE, destination),
            applies,
            _no_risk(facts, destination),
            _prosecution(facts),
            _fit(facts),
        ]
        return _verdict(facts, checks, destination, rests_on_wish=True, hand_over=hand_over)
    if kind is DispositionKind.RESETTLEMENT:
        accepts = _assured(
            facts,
            RECEIVING_STATE_ACCEPTS,
            destination,
            "accepts_for_resettlement",
            "accepts him for resettlement",
            "has not accepted him",
        )
        checks = [
            custody,
            _wish(facts, Wish.THIRD_STATE, destination),
            accepts,
            _prosecution(facts),
            _no_risk(facts, destination),
            _fit(facts),
        ]
        return _verdict(facts, checks, destination, rests_on_wish=True, hand_over=hand_over)
    if kind is DispositionKind.STAY_IN_DETAINING_STATE:  # no removal: nothing to confirm or travel
        return _verdict(facts, [custody, _wish(facts, Wish.STAY_IN_DETAINING_STATE)], destination)
    if kind is DispositionKind.DIRECT_REPATRIATION:
        home, wrong = _repatriation(facts, destination)
        will = _wish(facts, Wish.REPATRIATE)
        ceased = facts.hostilities
        against_will = Check(
            NOT_AGAINST_HIS_WILL,
            will.satisfied or ceased.ceased,
            f"{will.finding}" if not ceased.ceased else ceased.finding,
        )
        risk = wrong or Check(NO_REAL_RISK, *_clear(non_refoulement(facts, home)))
        checks = [custody, _medical(facts), against_will, risk, _prosecution(facts), _fit(facts)]
        # During hostilities he goes only by his will (Art. 109(3)): the move rests on his wish.
        return _verdict(facts, checks, home, rests_on_wish=not ceased.ceased, hand_over=hand_over)
    if kind is DispositionKind.NEUTRAL_ACCOMMODATION:
        agreement = _assured(
            facts,
            NEUTRAL_AGREEMENT,
            destination,
            "neutral_accommodation_agreement",
            "has agreed to accommodate him",
            "has no accommodation agreement with the detaining state",
        )
        checks = [custody, _medical(facts), agreement, _no_risk(facts, destination), _prosecution(facts), _fit(facts)]
        return _verdict(facts, checks, destination)
    if kind is DispositionKind.NEUTRAL_REPATRIATION_COMMISSION:
        agreement = _assured(
            facts,
            COMMISSION_AGREEMENT,
            destination,
            "repatriation_commission_agreement",
            "hosts a neutral repatriation commission that will take custody of him",
            "hosts no neutral repatriation commission by agreement",
        )
        checks = [
            custody,
            _status(facts),
            _did_not_insist(facts),
            agreement,
            _no_risk(facts, destination),
            _prosecution(facts),
            _fit(facts),
        ]
        return _verdict(facts, checks, destination, rests_on_wish=True, hand_over=hand_over)
    # REPATRIATION_AFTER_HOSTILITIES
    home, wrong = _repatriation(facts, destination)
    ceased = Check(HOSTILITIES_CEASED, facts.hostilities.ceased, facts.hostilities.finding)
    returning, on_wish = (wrong, False) if wrong else _return_despite_risk(facts, home)
    checks = [custody, ceased, returning, _prosecution(facts), _fit(facts)]
    return _verdict(facts, checks, home, rests_on_wish=on_wish, hand_over=hand_over)


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
