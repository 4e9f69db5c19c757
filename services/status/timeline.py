"""What must be appended so that the recorded decisions say what the facts now say (pure).

The recorded timeline is what StatusDetermined events already state: from each event's `time`
on, its decision holds, a later-recorded event winning over an earlier one at the same moment.
Comparing it with the wanted timeline at every moment where either changes gives the events to
emit; none when they agree, which makes a re-decision (or a redelivered event) a no-op."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.status.rulebook import Decision


@dataclass(frozen=True)
class Recorded:
    effective_from: datetime
    order: int  # stream version: later recorded wins at the same moment
    key: tuple
    status: str


def as_of(recorded: list[Recorded], moment: datetime) -> Recorded | None:
    applicable = [entry for entry in recorded if entry.effective_from <= moment]
    return max(applicable, key=lambda entry: (entry.effective_from, entry.order)) if applicable else None


def to_emit(
    recorded: list[Recorded], wanted: list[tuple[datetime, Decision]]
) -> list[tuple[datetime, Decision, str | None]]:
    """(moment, decision, previous status) for each StatusDetermined that must be appended."""
    if not wanted:
        return []
    known = list(recorded)
    next_order = max((entry.order for entry in known), default=0) + 1
    moments = sorted(
        {moment for moment, _ in wanted} | {e.effective_from for e in known if e.effective_from >= wanted[0][0]}
    )
    emitted = []
    for moment in moments:
        want = max((item for item in wanted if item[0] <= moment), key=lambda item: item[0])[1]
        have = as_of(known, moment)
        if have is None or have.key != want.key():
            emitted.append((moment, want, have.status if have else None))
            known.append(Recorded(moment, next_order, want.key(), want.status.value))
            next_order += 1
    return emitted
