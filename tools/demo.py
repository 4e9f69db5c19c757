"""`captives demo`: a synthetic scenario with fictional captives that follows the real timeline of
../shared/domain/BRIEF.md (captures in Kursk oblast in January 2025, the acknowledgement of
2025-04-28, the swap agreed in Istanbul on 2025-05-16, a transfer to South Korea under Art. 12),
loaded into the running services over HTTP, each step by the person whose work it is, signed in
to the stack's Keycloak as himself (one person per step: the proposer and the approver of a
transfer are two), printing what changed at each step.

The rules are applied again at every step that moves a person (docs/legal-basis.md, "The moment
a rule applies"), and the story shows it twice: a captive whose face is broadcast after the
exchange list was approved is withheld when the list is carried out, and a transfer approved
before proceedings were opened against him is refused at the moment of hand-over (409, recorded
as a DispositionStepRefused), then carried out once the proceedings are closed.

The scenario is data (the people, then SCENARIO); the runner below it performs each step, waits
until the consequence is visible in the disposition service (the last to hear of anything), and
shows the difference.

Running it twice is safe: every write carries an Idempotency-Key made of the scenario's name and
the step, so the services answer a repeated step with their first answer (a refusal too) and
record nothing twice, and a run that stopped half-way resumes where it stopped. Generating new
people on every run would not tell the story: the acknowledgement of 2025-04-28 is a fact about
the conflict, in force for everyone registered after it, so a second cast would never be
"presumed POW".
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.keycloak.provision import Credentials
from shared.auth.tokens import NoToken, TokenSource

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


# -- the scenario: fictional people, the real timeline ------------------------------------------

INTAKE = Officer("o.kovalenko", "Olena Kovalenko")
LEGAL = Officer("d.lysenko", "Dmytro Lysenko")
TRIBUNAL = Officer("v.hrytsenko", "Viktoriia Hrytsenko")
ICRC = Officer("c.favre", "Claire Favre")
PROPOSER = Officer("i.bondarenko", "Iryna Bondarenko")
APPROVER = Officer("m.shevchenko", "Mariia Shevchenko")
KR_LIAISON = Officer("kim.jiwoo", "Jiwoo Kim")
# What changed after each step is read by the demo itself, an operator's system, not a person.
READER = "captives-operator"

KURSK = "Kursk oblast, near Korenevo"
RUSSIAN_PAPERS = "Russian military ID issued in the Tuva Republic; no Korean documents"

JO = Soldier(
    "Jo Kwang-chol",
    ("조", "광철"),
    ("전사", "Private"),
    date(2004, 3, 2),
    "2025-01-09T06:40:00Z",
    KURSK,
    "found wounded in a forest belt after a failed assault",
    RUSSIAN_PAPERS,
)
KANG = Soldier(
    "Kang Un-hyok",
    ("강", "은혁"),
    ("상등병", "Corporal"),
    date(2001, 11, 17),
    "2025-01-09T07:15:00Z",
    KURSK,
    "surrendered to the same patrol; jaw injury",
    RUSSIAN_PAPERS,
)
KIM = Soldier(
    "Kim Myong-su",
    ("김", "명수"),
    ("하사", "Sergeant"),
    date(1999, 6, 5),
    "2025-01-11T09:00:00Z",
    KURSK,
    "taken after his unit withdrew; a grenade kept for himself was removed from him",
    "KPA service booklet",
)
PAK = Soldier(
    "Pak Song-chol",
    ("박", "성철"),
    ("전사", "Private"),
    None,
    "2025-01-11T09:30:00Z",
    KURSK,
    "found unconscious in a dugout",
    "none",
)
CHOE = Soldier(
    "Choe Yong-nam",
    ("최", "영남"),
    ("전사", "Private"),
    date(2003, 1, 28),
    "2025-01-11T10:10:00Z",
    KURSK,
    "found unconscious in the same dugout",
    "KPA service booklet",
)
JONG = Soldier(
    "Jong Hyok",
    ("정", "혁"),
    ("전사", "Private"),
    date(2005, 8, 9),
    "2025-01-22T15:20:00Z",
    "Kursk oblast, near Sudzha",
    "says he was told he was going to a training exercise",
    RUSSIAN_PAPERS + "; wore a Russian uniform",
    affiliation="UNCLEAR",
    armed_force=None,
)
HAN = Soldier(
    "Han Chol",
    ("한", "철"),
    ("상등병", "Corporal"),
    date(2000, 2, 14),
    "2025-01-22T16:05:00Z",
    "Kursk oblast, near Sudzha",
    "taken with Jong Hyok",
    "KPA service booklet",
)
RYU = Soldier(
    "Ryu Song-min",
    ("류", "성민"),
    ("소위", "Junior Lieutenant"),
    date(1997, 4, 30),
    "2025-01-22T16:40:00Z",
    "Kursk oblast, near Sudzha",
    "platoon leader; taken after his platoon was scattered",
    "KPA officer's identity card",
)

SOLDIERS = (JO, KANG, KIM, PAK, CHOE, JONG, HAN, RYU)
HOME_RISK = (
    "UN Commission of Inquiry and NK human rights white paper: imprisonment and execution of returnees; "
    "soldiers were ordered to kill themselves rather than be captured"
)
PRIVATE = ("ICRC delegate A. Weber", "ICRC")


def home_wish(soldier: Soldier) -> DeclareWish:
    return DeclareWish(soldier, "REPATRIATE", "PRIVATE_ICRC_INTERVIEW", PRIVATE, "wants to go home to his family")


SENT_ON = Risk(
    "RU",
    "NO_REAL_RISK",
    "no risk in Russian custody itself; under the 2024 treaty Russia hands him on",
    hands_on_to=("KP",),
)
NO_PERSONAL_RISK = "taken unconscious, never spoke publicly: no personal risk found"
BROADCAST = (
    "a national television channel showed footage of Choe Yong-nam among the soldiers to be exchanged, "
    "his face unblurred and his name read out"
)
PROCEEDINGS = "UA-PGO-2025-0417"  # fictional case number
CONFLICT_SOURCE = (
    "ICC Office of the Prosecutor, Report on Preliminary Examination Activities 2016: an international armed "
    "conflict between Ukraine and the Russian Federation from 26 February 2014 at the latest"
)
WAR_CRIMES_DEPARTMENT = "War crimes department, Office of the Prosecutor General"


def same(expect: Expect, *soldiers: Soldier) -> dict[Soldier, Expect]:
    return dict.fromkeys(soldiers, expect)


SCENARIO = Scenario(
    name="kursk-2025",
    counterpart="RU",
    soldiers=SOLDIERS,
    steps=(
        Step(
            date(2014, 2, 26),
            "The conflict between Ukraine and the Russian Federation is international",
            "An armed conflict between two states parties to the Geneva Conventions (Common Art. 2), from the "
            "occupation of Crimea; the full-scale invasion followed on 2022-02-24. Its beginning is a fact of its "
            "own: no fact of the conflict may be dated before it.",
            (ConflictBegins(CONFLICT_SOURCE),),
        ),
        Step(
            date(2025, 1, 9),
            "Two soldiers captured near Korenevo, Kursk oblast",
            "The first Korean People's Army soldiers taken alive; the DPRK denies it has troops in the war. "
            "Each is recorded as a member of the KPA embedded in the Russian forces: the force, not his "
            "nationality, says whose soldier he is.",
            (Register((JO, KANG)),),
            same(Expect(status="PRESUMED_POW"), JO, KANG),
        ),
        Step(
            date(2025, 1, 11),
            "Three more captured after a failed assault",
            "Each fact is its own event; fields a captive declines to give are recorded as declined.",
            (Register((KIM, PAK, CHOE)),),
            same(Expect(status="PRESUMED_POW"), KIM, PAK, CHOE),
        ),
        Step(
            date(2025, 1, 22),
            "Three captured near Sudzha, one in a Russian uniform with Russian papers",
            "Jong Hyok says he thought he was on an exercise: his affiliation is recorded as unclear, and no "
            "force is recorded for him until it is established.",
            (Register((JONG, HAN, RYU)),),
            same(Expect(status="PRESUMED_POW"), JONG, HAN, RYU),
        ),
        Step(
            date(2025, 2, 19),
            "A newspaper interview",
            "Kang Un-hyok tells a journalist he is 'considering' South Korea. A media interview is no verified "
            "wish, and a wish to defect made public raises the risk of his return.",
            (
                DeclareWish(
                    KANG,
                    "THIRD_STATE",
                    "MEDIA",
                    ("a journalist", "a newspaper"),
                    "'considering' going to South Korea",
                    third_state="KR",
                ),
            ),
            {KANG: Expect(wish="THIRD_STATE KR", verified=False)},
        ),
        Step(
            date(2025, 3, 12),
            "Private ICRC interviews",
            "The ICRC hears each captive alone, with an interpreter; Jo Kwang-chol asks to go to South Korea "
            "and agrees that its officials may see his case.",
            (
                DeclareWish(
                    JO,
                    "THIRD_STATE",
                    "PRIVATE_ICRC_INTERVIEW",
                    PRIVATE,
                    "wants to live in the Republic of Korea",
                    third_state="KR",
                    consents_to_disclosure_to="KR",
                ),
                home_wish(KIM),
                home_wish(PAK),
                home_wish(CHOE),
                home_wish(RYU),
                DeclareWish(
                    JONG, "STAY_IN_DETAINING_STATE", "PRIVATE_ICRC_INTERVIEW", PRIVATE, "wants to stay in Ukraine"
                ),
                DeclareWish(HAN, "UNDECIDED", "PRIVATE_ICRC_INTERVIEW", PRIVATE, "has not decided"),
            ),
            {
                JO: Expect(wish="THIRD_STATE KR", verified=True),
                **same(Expect(wish="REPATRIATE", verified=True), KIM, PAK, CHOE, RYU),
                JONG: Expect(wish="STAY_IN_DETAINING_STATE", verified=True),
                HAN: Expect(wish="UNDECIDED", verified=True),
            },
        ),
        Step(
            date(2025, 4, 15),
            "Non-refoulement risk assessments",
            "For each destination: would return expose him to torture or execution (CAT Art. 3; ICCPR Arts. 6-7)? "
            "Each assessment says whether that state would hand him on, and to whom: Russia would hand them on "
            "to the DPRK, so a real risk there counts against Russia too. Han Chol, undecided, is not assessed: "
            "that blocks as a real risk would.",
            (
                AssessRisks(
                    JO,
                    (
                        Risk("KP", "REAL_RISK", "his wish to defect is known; " + HOME_RISK),
                        SENT_ON,
                        Risk("KR", "NO_REAL_RISK", "the Republic of Korea treats him as its national"),
                    ),
                ),
                AssessRisks(
                    KANG, (Risk("KP", "REAL_RISK", "his face and words were published; " + HOME_RISK), SENT_ON)
                ),
                AssessRisks(KIM, (Risk("KP", "REAL_RISK", "surrendered against orders to die; " + HOME_RISK), SENT_ON)),
                AssessRisks(
                    RYU,
                    (
                        Risk(
                            "KP",
                            "REAL_RISK",
                            "an officer taken alive; the DPRK's assurances through Moscow are not credible; "
                            + HOME_RISK,
                            diplomatic_assurances=True,
                        ),
                        SENT_ON,
                    ),
                ),
                AssessRisks(PAK, (Risk("KP", "NO_REAL_RISK", NO_PERSONAL_RISK), SENT_ON)),
                AssessRisks(CHOE, (Risk("KP", "NO_REAL_RISK", NO_PERSONAL_RISK), SENT_ON)),
                AssessRisks(JONG, (Risk("KP", "REAL_RISK", "asked to stay; " + HOME_RISK), SENT_ON)),
            ),
            {
                JO: Expect(exchange=("D3", "D4")),
                KANG: Expect(exchange=("D3", "D4")),
                JONG: Expect(exchange=("D3", "D4")),
                **same(Expect(exchange=("D4",)), KIM, RYU),
                **same(Expect(exchange=ELIGIBLE), PAK, CHOE),
            },
        ),
        Step(
            date(2025, 4, 28),
            "The DPRK acknowledged as a party to the conflict",
            "Pyongyang and Moscow officially acknowledge the deployment. Every captive it affects is re-decided "
            "from that date; no force is established for Jong Hyok, so he stays presumed POW.",
            (
                AcknowledgeParty(
                    "KP",
                    "co-belligerent of the Russian Federation",
                    "official acknowledgement by the DPRK and the Russian Federation, 2025-04-28",
                ),
            ),
            {**same(Expect(status="POW"), JO, KANG, KIM, PAK, CHOE, HAN, RYU), JONG: Expect(status="PRESUMED_POW")},
        ),
        Step(
            date(2025, 5, 13),
            "An Art. 5 tribunal rules on Jong Hyok",
            "Notice in Korean, a hearing with an interpreter, written reasons: the ruling overrides the presumption. "
            "The force it found him to belong to is recorded.",
            (
                Article5Tribunal(
                    JONG,
                    convened_on=date(2025, 5, 2),
                    heard_on=date(2025, 5, 9),
                    outcome="POW",
                    written_reasons="his unit, commander and orders establish membership of the KPA, "
                    "whatever the papers he was issued",
                    evidence=("capture report 2025-01-22/3", "unit roster found with Han Chol"),
                ),
                EstablishForce(
                    JONG,
                    KPA_IN_RUSSIAN_FORCES,
                    "the Art. 5 tribunal's findings of 2025-05-13: unit roster found with Han Chol",
                ),
            ),
            {JONG: Expect(status="POW")},
        ),
        Step(
            date(2025, 5, 16),
            "Istanbul: a 1,000-for-1,000 exchange agreed with Russia",
            "Coordination headquarters lists all eight; the list is checked as a whole, and only those who may "
            "lawfully go are proposed. One officer proposes, another approves.",
            (
                DraftExchangeList(
                    "istanbul",
                    "RU",
                    "Istanbul, 2025-05-16: 1,000 for 1,000 (GC III Art. 6 special agreement)",
                    SOLDIERS,
                ),
            ),
            {HAN: Expect(exchange=("D3", "D4"))},
        ),
        Step(
            date(2025, 5, 20),
            "Choe Yong-nam's face on television",
            "Footage of the men to be exchanged is broadcast, his face shown (GC III Art. 13(2): no public "
            "curiosity). The DPRK now knows he was taken alive: the assessments of the DPRK, and of Russia, which "
            "would hand him on there, are stale until he is assessed again.",
            (RecordExposure(CHOE, "IMAGES_PUBLISHED", "national television", BROADCAST),),
            {CHOE: Expect(exchange=("D4",))},
        ),
        Step(
            date(2025, 5, 21),
            "The ICRC hears the men on the list again",
            "Nobody is handed over on an old wish: the wish a hand-over rests on must have been heard in a "
            "private interview within 30 days of it (rule D17). The delegate sees each approved man alone "
            "again; each still wants to go home.",
            (home_wish(PAK), home_wish(CHOE)),
            {**same(Expect(wish="REPATRIATE", verified=True), PAK, CHOE)},
        ),
        Step(
            date(2025, 5, 23),
            "The exchange is carried out",
            "At the moment of hand-over the rules run again for every approved entry: those eligible now leave "
            "custody; the others stay, with the reasons.",
            (CarryOutExchange("istanbul"),),
            {PAK: Expect(custody="ENDED", exchange=("D1",)), CHOE: Expect(custody="INTERNED", exchange=("D4",))},
        ),
        Step(
            date(2025, 6, 3),
            "Choe Yong-nam assessed again",
            "The fresh assessment finds what the broadcast did: a real risk in the DPRK, and so in Russia, which "
            "would hand him on. He stays interned, protected, until it is safe or he chooses otherwise.",
            (
                AssessRisks(
                    CHOE,
                    (
                        Risk(
                            "KP",
                            "REAL_RISK",
                            "shown on television as a soldier taken alive, against orders to die; " + HOME_RISK,
                        ),
                        SENT_ON,
                    ),
                ),
            ),
            {CHOE: Expect(exchange=("D4",))},
        ),
        Step(
            date(2025, 6, 10),
            "South Korea claims Jo Kwang-chol and gives its assurance",
            "The Republic of Korea's liaison sees only the captive who asked to go there and consented; it claims "
            "him as a national (Constitution Art. 3). The detaining state records Seoul's assurance.",
            (
                PartnerLooksUp("KR"),
                ClaimAsNational(JO, "KR", "Constitution of the Republic of Korea, Art. 3"),
                CheckTransfer(JO, "KR"),
                StateAssures(
                    "KR",
                    "diplomatic note of the Ministry of Foreign Affairs and the Ministry of Unification; "
                    "assessed as willing and able to apply GC III",
                    accepts_for_resettlement=True,
                ),
                CheckTransfer(JO, "KR"),
            ),
        ),
        Step(
            date(2025, 6, 23),
            "The ICRC hears Jo Kwang-chol again",
            "Three months after his first interview, the delegate sees him alone again before his transfer: "
            "he still asks to go to the Republic of Korea.",
            (
                DeclareWish(
                    JO,
                    "THIRD_STATE",
                    "PRIVATE_ICRC_INTERVIEW",
                    PRIVATE,
                    "still wants to live in the Republic of Korea",
                    third_state="KR",
                ),
            ),
            {JO: Expect(wish="THIRD_STATE KR", verified=True)},
        ),
        Step(
            date(2025, 6, 24),
            "Art. 12 transfer of Jo Kwang-chol to the Republic of Korea approved",
            "Proposed by one officer, approved by another, the rules checked at each step.",
            (ProposeArt12Transfer(JO, "KR"),),
        ),
        Step(
            date(2025, 6, 25),
            "Proceedings opened against Jo Kwang-chol",
            "A witness statement names him in the killing of a Ukrainian soldier who had laid down his arms. "
            "While proceedings are pending he may be kept back (GC III Arts. 115, 119(5)).",
            (
                Proceedings(
                    JO,
                    PROCEEDINGS,
                    WAR_CRIMES_DEPARTMENT,
                    offence="suspected of killing a Ukrainian soldier hors de combat near Korenevo on 2025-01-08",
                ),
            ),
            {JO: Expect(exchange=("D3", "D4", "D7"))},
        ),
        Step(
            date(2025, 6, 26),
            "The hand-over to South Korea is refused",
            "The approval stood; the facts changed. At the moment of hand-over the rules run again and refuse it: "
            "the refusal and its reasons are recorded, naming who tried, and he stays in custody.",
            (HandOver(JO, "KR"),),
            {JO: Expect(custody="INTERNED")},
        ),
        Step(
            date(2025, 7, 15),
            "The proceedings are closed",
            "The witness identified a soldier of another unit; the prosecutor discontinues the case.",
            (
                Proceedings(
                    JO,
                    PROCEEDINGS,
                    WAR_CRIMES_DEPARTMENT,
                    outcome="discontinued: the witness identified a soldier of another unit, which reached "
                    "Korenevo before Jo Kwang-chol's",
                ),
            ),
            {JO: Expect(exchange=("D3", "D4"))},
        ),
        Step(
            date(2025, 7, 17),
            "Jo Kwang-chol is handed over to the Republic of Korea",
            "The same approved transfer, the rules run again at this moment: nothing blocks it now.",
            (HandOver(JO, "KR"),),
            {JO: Expect(custody="ENDED")},
        ),
    ),
)


# -- talking to the services --------------------------------------------------------------------


class DemoFailed(Exception):
    """The demo cannot go on; the message says why and what to do."""


PURPOSE = "captives demo: loading the synthetic scenario"


class Services:
    """The three services over HTTP, each step with the token of the person who takes it
    (Keycloak's password grant, with the realm's generated passwords)."""

    def __init__(self, urls: Mapping[str, str], credentials: Credentials):
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.credentials = credentials
        self.http = {name: httpx.Client(base_url=url, timeout=30) for name, url in self.urls.items()}
        self.sources: dict[str, TokenSource] = {}

    def close(self) -> None:
        for client in self.http.values():
            client.close()

    def send(self, service: str, method: str, path: str, **request) -> httpx.Response:
        for _ in range(6):
            try:
                answer = self.http[service].request(method, path, **request)
            except httpx.TransportError as error:
                raise DemoFailed(
                    f"cannot reach {service} at {self.urls[service]} ({type(error).__name__}): is the stack up "
                    "(`make up`)? Other ports: --intake-url, --status-url, --disposition-url"
                ) from None
            if answer.status_code != 429:  # over the agency's rate: wait as told
                return answer
            time.sleep(min(float(answer.headers.get("Retry-After", "1")), 10))
        return answer

    def token(self, who: Officer | str) -> str:
        """A person's token (an Officer) or a system's (a client id)."""
        name = who.username if isinstance(who, Officer) else who
        if name not in self.sources:
            try:
                self.sources[name] = (
                    self.credentials.person(name) if isinstance(who, Officer) else self.credentials.client(name)
                )
            except KeyError as error:
                raise DemoFailed(f"{error.args[0]}: is this the credentials file of this stack's realm?") from None
        try:
            return self.sources[name].token()
        except NoToken as error:
            raise DemoFailed(
                f"{error}: are these the credentials of this stack's Keycloak? `captives up --var DIR` writes "
                "them to DIR/keycloak/credentials.json"
            ) from None

    def headers(self, who: Officer | str, key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token(who)}",
            "X-Purpose": PURPOSE,  # the access log records why each sensitive read was made
        }
        return headers | ({"Idempotency-Key": key} if key else {})

    def write(self, service: str, path: str, body: dict | None, *, by: Officer, key: str) -> httpx.Response:
        answer = self.send(service, "POST", path, json=body or {}, headers=self.headers(by, key))
        if answer.status_code == 422 and "Idempotency-Key" in detail(answer):
            raise DemoFailed(
                "this stack holds an earlier version of the demo scenario (a step's key was used for "
                "another request): load it into a fresh stack, e.g. `captives up --var /tmp/demo-var`"
            )
        return answer

    def read(self, service: str, path: str, *, by: Officer | str = READER, params: dict | None = None) -> Any:
        """The JSON answer, or None for a 404."""
        answer = self.send(service, "GET", path, params=params, headers=self.headers(by))
        if answer.status_code == 404:
            return None
        return succeeded(answer, f"GET {service} {path}").json()


def detail(answer: httpx.Response) -> str:
    try:
        found = answer.json().get("detail", answer.text)
    except (ValueError, AttributeError):
        found = answer.text
    return found if isinstance(found, str) else json.dumps(found)


def succeeded(answer: httpx.Response, what: str) -> httpx.Response:
    if answer.status_code >= 300:
        raise DemoFailed(f"{what} was refused: {answer.status_code} {detail(answer)}")
    return answer


# -- what the services show of a captive ---------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """One captive as the disposition service shows him (it hears of everything last)."""

    status: str | None = None
    decided_by: str | None = None  # the decisive rule: id, article, finding
    custody: str | None = None
    wish: str | None = None
    verified: bool | None = None
    exchange: tuple[str, ...] | None = None  # rules blocking exchange with the counterpart; None: not yet asked
    exchange_why: tuple[str, ...] = ()

    def shows(self, expect: Expect) -> bool:
        wanted = {name: value for name, value in vars(expect).items() if value is not None}
        return all(getattr(self, name) == value for name, value in wanted.items())


EVENT_REFERENCE = re.compile(r" \(event [^)]*\)|; [a-z ]*event [0-9a-f-]{36}")
EVENT_ID = re.compile(r"event ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def plain(text: str) -> str:
    """A rule's finding as people read it: without the event ids (the API's answers have them)."""
    return EVENT_REFERENCE.sub("", text).removeprefix("BLOCKED: ").removeprefix("satisfied: ")


def finding(rule: Mapping[str, str]) -> str:
    return f"{rule['rule_id']} {plain(rule['finding'])}"


def picture_of(services: Services, captive_id: str, counterpart: str) -> Picture:
    captive = services.read("disposition", f"/v1/captives/{captive_id}")
    # His registration may not have reached disposition yet (his status may arrive first).
    if captive is None or not captive["registered"]:
        return Picture()
    eligibility = services.read("disposition", f"/v1/captives/{captive_id}/eligibility")
    if eligibility is None:
        return Picture()
    answers = eligibility["counterparts"]
    status = captive["status"] or {"rules": []}
    decisive = status["rules"][-1] if status["rules"] else None
    home = answers.get(captive["nationality"]) or next(iter(answers.values()), {"facts": []})
    facts = {fact["name"]: fact["value"] for fact in home["facts"]}
    said = facts.get("verified_wish") or facts.get("unverified_statement")
    towards = answers.get(counterpart)
    blocked = [rule for rule in towards["reasons"] if rule["finding"].startswith("BLOCKED")] if towards else []
    return Picture(
        status=status.get("status"),
        decided_by=f"{decisive['rule_id']} {decisive['article']}: {plain(decisive['finding'])}" if decisive else None,
        custody=captive["custody"],
        # His standing verified wish; failing one, the latest statement that verifies nothing.
        wish=said.replace(" to ", " ") if said else None,
        verified=bool(facts.get("verified_wish")) if said else None,
        exchange=tuple(rule["rule_id"] for rule in blocked) if towards else None,
        exchange_why=tuple(finding(rule) for rule in blocked),
    )


def changes(before: Picture, after: Picture, counterpart: str) -> list[str]:
    """What changed between two pictures of one captive, in the domain's words (rich markup)."""
    lines = []
    if (before.status, before.decided_by) != (after.status, after.decided_by):
        lines.append(
            f"status {before.status or '—'} → [bold]{after.status}[/]  [dim]{escape(after.decided_by or '')}[/]"
        )
    if (before.wish, before.verified) != (after.wish, after.verified):
        lines.append(f"wish {wish_text(before)} → [bold]{wish_text(after)}[/]")
    if (before.exchange, before.exchange_why) != (after.exchange, after.exchange_why):
        lines.append(f"exchange with {counterpart}: {exchange_text(before)} → [bold]{exchange_text(after)}[/]")
        lines += [f"  [dim]{escape(why)}[/]" for why in after.exchange_why if why not in before.exchange_why]
    if before.custody != after.custody and before.custody is not None:
        lines.append(f"custody {before.custody} → [bold]{after.custody}[/]")
    return lines


def wish_text(picture: Picture) -> str:
    if picture.wish is None:
        return "—"
    return f"{picture.wish} ({'verified' if picture.verified else 'not verified'})"


def exchange_text(picture: Picture) -> str:
    if picture.exchange is None:
        return "—"
    return "eligible" if not picture.exchange else "blocked by " + ", ".join(picture.exchange)


# -- the runner ---------------------------------------------------------------------------------


@dataclass
class Loaded:
    """What a run loaded: the captives' case references, the exchange lists by name, the
    transfers, and what the rules refused at the moment of hand-over."""

    captives: dict[Soldier, str] = field(default_factory=dict)
    lists: dict[str, str] = field(default_factory=dict)
    transfers: dict[Soldier, str] = field(default_factory=dict)
    withheld: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by list: entries kept back at execution
    refusals: list[tuple[Soldier, str]] = field(default_factory=list)  # each refused step: whose, its event
    seconds: float = 0.0


class Run:
    """One pass through a scenario: performs its steps and keeps the last picture of each captive."""

    def __init__(self, scenario: Scenario, services: Services, console: Console, *, wait_s: float = 60):
        self.scenario = scenario
        self.services = services
        self.console = console
        self.wait_s = wait_s
        self.loaded = Loaded()
        self.pictures: dict[Soldier, Picture] = {}
        self.replays: list[bool] = []  # one per write of the current step
        self.unsaid_replay = False
        self.named: dict[str, str] = {}  # event id -> how the story calls the fact it records

    def words(self, text: str) -> str:
        """A finding with the events the scenario recorded called by what they are."""
        return EVENT_ID.sub(lambda found: self.named.get(found.group(1), found.group(0)), text)

    # writing, with a key that makes the step safe to repeat

    def write(self, service: str, path: str, body: dict | None, *, by: Officer, key: str, what: str) -> dict:
        return succeeded(self.send(service, path, body, by=by, key=key), what).json()

    def attempt(
        self, service: str, path: str, body: dict | None, *, by: Officer, key: str, what: str
    ) -> tuple[bool, dict]:
        """A step the rules may refuse at this moment: (True, answer), or (False, the refusal
        with `blocked_by` and `refusal_event_id`) for a 409 that recorded one."""
        answer = self.send(service, path, body, by=by, key=key)
        if answer.status_code == 409 and "refusal_event_id" in answer.json():
            return False, answer.json()
        return True, succeeded(answer, what).json()

    def send(self, service: str, path: str, body: dict | None, *, by: Officer, key: str) -> httpx.Response:
        answer = self.services.write(service, path, body, by=by, key=f"demo/{self.scenario.name}/{key}")
        replayed = answer.headers.get("Idempotent-Replayed") == "true"
        self.replays.append(replayed)
        self.unsaid_replay = self.unsaid_replay or replayed
        return answer

    def captive(self, soldier: Soldier) -> str:
        return self.loaded.captives[soldier]

    def name_of(self, captive_id: str) -> str:
        return next((soldier.name for soldier, cid in self.loaded.captives.items() if cid == captive_id), captive_id)

    @property
    def counterpart(self) -> str:
        return self.scenario.counterpart

    def say(self, what: str) -> None:
        """One line about what was just done; marked if the services replayed it from an earlier run."""
        replayed = " [dim](replayed)[/]" if self.unsaid_replay else ""
        self.unsaid_replay = False
        self.console.print(f" • {what}{replayed}", highlight=False)

    # the steps

    def perform(self) -> Loaded:
        started = time.perf_counter()
        self.preflight()
        for step in self.scenario.steps:
            self.step(step)
        self.loaded.seconds = time.perf_counter() - started
        self.summary()
        return self.loaded

    def preflight(self) -> None:
        """The story needs a conflict record holding only the scenario's own facts: a state
        acknowledged as a party by someone else would already be in force for its captives."""
        ours = {
            (getattr(action, "state", None), action.source)
            for step in self.scenario.steps
            for action in step.actions
            if isinstance(action, ConflictBegins | AcknowledgeParty)
        }
        foreign = [
            fact
            for fact in self.services.read("status", "/v1/conflict-facts")
            if (fact.get("state"), fact.get("source")) not in ours
        ]
        if foreign:
            found = "; ".join(
                f"{fact['kind']} {fact.get('state') or ''} from {fact['effective_at']}" for fact in foreign
            )
            raise DemoFailed(
                f"this stack already records conflict facts the demo did not ({found}); the scenario needs a "
                "stack of its own: `captives up --var /tmp/demo-var`, then "
                "`captives demo --credentials /tmp/demo-var/auth/demo-credentials.json`"
            )

    def step(self, step: Step) -> None:
        self.console.rule(f"[bold]{step.on.isoformat()}[/]  {escape(step.title)}", align="left")
        self.console.print(escape(step.story), style="italic")
        self.replays = []
        concerned: set[Soldier] = set()
        for action in step.actions:
            PERFORM[type(action)](self, step, action)
            concerned |= set(soldiers_of(action, self))
        if self.replays and all(self.replays):
            self.console.print(
                " [dim]already recorded by an earlier run: the services replayed their first answers and "
                "recorded nothing twice[/]"
            )
            self.refresh(concerned)
            return
        before = {soldier: self.pictures.get(soldier, Picture()) for soldier in concerned}
        self.wait_for(step)
        self.refresh(concerned)
        self.show_changes(before)

    def wait_for(self, step: Step) -> None:
        """Until the services show what the step must change (a bounded wait, with a clear error)."""
        deadline = time.monotonic() + self.wait_s
        pending = dict(step.expect)
        while True:
            seen = {soldier: self.picture(soldier) for soldier in pending}
            pending = {soldier: expect for soldier, expect in pending.items() if not seen[soldier].shows(expect)}
            if not pending:
                return
            if time.monotonic() > deadline:
                soldier, expect = next(iter(pending.items()))
                raise DemoFailed(
                    f"step of {step.on} ({step.title}): after {self.wait_s:.0f} s the disposition service still "
                    f"shows {soldier.name} ({self.captive(soldier)}) with {described(seen[soldier])}; expected "
                    f"{described(expect)}. Are the three services running and connected to Kafka?"
                )
            time.sleep(0.4)

    def picture(self, soldier: Soldier) -> Picture:
        return picture_of(self.services, self.captive(soldier), self.scenario.counterpart)

    def refresh(self, soldiers: set[Soldier]) -> None:
        for soldier in soldiers:
            self.pictures[soldier] = self.picture(soldier)

    def show_changes(self, before: Mapping[Soldier, Picture]) -> None:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("captive", no_wrap=True)
        table.add_column("what changed")
        for soldier in self.scenario.soldiers:
            if soldier in before and (lines := changes(before[soldier], self.pictures[soldier], self.counterpart)):
                table.add_row(f"{soldier.name}\n[dim]{self.captive(soldier)}[/]", self.words("\n".join(lines)))
        if table.row_count:
            self.console.print(table)
        elif before:
            self.console.print(" [dim]no change in status, wishes, exchange eligibility or custody[/]")

    def summary(self) -> None:
        table = Table(title="Where everyone stands", box=box.SIMPLE_HEAD)
        for column in ("captive", "case reference", "status", "custody", f"exchange with {self.counterpart}"):
            table.add_column(column)
        for soldier in self.scenario.soldiers:
            seen = self.pictures[soldier]
            table.add_row(soldier.name, self.captive(soldier), seen.status or "—", seen.custody, exchange_text(seen))
        self.console.print(table)
        stopped = [
            f"{self.name_of(captive_id)} withheld from exchange list {self.loaded.lists[name]}"
            for name, captive_ids in self.loaded.withheld.items()
            for captive_id in captive_ids
        ]
        stopped += [f"{soldier.name}'s hand-over refused (event {event})" for soldier, event in self.loaded.refusals]
        if stopped:
            self.console.print(f"Stopped at the moment of hand-over, with the reasons recorded: {'; '.join(stopped)}.")
        self.console.print(
            f"Demo scenario loaded in {self.loaded.seconds:.1f} s. Ask why with e.g. "
            f"`captives audit timeline {self.captive(self.scenario.soldiers[0])}`.",
            highlight=False,
        )


def described(seen: Picture | Expect) -> str:
    return ", ".join(f"{name} {value}" for name, value in vars(seen).items() if value is not None) or "nothing yet"


def soldiers_of(action: Action, run: Run) -> tuple[Soldier, ...]:
    """The captives an action may change."""
    match action:
        case Register() | DraftExchangeList():
            return action.soldiers
        case ConflictBegins():
            return ()
        case AcknowledgeParty():
            return run.scenario.soldiers
        case CarryOutExchange():
            return next(
                a.soldiers
                for step in run.scenario.steps
                for a in step.actions
                if isinstance(a, DraftExchangeList) and a.name == action.name
            )
        case PartnerLooksUp() | StateAssures():
            return ()
        case _:
            return (action.soldier,)


# -- performing each kind of action (each says what it recorded, one line per fact) --------------


def at(day: date, hour: int = 12) -> str:
    return datetime(day.year, day.month, day.day, hour).isoformat() + "Z"


def by(officer: Officer) -> str:
    return f"[cyan]{escape(officer.name)}[/] [dim]({officer.username})[/]"


def register(run: Run, step: Step, action: Register) -> None:
    for soldier in action.soldiers:
        answer = run.write(
            "intake",
            "/v1/captives",
            registration(soldier, step.on),
            by=INTAKE,
            key=f"register/{soldier.name}",
            what=f"registering {soldier.name}",
        )
        run.loaded.captives[soldier] = answer["captive_id"]
        run.say(
            f"{by(INTAKE)} registers {soldier.name} ({''.join(soldier.hangul)}), {soldier.rank[1]}, captured "
            f"{soldier.captured_at[11:16]} UTC: {answer['captive_id']}"
        )


def registration(soldier: Soldier, on: date) -> dict:
    surname, given = soldier.hangul
    romanised_surname, _, romanised_given = soldier.name.partition(" ")
    born = {"answer": "GIVEN", "value": soldier.born.isoformat()} if soldier.born else {"answer": "DECLINED"}
    return {
        "surname": {"answer": "GIVEN", "value": surname, "romanised": romanised_surname},
        "first_names": {"answer": "GIVEN", "value": given, "romanised": romanised_given},
        "rank": {"answer": "GIVEN", "value": soldier.rank[0], "romanised": soldier.rank[1]},
        "date_of_birth": born,
        "service_number": {"answer": "DECLINED"},
        "nationality": "KP",
        "claimed_affiliation": soldier.affiliation,
        **({"armed_force": armed_force(soldier.armed_force, force_basis(soldier))} if soldier.armed_force else {}),
        "capture": {
            "captured_at": soldier.captured_at,
            "place": soldier.place,
            "capturing_unit": "Special operations unit",
            "circumstances": soldier.circumstances,
            "papers_found": soldier.papers,
        },
        "interview": {"language": "kor", "interpreter": "K. Lee"},
        "occurred_at": at(on, 18),
    }


def armed_force(force: Force, basis: str) -> dict:
    return {
        "force": force.force,
        "force_state": force.force_state,
        "integrated_in_forces_of": force.integrated_in_forces_of,
        "basis": basis,
    }


def force_basis(soldier: Soldier) -> str:
    return f"his own statement at interview; papers found: {soldier.papers}"


def establish_force(run: Run, step: Step, action: EstablishForce) -> None:
    run.write(
        "intake",
        f"/v1/captives/{run.captive(action.soldier)}/force-membership",
        armed_force(action.force, action.basis) | {"occurred_at": at(step.on, 15)},
        by=INTAKE,
        key=f"force/{action.soldier.name}",
        what=f"{action.soldier.name}'s force",
    )
    embedded = f", embedded in the forces of {action.force.integrated_in_forces_of}"
    run.say(
        f"{by(INTAKE)} records {action.soldier.name} a member of the {action.force.force} "
        f"({action.force.force_state}{embedded if action.force.integrated_in_forces_of else ''}): {action.basis}"
    )


def record_exposure(run: Run, step: Step, action: RecordExposure) -> None:
    body = {"kind": action.kind, "outlet": action.outlet, "details": action.details, "occurred_at": at(step.on, 20)}
    recorded = run.write(
        "intake",
        f"/v1/captives/{run.captive(action.soldier)}/media-exposures",
        body,
        by=INTAKE,
        key=f"exposure/{action.soldier.name}/{step.on}",
        what=f"{action.soldier.name}'s exposure",
    )
    run.named[recorded["event_id"]] = f"the {action.outlet} exposure of {step.on}"
    run.say(f"{by(INTAKE)} records {action.kind.replace('_', ' ').lower()} by {action.outlet}: {action.details}")


def proceedings(run: Run, step: Step, action: Proceedings) -> None:
    body = {
        "proceedings_id": action.proceedings_id,
        "stage": action.stage,
        "court": action.court,
        **({"offence": action.offence} if action.offence else {}),
        **({"outcome": action.outcome} if action.outcome else {}),
        "occurred_at": at(step.on, 10),
    }
    run.write(
        "intake",
        f"/v1/captives/{run.captive(action.soldier)}/prosecutions",
        body,
        by=INTAKE,
        key=f"proceedings/{action.proceedings_id}/{action.stage}",
        what=f"the proceedings against {action.soldier.name}",
    )
    what = f"opened: {action.offence}" if action.stage == "OPENED" else f"closed: {action.outcome}"
    run.say(f"{by(INTAKE)} records proceedings {action.proceedings_id} ({action.court}) {what}")


def declare_wish(run: Run, step: Step, action: DeclareWish) -> None:
    captive_id, private = run.captive(action.soldier), action.setting == "PRIVATE_ICRC_INTERVIEW"
    interviewer, agency = action.interviewer
    provenance = {
        "interviewer": interviewer,
        "interviewer_agency": agency,
        "setting": action.setting,
        "free_and_informed": private,
        **({"interpreter": "K. Lee"} if private else {}),
    }
    body = {"wish": action.wish, "statement": action.statement, "provenance": provenance, "occurred_at": at(step.on)}
    recorded = run.write(
        "intake",
        f"/v1/captives/{captive_id}/wishes",
        body | ({"third_state": action.third_state} if action.third_state else {}),
        by=ICRC,
        key=f"wish/{action.soldier.name}/{step.on}",
        what=f"{action.soldier.name}'s wish",
    )
    heard = "a private ICRC interview" if private else "a media interview"
    run.named[recorded["event_id"]] = f"his {heard.removeprefix('a ')} of {step.on}"
    run.say(f"{by(ICRC)} records {action.soldier.name}'s wish from {heard}: {action.statement}")
    if state := action.consents_to_disclosure_to:
        consent = {
            "recipient_state": state,
            "given": True,
            "purpose": f"his request to be transferred to {state}",
            "provenance": provenance,
            "occurred_at": at(step.on),
        }
        run.write(
            "intake",
            f"/v1/captives/{captive_id}/disclosure-consents",
            consent,
            by=ICRC,
            key=f"consent/{action.soldier.name}/{state}",
            what=f"{action.soldier.name}'s consent",
        )
        run.say(f"{by(ICRC)} records his consent to the disclosure of his case to {state}")


def assess_risks(run: Run, step: Step, action: AssessRisks) -> None:
    for risk in action.risks:
        assessment = {
            "destination": risk.destination,
            "outcome": risk.outcome,
            # Every assessment says whether the state would hand him on (an open question blocks).
            "would_hand_on": bool(risk.hands_on_to),
            "onward_states": list(risk.hands_on_to),
            "assessor": LEGAL.name,
            "basis": risk.basis,
            "diplomatic_assurances": risk.diplomatic_assurances,
            "occurred_at": at(step.on),
        }
        run.write(
            "disposition",
            f"/v1/captives/{run.captive(action.soldier)}/risk-assessments",
            assessment,
            by=LEGAL,
            key=f"risk/{action.soldier.name}/{risk.destination}/{step.on}",
            what=f"the risk assessment of {action.soldier.name} in {risk.destination}",
        )
    run.say(f"{by(LEGAL)} assesses {action.soldier.name}: {'; '.join(map(risk_text, action.risks))}")


def risk_text(risk: Risk) -> str:
    found = f"{risk.destination} {risk.outcome.replace('_', ' ').lower()}"
    if risk.diplomatic_assurances:
        found += " despite diplomatic assurances"
    if risk.hands_on_to:
        return found + f" itself, but would hand him on to {', '.join(risk.hands_on_to)}"
    return found + ", would not hand him on"


def conflict_begins(run: Run, step: Step, action: ConflictBegins) -> None:
    fact = {"kind": "CONFLICT_INTERNATIONAL", "source": action.source, "occurred_at": at(step.on, 0)}
    run.write("status", "/v1/conflict-facts", fact, by=LEGAL, key="conflict/international", what="the fact")
    run.say(f"{by(LEGAL)} records an international armed conflict from {step.on}: {action.source}")


def acknowledge_party(run: Run, step: Step, action: AcknowledgeParty) -> None:
    fact = {
        "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
        "state": action.state,
        "role": action.role,
        "source": action.source,
        "occurred_at": at(step.on, 0),
    }
    answer = run.write(
        "status", "/v1/conflict-facts", fact, by=LEGAL, key=f"conflict/{action.state}/party", what="the fact"
    )
    run.say(
        f"{by(LEGAL)} records {action.state} acknowledged as a party ({action.role}) from {step.on}: "
        f"{answer['decisions_changed']} status decisions changed"
    )


def article5_tribunal(run: Run, step: Step, action: Article5Tribunal) -> None:
    base, key = f"/v1/captives/{run.captive(action.soldier)}/tribunal", f"tribunal/{action.soldier.name}"
    convening = {
        "tribunal": "Art. 5 tribunal no. 1",
        "notice_language": "kor",
        "notice_to_captive": "written notice in Korean, read aloud by the interpreter",
        "occurred_at": at(action.convened_on),
    }
    run.write("status", f"{base}/convening", convening, by=LEGAL, key=f"{key}/convening", what="convening")
    run.say(f"{by(LEGAL)} convenes an Art. 5 tribunal on {action.convened_on}, notice given in Korean")
    hearing = {
        "interpreter": "K. Lee",
        "captive_present": True,
        "proceedings_language": "ukr",
        "captive_language": "kor",
        "evidence_refs": list(action.evidence),
        "occurred_at": at(action.heard_on),
    }
    run.write("status", f"{base}/hearings", hearing, by=TRIBUNAL, key=f"{key}/hearing", what="the hearing")
    run.say(f"{by(TRIBUNAL)} hears {action.soldier.name} on {action.heard_on}, present, with an interpreter")
    ruling = {"outcome": action.outcome, "written_reasons": action.written_reasons, "occurred_at": at(step.on)}
    run.write("status", f"{base}/ruling", ruling, by=TRIBUNAL, key=f"{key}/ruling", what="the ruling")
    run.say(f"{by(TRIBUNAL)} rules {action.outcome}: {action.written_reasons}")


def draft_exchange_list(run: Run, step: Step, action: DraftExchangeList) -> None:
    key = f"list/{action.name}"
    entries = [run.captive(soldier) for soldier in action.soldiers]
    body = {"counterpart_state": action.counterpart, "agreement": action.agreement, "captive_ids": entries}
    body["occurred_at"] = at(step.on, 13)
    created = run.write("disposition", "/v1/exchange-lists", body, by=PROPOSER, key=f"{key}/create", what="the list")
    list_id = run.loaded.lists[action.name] = created["list_id"]
    run.say(f"{by(PROPOSER)} drafts exchange list {list_id} with {action.counterpart}: {len(entries)} entries")
    path = f"/v1/exchange-lists/{list_id}"

    def list_step(name: str, hour: int, who: Officer, what: str) -> dict:
        # Each step is recorded as of the story's day: the rules run as of then (a step recorded late).
        body = {"occurred_at": at(step.on, hour)}
        return run.write("disposition", f"{path}/{name}", body, by=who, key=f"{key}/{name}", what=what)

    checked = list_step("check", 14, PROPOSER, "the check")
    run.say(f"{by(PROPOSER)} checks it as a whole: {checked['eligible']} eligible, {checked['blocked']} refused")
    show_check(run, action, checked["results"])
    proposed = list_step("proposal", 15, PROPOSER, "proposal")
    run.say(f"{by(PROPOSER)} proposes the {proposed['proposed']} eligible entries")
    list_step("approval", 16, APPROVER, "the approval")
    run.say(f"{by(APPROVER)} approves, a second person, after the rules are checked again")


def show_check(run: Run, action: DraftExchangeList, results: list[dict]) -> None:
    show_entries(run, results, f"exchange with {action.counterpart}", "[red]refused[/]")


def show_entries(run: Run, results: list[dict], heading: str, blocked: str) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("entry", heading, "why not"):
        table.add_column(column, no_wrap=column == "entry")
    for result in results:
        verdict = "[green]eligible[/]" if result["eligible"] else blocked
        why = "\n".join(finding(rule) for rule in result["blocked_by"])
        table.add_row(run.name_of(result["captive_id"]), verdict, escape(run.words(why)))
    run.console.print(table)


def carry_out_exchange(run: Run, step: Step, action: CarryOutExchange) -> None:
    list_id = run.loaded.lists[action.name]
    path, key = f"/v1/exchange-lists/{list_id}/execution", f"list/{action.name}/execution"
    done = run.write("disposition", path, {"occurred_at": at(step.on, 14)}, by=PROPOSER, key=key, what="the exchange")
    withheld = done["withheld"]
    run.loaded.withheld[action.name] = tuple(result["captive_id"] for result in withheld)
    run.say(
        f"{by(PROPOSER)} records exchange list {list_id} carried out, the rules run again for each approved "
        f"entry: {done['exchanged']} exchanged, {len(withheld)} withheld"
    )
    if withheld:
        show_entries(run, withheld, "at the hand-over", "[red]withheld[/], stays in custody")


def partner_looks_up(run: Run, step: Step, action: PartnerLooksUp) -> None:
    soldiers = run.scenario.soldiers
    seen = [s for s in soldiers if run.services.read("intake", f"/v1/captives/{run.captive(s)}", by=KR_LIAISON)]
    run.say(
        f"{by(KR_LIAISON)} looks up all {len(soldiers)}: sees {', '.join(s.name for s in seen) or 'no one'}; "
        f"for the other {len(soldiers) - len(seen)} the answer is 'no captive' (404)"
    )


def claim_as_national(run: Run, step: Step, action: ClaimAsNational) -> None:
    run.write(
        "disposition",
        f"/v1/captives/{run.captive(action.soldier)}/partner-claims",
        {"state": action.state, "basis": action.basis, "occurred_at": at(step.on)},
        by=KR_LIAISON,
        key=f"claim/{action.soldier.name}/{action.state}",
        what=f"{action.state}'s claim",
    )
    run.say(f"{by(KR_LIAISON)} records {action.state}'s claim of {action.soldier.name}: {action.basis}")


def state_assures(run: Run, step: Step, action: StateAssures) -> None:
    assurance = {
        "willing_and_able_to_apply_gc_iii": True,
        "accepts_for_resettlement": action.accepts_for_resettlement,
        "assessment": action.assessment,
        "occurred_at": at(step.on),
    }
    path, key = f"/v1/states/{action.state}/assurances", f"assurance/{action.state}"
    run.write("disposition", path, assurance, by=LEGAL, key=key, what=f"{action.state}'s assurance")
    run.say(f"{by(LEGAL)} records {action.state}'s assurance: willing and able to apply GC III (Art. 12)")


def check_transfer(run: Run, step: Step, action: CheckTransfer) -> None:
    verdict = run.services.read(
        "disposition",
        f"/v1/captives/{run.captive(action.soldier)}/dispositions/check",
        params={"kind": "ART_12_TRANSFER", "destination": action.destination},
        by=PROPOSER,
    )
    blocked = [finding(rule) for rule in verdict["reasons"] if rule["finding"].startswith("BLOCKED")]
    outcome = "[green]allowed[/]" if verdict["allowed"] else f"[red]blocked[/]: {escape(run.words('; '.join(blocked)))}"
    run.say(f"Art. 12 transfer of {action.soldier.name} to {action.destination} now: {outcome}")


def propose_art12_transfer(run: Run, step: Step, action: ProposeArt12Transfer) -> None:
    captive_id, key = run.captive(action.soldier), f"art12/{action.soldier.name}/{action.destination}"
    proposed = run.write(
        "disposition",
        f"/v1/captives/{captive_id}/dispositions",
        {"kind": "ART_12_TRANSFER", "destination": action.destination, "occurred_at": at(step.on, 13)},
        by=PROPOSER,
        key=f"{key}/proposal",
        what="the transfer proposal",
    )
    disposition_id = run.loaded.transfers[action.soldier] = proposed["disposition_id"]
    run.say(f"{by(PROPOSER)} proposes the Art. 12 transfer to {action.destination}: {disposition_id}")
    path = f"/v1/captives/{captive_id}/dispositions/{disposition_id}"
    approval = {"occurred_at": at(step.on, 13)}
    run.write("disposition", f"{path}/approval", approval, by=APPROVER, key=f"{key}/approval", what="the approval")
    run.say(f"{by(APPROVER)} approves it, the rules checked again")


def hand_over(run: Run, step: Step, action: HandOver) -> None:
    soldier = action.soldier
    captive_id, key = run.captive(soldier), f"art12/{soldier.name}/{action.destination}"
    path = f"/v1/captives/{captive_id}/dispositions/{run.loaded.transfers[soldier]}/completion"
    done, answer = run.attempt(
        "disposition",
        path,
        {"occurred_at": at(step.on, 14)},
        by=PROPOSER,
        key=f"{key}/completion/{step.on}",
        what="the hand-over",
    )
    if done:
        to = action.destination
        run.say(f"{by(PROPOSER)} hands {soldier.name} over to {to}, the rules run again: he leaves custody")
        return
    run.loaded.refusals.append((soldier, answer["refusal_event_id"]))
    run.say(
        f"{by(PROPOSER)} tries to hand {soldier.name} over to {action.destination}: [bold red]refused[/] (409), "
        f"the refusal recorded as event {answer['refusal_event_id']}"
    )
    show_refusal(run, answer["blocked_by"])


def show_refusal(run: Run, blocked_by: list[dict]) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("blocked by", "article", "why"):
        table.add_column(column, no_wrap=column != "why")
    for rule in blocked_by:
        table.add_row(f"[red]{rule['rule_id']}[/]", rule["article"], escape(run.words(plain(rule["finding"]))))
    run.console.print(table)


PERFORM: dict[type, Callable[[Run, Step, Any], None]] = {
    Register: register,
    DeclareWish: declare_wish,
    AssessRisks: assess_risks,
    ConflictBegins: conflict_begins,
    AcknowledgeParty: acknowledge_party,
    Article5Tribunal: article5_tribunal,
    EstablishForce: establish_force,
    RecordExposure: record_exposure,
    Proceedings: proceedings,
    DraftExchangeList: draft_exchange_list,
    CarryOutExchange: carry_out_exchange,
    PartnerLooksUp: partner_looks_up,
    ClaimAsNational: claim_as_national,
    StateAssures: state_assures,
    CheckTransfer: check_transfer,
    ProposeArt12Transfer: propose_art12_transfer,
    HandOver: hand_over,
}


# -- entry points -------------------------------------------------------------------------------


def service_urls(**given: str | None) -> dict[str, str]:
    """Each service's URL: as given, else from its settings (<SERVICE>_HOST/_PORT, as `captives up`)."""
    from services.disposition.app import DispositionSettings
    from services.intake.app import IntakeSettings
    from services.status.app import StatusSettings

    urls = {}
    for name, settings in (
        ("intake", IntakeSettings),
        ("status", StatusSettings),
        ("disposition", DispositionSettings),
    ):
        if given.get(name):
            urls[name] = given[name]
        else:
            found = settings()
            urls[name] = f"http://{found.host}:{found.port}"
    return urls


def load_credentials(path: Path) -> Credentials:
    if not path.exists():
        raise DemoFailed(
            f"no realm credentials at {path}: `make up` (captives up) writes them there; "
            "for a stack started with --var DIR, pass --credentials DIR/keycloak/credentials.json"
        )
    return Credentials.read(path)


def run_demo(
    urls: Mapping[str, str],
    credentials: Credentials,
    *,
    console: Console | None = None,
    scenario: Scenario = SCENARIO,
    wait_s: float = 60,
) -> Loaded:
    """Load `scenario` into the running services and print what changed at each step."""
    services = Services(urls, credentials)
    try:
        return Run(scenario, services, console or Console(), wait_s=wait_s).perform()
    finally:
        services.close()
