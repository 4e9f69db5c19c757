"""The vocabulary of `captives demo`: the persons, forces and soldiers of a scenario, the actions
one agency takes at a step, what a step expects the services to show, and the scenario itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

# -- the vocabulary of the scenario -------------------------------------------------------------


@dataclass(frozen=True)
class Officer:
    """A person of the demo realm (deploy/keycloak/demo-persons.toml), signing in as himself:
    what he does is recorded under his verified identity, never under a name the demo asserts."""

    username: str
    name: str  # as the realm holds it; events take it from his token


@dataclass(frozen=True)
class Force:
    """The armed force a soldier belongs to: its state is the Power he depends on (where home
    is), and the party whose forces he was embedded in. Status and repatriation read this, never
    his recorded nationality."""

    force: str
    force_state: str
    integrated_in_forces_of: str | None = None


KPA_IN_RUSSIAN_FORCES = Force("Korean People's Army", "KP", integrated_in_forces_of="RU")


@dataclass(frozen=True)
class Soldier:
    """A fictional soldier of the Korean People's Army; names in Hangul and romanised."""

    name: str  # romanised, how the demo refers to him
    hangul: tuple[str, str]  # surname, given name
    rank: tuple[str, str]  # Korean, romanised
    born: date | None
    captured_at: str
    place: str
    circumstances: str
    papers: str
    affiliation: str = "INTEGRATED_IN_COBELLIGERENT_FORCES"
    # The force he belongs to as established at capture; None: not established (left unrecorded).
    armed_force: Force | None = KPA_IN_RUSSIAN_FORCES


ELIGIBLE: tuple[str, ...] = ()  # no rule blocks the exchange


@dataclass(frozen=True)
class Expect:
    """What the services must show of a captive once a step has taken effect (None: not checked).
    `exchange` is the rules that block his exchange with the counterpart state, ELIGIBLE if none."""

    status: str | None = None
    wish: str | None = None
    verified: bool | None = None
    exchange: tuple[str, ...] | None = None
    custody: str | None = None


# The steps' actions: what one agency does. Each is performed by a function of the runner.


@dataclass(frozen=True)
class Register:
    soldiers: tuple[Soldier, ...]


@dataclass(frozen=True)
class DeclareWish:
    soldier: Soldier
    wish: str
    setting: str
    interviewer: tuple[str, str]  # who heard it, for which agency
    statement: str
    third_state: str | None = None
    consents_to_disclosure_to: str | None = None


@dataclass(frozen=True)
class Risk:
    """One non-refoulement assessment. It always says whether the destination would hand him on,
    and to whom: `hands_on_to` names those states, () says it would not (an assessment that left
    the question open would block every removal there)."""

    destination: str
    outcome: str
    basis: str
    hands_on_to: tuple[str, ...] = ()
    diplomatic_assurances: bool = False


@dataclass(frozen=True)
class AssessRisks:
    soldier: Soldier
    risks: tuple[Risk, ...]


@dataclass(frozen=True)
class ConflictBegins:
    """The conflict is an international armed conflict from the step's date (Common Art. 2): its
    beginning, before which no fact of the conflict may be dated."""

    source: str


@dataclass(frozen=True)
class AcknowledgeParty:
    state: str
    role: str
    source: str


@dataclass(frozen=True)
class Article5Tribunal:
    soldier: Soldier
    convened_on: date
    heard_on: date
    outcome: str
    written_reasons: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class EstablishForce:
    """The force he belongs to, established after registration (ForceMembershipRecorded)."""

    soldier: Soldier
    force: Force
    basis: str


@dataclass(frozen=True)
class RecordExposure:
    """His identity or images made public (GC III Art. 13(2)): older risk assessments go stale."""

    soldier: Soldier
    kind: str
    outlet: str
    details: str


@dataclass(frozen=True)
class Proceedings:
    """Judicial proceedings against him opened (`offence`) or closed (`outcome`), Arts. 115, 119(5)."""

    soldier: Soldier
    proceedings_id: str
    court: str
    offence: str | None = None
    outcome: str | None = None

    @property
    def stage(self) -> str:
        return "CLOSED" if self.outcome else "OPENED"


@dataclass(frozen=True)
class DraftExchangeList:
    name: str
    counterpart: str
    agreement: str
    soldiers: tuple[Soldier, ...]


@dataclass(frozen=True)
class CarryOutExchange:
    name: str


@dataclass(frozen=True)
class PartnerLooksUp:
    state: str


@dataclass(frozen=True)
class ClaimAsNational:
    soldier: Soldier
    state: str
    basis: str


@dataclass(frozen=True)
class StateAssures:
    state: str
    assessment: str
    accepts_for_resettlement: bool = False


@dataclass(frozen=True)
class CheckTransfer:
    soldier: Soldier
    destination: str


@dataclass(frozen=True)
class ProposeArt12Transfer:
    """Proposed by one officer, approved by another: the rules run at each of the two steps."""

    soldier: Soldier
    destination: str


@dataclass(frozen=True)
class HandOver:
    """The approved transfer carried out: the rules run again at this moment and may refuse it."""

    soldier: Soldier
    destination: str


Action = (
    Register
    | DeclareWish
    | AssessRisks
    | ConflictBegins
    | AcknowledgeParty
    | Article5Tribunal
    | EstablishForce
    | RecordExposure
    | Proceedings
    | DraftExchangeList
    | CarryOutExchange
    | PartnerLooksUp
    | ClaimAsNational
    | StateAssures
    | CheckTransfer
    | ProposeArt12Transfer
    | HandOver
)


@dataclass(frozen=True)
class Step:
    on: date
    title: str
    story: str
    actions: tuple[Action, ...]
    expect: Mapping[Soldier, Expect] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str  # part of every Idempotency-Key: a second run replays, never duplicates
    counterpart: str  # the state the exchange is made with, whose exchange eligibility is shown
    soldiers: tuple[Soldier, ...]
    steps: tuple[Step, ...]
