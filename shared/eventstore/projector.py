"""A service's projector: for each event type it keeps read models of, how an event of that type
reaches them. One object per service, applied in three places to the same effect:

- the event store applies it to every event it appends, in the appender's transaction
  (shared/eventstore/store.py), so no command or policy projects by hand;
- the consumer applies it to every upstream event it takes, before the policies react;
- replay applies it to the log of record (shared/eventstore/replay.py).

So the read models a replay rebuilds are the ones the live service wrote, by construction: there
is no second wiring to drift from the first.

A projector is a mapping {event type -> apply(session, envelope, payload)}, so replay and tests
can ask which types it applies and apply one event. A `Projection` may also have a batch form,
given the events of one type that arrive together (a batch registration, the re-decisions of one
conflict fact), in order: it writes their rows with one statement per table."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy.orm import Session

from shared.contracts import EventEnvelope, EventPayload

Apply = Callable[[Session, EventEnvelope, EventPayload], None]
ApplyMany = Callable[[Session, list[tuple[EventEnvelope, EventPayload]]], None]


@dataclass(frozen=True)
class Projection:
    """Events of `event_types` applied to some read models."""

    event_types: Iterable[str]  # kept as a frozenset
    apply: Apply
    batch: ApplyMany | None = None  # several events of one type at once, in order
    # Only the events this service itself recorded: an access log holds the reads of its own
    # data, and the upstream topics a service consumes carry the other services' reads.
    own_only: bool = False

    def __post_init__(self):
        object.__setattr__(self, "event_types", frozenset(self.event_types))


class Projector(Mapping[str, Apply]):
    """The projections of one service (`service`: its name; its own events' source is
    /services/<name>). Several projections may apply to one type; they run in the order given."""

    def __init__(self, service: str, *projections: Projection):
        self.service = service
        self.source = f"/services/{service}"
        self.projections = projections
        by_type: dict[str, list[Projection]] = {}
        for projection in projections:
            for event_type in sorted(projection.event_types):
                by_type.setdefault(event_type, []).append(projection)
        self._by_type = {event_type: tuple(found) for event_type, found in by_type.items()}

    # -- the mapping: what replay and the consumer ask -------------------------------------------

    def __getitem__(self, event_type: str) -> Apply:
        if event_type not in self._by_type:
            raise KeyError(event_type)
        return lambda session, envelope, payload: self.apply(session, envelope, payload)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)

    def upstream_types(self) -> set[str]:
        """The types it applies when another service recorded them (what a consumer takes)."""
        return {t for t, found in self._by_type.items() if any(not projection.own_only for projection in found)}

    # -- applying --------------------------------------------------------------------------------

    def apply(self, session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
        for projection in self._by_type.get(envelope.type, ()):
            if self._takes(projection, envelope):
                projection.apply(session, envelope, payload)

    def apply_all(self, session: Session, events: Sequence[tuple[EventEnvelope, EventPayload]]) -> None:
        """Apply `events` in order; a run of events of one type goes to a projection's batch
        form, where it has one, all at once."""
        for event_type, run in groupby(events, key=lambda event: event[0].type):
            run = list(run)
            for projection in self._by_type.get(event_type, ()):
                taken = [(envelope, payload) for envelope, payload in run if self._takes(projection, envelope)]
                if projection.batch is not None and len(taken) > 1:
                    projection.batch(session, taken)
                else:
                    for envelope, payload in taken:
                        projection.apply(session, envelope, payload)

    def _takes(self, projection: Projection, envelope: EventEnvelope) -> bool:
        return not projection.own_only or envelope.source == self.source
