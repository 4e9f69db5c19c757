"""Rulebook v1 (../shared/domain/BRIEF.md section 2) as pure functions: facts in, a decision with
its trace out. No I/O and no clock: every time in a decision comes from an event.

This first cut knows the captive-level facts that intake sends; conflict-level facts (a state
acknowledged as a party, hostilities ceased) and the Art. 5 tribunal arrive with the status
service's own events, and until then the home state's participation is unknown, which is doubt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.contracts.intake import ClaimedAffiliation
from shared.contracts.status import FactUsed, LegalStatus, RuleApplied

RULEBOOK_VERSION = "v1"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    article: str


PROTECTION_FROM_CAPTURE = Rule("R1", "GC III Art. 5(1)")
MEMBER_OF_ARMED_FORCES = Rule("R3", "GC III Art. 4A(1); AP I Art. 43")
DOUBT_MEANS_PRESUMED_POW = Rule("R7", "AP I Art. 45(1); GC III Art. 5(2)")

MEMBERSHIP = {ClaimedAffiliation.OWN_STATE_FORCES, ClaimedAffiliation.INTEGRATED_IN_COBELLIGERENT_FORCES}


@dataclass(frozen=True)
class CaptiveFacts:
    captive_id: str
    captured_at: datetime
    nationality: str | None
    claimed_affiliation: ClaimedAffiliation
    registration_event_id: str
    # None: no event yet says whether the home state is a party to an international conflict.
    home_state_is_party: bool | None = None
    home_state_fact_event_id: str | None = None


@dataclass(frozen=True)
class Decision:
    status: LegalStatus
    rules: tuple[RuleApplied, ...]
    facts: tuple[FactUsed, ...]
    rulebook_version: str = RULEBOOK_VERSION


def decide(facts: CaptiveFacts) -> Decision:
    registration = facts.registration_event_id
    used = [
        FactUsed(name="captured_at", value=facts.captured_at.isoformat(), source_event_id=registration),
        FactUsed(name="nationality", value=facts.nationality, source_event_id=registration),
        FactUsed(name="claimed_affiliation", value=facts.claimed_affiliation.value, source_event_id=registration),
        FactUsed(
            name="home_state_is_party", value=facts.home_state_is_party, source_event_id=facts.home_state_fact_event_id
        ),
    ]
    fired = [_applied(PROTECTION_FROM_CAPTURE, f"protected since capture on {facts.captured_at.date().isoformat()}")]
    member = facts.claimed_affiliation in MEMBERSHIP
    if member and facts.home_state_is_party:
        fired.append(
            _applied(MEMBER_OF_ARMED_FORCES, "member of the armed forces of a party to an international armed conflict")
        )
        return Decision(LegalStatus.POW, tuple(fired), tuple(used))
    doubts = []
    if not member:
        doubts.append("affiliation unclear")
    if facts.home_state_is_party is None:
        doubts.append("home state not acknowledged as a party to the conflict")
    elif not facts.home_state_is_party:
        doubts.append("home state not a party to the conflict")
    fired.append(
        _applied(DOUBT_MEANS_PRESUMED_POW, f"presumed POW until a competent tribunal decides: {'; '.join(doubts)}")
    )
    return Decision(LegalStatus.PRESUMED_POW, tuple(fired), tuple(used))


def _applied(rule: Rule, finding: str) -> RuleApplied:
    return RuleApplied(rule_id=rule.rule_id, article=rule.article, finding=finding)
