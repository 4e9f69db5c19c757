"""The demo's story (tools/demo/__init__.py): fictional people on the real timeline of 2025, as data."""

from __future__ import annotations

from datetime import date

from tools.demo.steps import (
    ELIGIBLE,
    KPA_IN_RUSSIAN_FORCES,
    AcknowledgeParty,
    Article5Tribunal,
    AssessRisks,
    CarryOutExchange,
    CheckTransfer,
    ClaimAsNational,
    ConflictBegins,
    DeclareWish,
    DraftExchangeList,
    EstablishForce,
    Expect,
    HandOver,
    Officer,
    PartnerLooksUp,
    Proceedings,
    ProposeArt12Transfer,
    RecordExposure,
    Register,
    Risk,
    Scenario,
    Soldier,
    StateAssures,
    Step,
)

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
