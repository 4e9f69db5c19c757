"""How a service reacts to events: its policies, one shape for all.

A policy names the event types it reacts to, says which captives each such event affects (a list,
or None for every captive: a rulebook, a conflict fact), and `react`s to them: it gathers the facts
and returns what to append. It never appends itself: `Policies.run` appends what each returns
through the event store, which projects it, in the transaction of the events that caused it.

Two places run a service's policies:
- the command pipeline, after a command's own events are appended: one cause for all the
  captives they affect, the first of the command's events the policy reacts to;
- the consumer, after it projected a batch of upstream events (each about a different captive):
  each captive's own event is the cause of what is appended for him.
Replay never runs them: it only rebuilds read models from what was appended.

Each policy takes many causes at once, so one conflict fact re-decides 10,000 captives in one pass,
and a poll of registrations is one re-decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from sqlalchemy.orm import Session

from shared.contracts import EventEnvelope, EventMetadata, EventPayload
from shared.contracts.envelope import Causes
from shared.eventstore import EventStore, StreamAppend

Event = tuple[EventEnvelope, EventPayload]


class Policy:
    """One reaction of a service. Subclassed: the class attributes say what it is."""

    name: ClassVar[str]
    reacts_to: ClassVar[frozenset[str]]
    # Among the service's policies, lower runs first (disposition stops what can no longer go
    # ahead before it re-computes eligibility).
    order: ClassVar[int] = 0
    # Who the events it appends are recorded as being by: the service itself, never a caller.
    actor: ClassVar[str] = ""
    agency: ClassVar[str] = ""
    # The field of a command's answer that says how many events it appended (None: not said).
    answer_key: ClassVar[str | None] = None

    def affected(self, session: Session, envelope: EventEnvelope, payload: EventPayload) -> list[str] | None:
        """The captives an event affects; None: every captive. By default, the one it is about."""
        return [envelope.subject]

    def react(
        self, session: Session, store: EventStore, captive_ids: list[str] | None, causes: Causes
    ) -> list[StreamAppend]:
        """What to append for these captives (None: every captive), each caused by his cause."""
        raise NotImplementedError

    def caused_by(self, cause: EventEnvelope, occurred_at: datetime | None = None) -> EventMetadata:
        return EventMetadata.caused_by(cause, actor=self.actor, agency=self.agency, occurred_at=occurred_at)


class Policies:
    """A service's policies, in their order."""

    def __init__(self, *policies: Policy):
        self.policies = tuple(sorted(policies, key=lambda policy: policy.order))

    def __add__(self, other: Policies) -> Policies:
        return Policies(*self.policies, *other.policies)

    def reacts_to(self) -> set[str]:
        return {event_type for policy in self.policies for event_type in policy.reacts_to}

    def run(
        self, session: Session, store: EventStore, events: Sequence[Event], *, one_cause: bool = False
    ) -> dict[Policy, int]:
        """Let each policy that reacts to some of `events` react, in order, and append what it
        returns; how many events each appended. `one_cause`: the events of one command, the first
        one a policy reacts to causing all it appends; else each captive's own event causes his."""
        appended: dict[Policy, int] = {}
        for policy in self.policies:
            relevant = [(envelope, payload) for envelope, payload in events if envelope.type in policy.reacts_to]
            if not relevant:
                continue
            captive_ids, causes = _affected(session, policy, relevant, one_cause)
            appends = policy.react(session, store, captive_ids, causes) if captive_ids != [] else []
            appended[policy] = len(store.append_batch(session, appends)) if appends else 0
        return appended


def _affected(
    session: Session, policy: Policy, events: list[Event], one_cause: bool
) -> tuple[list[str] | None, Causes]:
    """Who `events` affect (None: every captive), and what caused it for each."""
    everyone: EventEnvelope | None = None
    causes: dict[str, EventEnvelope] = {}
    for envelope, payload in events:
        captive_ids = policy.affected(session, envelope, payload)
        if captive_ids is None:
            everyone = everyone or envelope
            continue
        for captive_id in captive_ids:
            causes.setdefault(captive_id, envelope)
    if one_cause:
        return (None if everyone else list(causes)), events[0][0]
    if everyone is not None:
        return None, everyone
    return list(causes), causes


def answer_fields(appended: dict[Policy, int]) -> dict[str, int]:
    """What a command's answer says of its policies' appends (`decisions_changed`, ...)."""
    return {policy.answer_key: count for policy, count in appended.items() if policy.answer_key}
