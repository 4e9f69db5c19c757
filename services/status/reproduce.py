"""Reproducing a recorded status decision: decide again from its own trace (the facts it names),
under its own rulebook version. Auditors and courts ask it of every StatusDetermined
(`captives audit reproduce`); replaying the events must give the same decision."""

from __future__ import annotations

from services.status.rulebook import CaptiveFacts, Decision, decide
from shared.contracts.status import StatusDetermined


def reproduce(determined: StatusDetermined) -> Decision:
    """Decide again from a recorded decision's own trace, under its own rulebook version."""
    facts = CaptiveFacts.from_trace(determined.captive_id, determined.facts)
    return decide(facts, determined.rulebook_version)
