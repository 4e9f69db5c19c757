"""The neutral repatriation commission's route (Korean Armistice Agreement 1953, Annex), as pure
functions like the other verdicts (services/disposition/rules.py, whose checks it shares): how long
explanations last, then the referral, then the release of those still undecided."""

from __future__ import annotations

from services.disposition.facts import DispositionFacts
from services.disposition.rules import (
    EXPLANATIONS_COMPLETED,
    RECEIVING_STATE_ACCEPTS,
    REFERRAL_COMPLETED,
    VERIFIED_WISH,
    Check,
    HandOver,
    Verdict,
    _assured,
    _custody,
    _fit,
    _no_risk,
    _prosecution,
    _repatriation,
    _return_despite_risk,
    _verdict,
)
from shared.contracts.intake import Wish

# -- the neutral repatriation commission's route -------------------------------------------------------
#
# The 1953 terms of reference (Korean Armistice Agreement, Annex): explanations for 90 days; then
# those who have not chosen are referred on for 30 days; then those still undecided are released
# to civilian status. Each step is a step of the disposition with its own rules.

# The longest explanation period, unless the parties' agreement records another (para. 8: 90 days).
EXPLANATION_DAYS = 90
REFERRAL_DAYS = 30  # para. 11: thirty days after the referral


def explanation_period(facts: DispositionFacts, host: str | None) -> int:
    """How long explanations may last with the commission `host` holds: the period its agreement
    records, or 90 days."""
    assurance = facts.assurances.get(host or "")
    recorded = assurance.commission_explanation_days if assurance is not None else None
    return recorded or EXPLANATION_DAYS


def _explanations_over(facts: DispositionFacts) -> Check:
    commission = facts.commission
    if commission is None:
        return Check(EXPLANATIONS_COMPLETED, False, "he was not handed to the commission")
    days, end = commission.explanation_days, commission.explanations_end
    if facts.at is not None and facts.at >= end:
        return Check(EXPLANATIONS_COMPLETED, True, f"the {days} days of explanations ended on {end.date().isoformat()}")
    return Check(EXPLANATIONS_COMPLETED, False, f"the {days} days of explanations run until {end.isoformat()}")


def _undecided(facts: DispositionFacts) -> bool:
    return facts.wish is None or facts.wish.wish is Wish.UNDECIDED


def commission_referral(facts: DispositionFacts, disposition_id: str) -> Verdict:
    """May he, still undecided when the explanations end, be referred on (para. 11)? One who has
    chosen is released to his choice instead."""
    chosen = facts.wish
    if _undecided(facts):
        choice = Check(VERIFIED_WISH, True, "he has not chosen, by a verified wish, where to go")
    else:
        choice = Check(
            VERIFIED_WISH,
            False,
            f"he has chosen: {chosen.describe()} (event {chosen.event_id}); release him to his choice instead",
        )
    checks = [_custody(facts, commission_of=disposition_id), _explanations_over(facts), choice]
    return _verdict(facts, checks, None)


def _referral_over(facts: DispositionFacts) -> Check:
    commission = facts.commission
    if commission is None or commission.referred_at is None:
        return Check(
            REFERRAL_COMPLETED,
            False,
            "he has not chosen, by a verified wish, where to go, and was not referred on after the explanations",
        )
    end = commission.referral_end
    if facts.at is not None and facts.at >= end:
        return Check(
            REFERRAL_COMPLETED,
            True,
            f"still undecided {commission.referral_days} days after his referral "
            f"(event {commission.referral_event_id}), which ended on {end.date().isoformat()}: "
            "released to civilian status",
        )
    return Check(
        REFERRAL_COMPLETED,
        False,
        f"referred on (event {commission.referral_event_id}); the {commission.referral_days} days run until "
        f"{end.isoformat()}",
    )


def commission_release(facts: DispositionFacts, disposition_id: str, hand_over: HandOver | None = None) -> Verdict:
    """May he be released as a civilian from the neutral repatriation commission's custody, now
    that its explanations are over: to the country his verified wish names at this moment, or,
    still undecided after his referral, to civilian status where he is (no removal)?"""
    custody = _custody(facts, commission_of=disposition_id)
    wish = facts.wish
    destination: str | None = None
    on_wish = True
    if _undecided(facts):
        choice, on_wish = [_referral_over(facts)], False
    elif wish.wish is Wish.REPATRIATE:
        destination, wrong = _repatriation(facts, None)
        returning, _ = (wrong, False) if wrong else _return_despite_risk(facts, destination)
        choice = [returning, _fit(facts)]
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
            _fit(facts),
        ]
    else:  # he stays, released as a civilian in the detaining state: no removal
        choice = [Check(VERIFIED_WISH, True, f"verified wish {wish.describe()} (event {wish.event_id})")]
        on_wish = False
    checks = [custody, _explanations_over(facts), *choice, _prosecution(facts)]
    return _verdict(facts, checks, destination, rests_on_wish=on_wish, hand_over=hand_over)
