"""Where a captive is in custody, and which movements can follow which (pure; no I/O)."""

from __future__ import annotations

from enum import StrEnum

from shared.contracts.intake import MovementKind
from shared.errors import DomainConflict


class CustodyState(StrEnum):
    CAPTURED = "CAPTURED"  # taken, not yet at a camp
    INTERNED = "INTERNED"  # at a camp (Art. 21)
    HOSPITALISED = "HOSPITALISED"
    ESCAPED = "ESCAPED"
    DEAD = "DEAD"
    RELEASED = "RELEASED"


class CustodyConflict(DomainConflict):
    """The movement cannot follow the captive's current state; the API answers 409."""


HELD = {CustodyState.CAPTURED, CustodyState.INTERNED, CustodyState.HOSPITALISED}

# movement -> (states it may follow, state it leads to)
TRANSITIONS: dict[MovementKind, tuple[set[CustodyState], CustodyState]] = {
    MovementKind.ARRIVED_AT_CAMP: (HELD, CustodyState.INTERNED),
    MovementKind.TRANSFERRED: (HELD, CustodyState.INTERNED),
    MovementKind.HOSPITALISED: (HELD, CustodyState.HOSPITALISED),
    MovementKind.DISCHARGED_FROM_HOSPITAL: ({CustodyState.HOSPITALISED}, CustodyState.INTERNED),
    MovementKind.ESCAPED: (HELD, CustodyState.ESCAPED),
    MovementKind.RECAPTURED: ({CustodyState.ESCAPED}, CustodyState.INTERNED),
    MovementKind.DIED: (HELD | {CustodyState.ESCAPED}, CustodyState.DEAD),
    MovementKind.RELEASED: (HELD, CustodyState.RELEASED),
}


def after(state: CustodyState, movement: MovementKind) -> CustodyState:
    allowed_from, leads_to = TRANSITIONS[movement]
    if state not in allowed_from:
        raise CustodyConflict(f"{movement.value} cannot be recorded for a captive who is {state.value}")
    return leads_to
