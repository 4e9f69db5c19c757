"""Whether a captive may travel (GC III Arts. 46-47, 109(1), 119(1)), folded from intake's facts the
same way by every service that moves him: disposition before a removal, intake before a transfer
between camps. Pure; each step takes the fitness so far and one fact.

- The latest finding that says anything about `fit_to_travel` stands.
- "Not fit" counts whoever records it: it only holds him back. "Fit" counts only from a person of
  the detaining state (its medical service) or of a mixed medical commission
  (shared/contracts/standing.py `clears_fitness`).
- An admission to hospital leaves his fitness unknown, which holds him back, until a finding made
  after it says he is fit: a discharge alone does not say he can travel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.contracts.standing import Standing, clears_fitness


@dataclass(frozen=True)
class Fitness:
    """None: no finding or admission bears on it (nothing to hold him back); else what the latest
    one says, with its event."""

    fit: bool | None = None
    finding: str = "no medical finding bears on his fitness to travel"
    event_id: str | None = None

    @property
    def holds_back(self) -> bool:
        return self.fit is False


def after_finding(
    current: Fitness, fit_to_travel: bool | None, author: Standing | str | None, event_id: str, on: datetime
) -> Fitness:
    when = on.date().isoformat()
    if fit_to_travel is False:
        return Fitness(False, f"found not fit to travel on {when} (event {event_id})", event_id)
    if fit_to_travel is True and clears_fitness(author):
        return Fitness(True, f"found fit to travel on {when} (event {event_id})", event_id)
    return current


def after_admission_to_hospital(event_id: str, on: datetime) -> Fitness:
    return Fitness(
        False,
        f"admitted to hospital on {on.date().isoformat()} (event {event_id}); "
        "no finding since that he is fit to travel",
        event_id,
    )
