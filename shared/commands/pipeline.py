"""The one way a command is carried out. A route parses and authorises; the service's `decide`
(services/<name>/commands.py) returns a `Decision`: the events to append and how to answer.
`Pipeline.transaction(decide)` then does, in the caller's one transaction:

1. decide (reading what it needs: the aggregate, the read models);
2. append the events through the event store, which projects them (shared/eventstore/projector.py);
3. let the service's policies react to them (shared/commands/policy.py); what they appended is
   counted in the answer (`decisions_changed`, `eligibility_changes`);
4. answer.

A refusal that must be recorded (a disposition step the rules block) is a decision too: its
events are appended and its answer is a 409.

The retry on `ConcurrencyConflict` lives here only (`retrying`): a write that lost a race for a
stream version is decided again from a fresh read, never appended blindly."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from shared.commands.policy import Policies, answer_fields
from shared.contracts import EventEnvelope
from shared.eventstore.store import ConcurrencyConflict, EventStore, StreamAppend

A = TypeVar("A")
ATTEMPTS = 3


@dataclass(frozen=True)
class Decision(Generic[A]):
    """What a command decided: the events to append, and its answer given their envelopes and
    what the policies appended (`{"eligibility_changes": 2}`)."""

    appends: Sequence[StreamAppend]
    answer: Callable[[list[EventEnvelope], Mapping[str, int]], A]


@dataclass(frozen=True)
class Pipeline:
    store: EventStore
    policies: Policies

    def carry_out(self, session: Session, decision: Decision[A]) -> A:
        """Append what was decided (projected by the store), let the policies react, answer."""
        envelopes = self.store.append_batch(session, decision.appends) if decision.appends else []
        reacted = {}
        if envelopes:
            payloads = [payload for append in decision.appends for payload in append.payloads]
            events = list(zip(envelopes, payloads, strict=True))
            reacted = answer_fields(self.policies.run(session, self.store, events, one_cause=True))
        return decision.answer(envelopes, reacted)

    def transaction(self, decide: Callable[[Session], Decision[A]]) -> Callable[[Session], A]:
        """What runs inside the command's transaction."""
        return lambda session: self.carry_out(session, decide(session))

    def run(self, sessions: sessionmaker[Session], decide: Callable[[Session], Decision[A]]) -> A:
        """Decide and carry out in a transaction of its own, retried on a lost race."""

        def once() -> A:
            with sessions.begin() as session:
                return self.carry_out(session, decide(session))

        return retrying(once)


def retrying(attempt: Callable[[], A], attempts: int = ATTEMPTS) -> A:
    """Run `attempt` again, from a fresh read, while it loses a race for a stream version (another
    writer appended first), up to `attempts` times."""
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except ConcurrencyConflict:
            if number == attempts:
                raise
    raise AssertionError("unreachable")
