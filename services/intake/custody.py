"""Where a captive is in custody, and which movements can follow which (pure; no I/O).

Two kinds of fact move him. Intake's own movements (camp, transfer between camps, hospital,
escape, death, release) follow the transitions below. The disposition service's hand-overs end
the detaining state's custody of him: an exchange, an Art. 12 transfer to another Power, a
repatriation, a release (for resettlement, to stay, or by the neutral repatriation commission),
accommodation in a neutral state, or the hand-over to the neutral repatriation commission.
Intake consumes those from disposition.events.v1 (`Handover`, folded after his own events); once
one is recorded, he is no longer the detaining state's to record facts about, and only the
notifications still owed for him are accepted (services/intake/requests.py `STILL_RECORDED`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.contracts.disposition import CustodyEnded, DispositionKind, HandedToRepatriationCommission
from shared.contracts.intake import MovementKind
from shared.platform.errors import DomainConflict


class CustodyState(StrEnum):
    CAPTURED = "CAPTURED"  # taken, not yet at a camp
    INTERNED = "INTERNED"  # at a camp (Art. 21)
    HOSPITALISED = "HOSPITALISED"
    ESCAPED = "ESCAPED"
    DEAD = "DEAD"
    RELEASED = "RELEASED"  # released: by intake's movement, or by a disposition (to stay, or by the commission)
    # He left the detaining state's custody by a disposition (services/disposition):
    EXCHANGED = "EXCHANGED"  # on an executed exchange list (Arts. 6, 109(2))
    TRANSFERRED_TO_POWER = "TRANSFERRED_TO_POWER"  # to another Power party to the Convention (Art. 12)
    REPATRIATED = "REPATRIATED"  # directly (Arts. 109-110) or after hostilities (Art. 118)
    RESETTLED = "RESETTLED"  # released for resettlement in a third state
    INTERNED_IN_NEUTRAL_STATE = "INTERNED_IN_NEUTRAL_STATE"  # accommodated in a neutral country (Arts. 109-111)
    WITH_COMMISSION = "WITH_COMMISSION"  # in the custody of the neutral repatriation commission


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


# -- hand-overs out of the detaining state's custody (from disposition.events.v1) ----------------

# What each completed disposition (CustodyEnded.kind) makes of him. From the commission he is
# released as a civilian to the country his verified wish names then (`destination`).
LEFT_BY: dict[DispositionKind, CustodyState] = {
    DispositionKind.EXCHANGE: CustodyState.EXCHANGED,
    DispositionKind.ART_12_TRANSFER: CustodyState.TRANSFERRED_TO_POWER,
    DispositionKind.DIRECT_REPATRIATION: CustodyState.REPATRIATED,
    DispositionKind.REPATRIATION_AFTER_HOSTILITIES: CustodyState.REPATRIATED,
    DispositionKind.RESETTLEMENT: CustodyState.RESETTLED,
    DispositionKind.STAY_IN_DETAINING_STATE: CustodyState.RELEASED,
    DispositionKind.NEUTRAL_ACCOMMODATION: CustodyState.INTERNED_IN_NEUTRAL_STATE,
    DispositionKind.NEUTRAL_REPATRIATION_COMMISSION: CustodyState.RELEASED,
}
# The event types of disposition.events.v1 that intake consumes; it ignores every other.
HANDOVER_EVENTS = ("CustodyEnded", "HandedToRepatriationCommission")


@dataclass(frozen=True)
class Handover:
    """He left the detaining state's custody (one of HANDOVER_EVENTS), at `at`."""

    event_id: str  # the disposition event
    event_type: str
    at: datetime  # when it took effect (the event's `time`)
    state: CustodyState  # what it makes of him
    destination: str | None  # the receiving state (ISO code) or the commission's name; None: not named
    disposition_kind: str | None  # CustodyEnded's kind (None for the hand-over to the commission)
    disposition_id: str  # the disposition, or the exchange list


def handover(
    event_id: str, event_type: str, at: datetime, payload: CustodyEnded | HandedToRepatriationCommission
) -> Handover:
    match payload:
        case HandedToRepatriationCommission():
            return Handover(
                event_id, event_type, at, CustodyState.WITH_COMMISSION, payload.commission, None, payload.disposition_id
            )
        case CustodyEnded():
            kind = DispositionKind(payload.kind)
            destination = str(payload.destination) if payload.destination else None
            return Handover(event_id, event_type, at, LEFT_BY[kind], destination, kind.value, payload.disposition_id)
    raise TypeError(f"{type(payload).__name__} is not a hand-over out of custody")


class LeftCustody(DomainConflict):
    """A write about a captive who has left the detaining state's custody; the API answers 409."""

    def __init__(self, captive_id: str, left: Handover):
        self.captive_id = captive_id
        self.left = left
        to = f" to {left.destination}" if left.destination else ""
        super().__init__(
            f"captive {captive_id} left custody: {left.state.value}{to} on "
            f"{left.at.isoformat().replace('+00:00', 'Z')} (disposition event {left.event_id}, {left.event_type}). "
            "He is no longer the detaining state's to record facts about: only the notifications still owed "
            "for him (GC III Arts. 122-123) can be recorded"
        )
