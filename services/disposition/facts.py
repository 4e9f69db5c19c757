"""What the disposition rules may read about a captive at one moment, folded from dated facts
(pure; no I/O, no clock).

Every fact disposition learns (from intake's and status's topics and from its own events) is
kept as a `Dated` row: when it takes effect and when it was recorded. The facts of a captive
"as of T, as known at K" are the fold of those in effect at T and recorded by K, so an answer
about a past date never uses what happened later, and an audit can ask what we knew then
(docs/legal-basis.md, "Bitemporal answers").

How each kind of fact is read is a legal choice, made here once:
- a wish counts only when verified (a private ICRC interview judged free and informed); it stands
  until another verified wish replaces it; media and other statements are kept for the trace and
  never override it (BRIEF section 4);
- the newest risk assessment by its own date stands for each destination, whatever the order in
  which assessments were recorded; an exposure (Art. 13(2)) or a wish to defect made public makes
  older assessments of the states concerned stale (BRIEF section 3);
- hostilities cease and resume per party, each from its date; a cessation dated before his
  capture does not concern him (he was taken in hostilities after it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.contracts.disposition import RiskOutcome
from shared.contracts.intake import InterviewSetting, MovementKind, Wish

# ConflictFactKind values (shared/contracts/status.py) the repatriation rules read.
CEASED, RESUMED = "HOSTILITIES_CEASED", "HOSTILITIES_RESUMED"

# Which events are kept as facts, and what of each: services/disposition/projections.py (FACT_FIELDS).


@dataclass(frozen=True)
class Dated:
    """One fact: its event, when it takes effect, when it was recorded, and what rules read of it."""

    event_id: str
    kind: str
    effective_at: datetime
    recorded_at: datetime
    data: Mapping
    order: int = 0  # the stream version, for two facts of one stream at the same moment

    def sort_key(self) -> tuple:
        return (self.effective_at, self.recorded_at, self.order, self.event_id)


@dataclass(frozen=True)
class DeclaredWish:
    wish: Wish
    third_state: str | None
    setting: InterviewSetting
    free_and_informed: bool
    event_id: str
    declared_at: datetime | None = None

    @property
    def verified(self) -> bool:
        """Only a private ICRC interview judged free and informed verifies a wish; a media
        interview never does (the captive is exposed and cannot speak freely)."""
        return self.setting is InterviewSetting.PRIVATE_ICRC_INTERVIEW and self.free_and_informed

    def describe(self) -> str:
        return self.wish.value + (f" to {self.third_state}" if self.third_state else "")


@dataclass(frozen=True)
class Risk:
    outcome: RiskOutcome
    would_hand_on: bool | None  # None: the assessment does not say (the onward question is open)
    onward_states: tuple[str, ...]
    diplomatic_assurances: bool
    relies_on_assurances: bool
    event_id: str
    assessed_at: datetime | None = None
    stale_since: str | None = None  # the event that made it stale, if one did


@dataclass(frozen=True)
class Assurance:
    willing_and_able: bool
    accepts_for_resettlement: bool
    neutral_accommodation_agreement: bool
    event_id: str
    repatriation_commission_agreement: bool = False


@dataclass(frozen=True)
class Hostilities:
    """Whether active hostilities had ceased with the parties he fought for, at the moment asked."""

    ceased: bool
    finding: str
    event_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Commission:
    disposition_id: str
    handed_at: datetime
    explanation_days: int
    event_id: str

    @property
    def explanations_end(self) -> datetime:
        return self.handed_at + timedelta(days=self.explanation_days)


@dataclass(frozen=True)
class DispositionFacts:
    captive_id: str
    at: datetime | None = None  # the moment the facts stand for
    captured_at: datetime | None = None
    registration_event_id: str | None = None
    nationality: str | None = None
    force: str | None = None
    force_state: str | None = None  # whose armed forces he belongs to: the Power he depends on
    integrated_in_forces_of: str | None = None
    force_event_id: str | None = None
    status: str | None = None
    status_event_id: str | None = None
    in_custody: bool = True
    custody_event_id: str | None = None  # the event that ended custody, if it ended
    dead: bool = False
    wish: DeclaredWish | None = None  # the standing verified wish
    unverified_wish: DeclaredWish | None = None  # the latest statement that verifies nothing
    risks: Mapping[str, Risk] = field(default_factory=dict)
    seriously_wounded_or_sick: bool = False  # found by a mixed medical commission
    medical_event_id: str | None = None
    assurances: Mapping[str, Assurance] = field(default_factory=dict)
    partner_claims: Mapping[str, str] = field(default_factory=dict)  # state -> event id
    hostilities: Hostilities = Hostilities(False, "no cessation of active hostilities recorded")
    open_prosecutions: Mapping[str, str] = field(default_factory=dict)  # proceedings id -> event id
    commission: Commission | None = None
    exposures: tuple[str, ...] = ()  # events that raised the risk of his return
    used_events: tuple[str, ...] = ()  # every event the fold read

    @property
    def home_state(self) -> str | None:
        """The Power on which he depends: the state of the armed force he belongs to. Never his
        recorded nationality (a KPA soldier may be claimed as a national by South Korea)."""
        return self.force_state

    @property
    def parties(self) -> tuple[str, ...]:
        """The parties he fought for: his force's state and the party he was integrated in."""
        return tuple(state for state in dict.fromkeys((self.force_state, self.integrated_in_forces_of)) if state)


def in_effect(facts: Iterable[Dated], at: datetime, known_at: datetime | None = None) -> list[Dated]:
    """The facts in effect at `at` among those recorded by `known_at` (all, for None), in order."""
    found = [fact for fact in facts if fact.effective_at <= at and (known_at is None or fact.recorded_at <= known_at)]
    return sorted(found, key=Dated.sort_key)


def fold(captive_id: str, facts: Iterable[Dated], at: datetime, known_at: datetime | None = None) -> DispositionFacts:
    """The captive's disposition facts as of `at`, as known at `known_at`."""
    values: dict = {"captive_id": captive_id, "at": at}
    risks: dict[str, Risk] = {}
    assurances: dict[str, Assurance] = {}
    claims: dict[str, str] = {}
    prosecutions: dict[str, str] = {}
    hostilities: list[Dated] = []
    exposures: list[Dated] = []
    used: list[str] = []
    for fact in in_effect(facts, at, known_at):
        used.append(fact.event_id)
        data = fact.data
        match fact.kind:
            case "CaptiveRegistered":
                values.update(
                    captured_at=fact.effective_at if data.get("captured_at") is None else _moment(data["captured_at"]),
                    registration_event_id=fact.event_id,
                    nationality=data.get("nationality"),
                )
                if data.get("armed_force"):
                    values.update(_membership(data["armed_force"], fact.event_id))
            case "ForceMembershipRecorded":
                values.update(_membership(data, fact.event_id))
            case "StatusDetermined":
                values.update(status=data["status"], status_event_id=fact.event_id)
            case "WishDeclared":
                wish = DeclaredWish(
                    Wish(data["wish"]),
                    data.get("third_state"),
                    InterviewSetting(data["setting"]),
                    bool(data["free_and_informed"]),
                    fact.event_id,
                    fact.effective_at,
                )
                if wish.verified:
                    values["wish"] = wish
                else:
                    values["unverified_wish"] = wish
                    if wish.setting is InterviewSetting.MEDIA and wish.wish is not Wish.REPATRIATE:
                        exposures.append(fact)  # a wish to defect made public
            case "MedicalAssessed":
                values.update(
                    seriously_wounded_or_sick=bool(data["seriously_wounded_or_sick"])
                    and bool(data["by_mixed_medical_commission"]),
                    medical_event_id=fact.event_id,
                )
            case "MovementRecorded":
                kind = MovementKind(data["kind"])
                if kind is MovementKind.DIED:
                    values.update(in_custody=False, dead=True, custody_event_id=fact.event_id)
                elif kind in (MovementKind.ESCAPED, MovementKind.RELEASED) and not values.get("dead"):
                    values.update(in_custody=False, custody_event_id=fact.event_id)
                elif kind is MovementKind.RECAPTURED and not values.get("dead"):
                    values.update(in_custody=True, custody_event_id=None)
            case "CustodyEnded":
                values.update(in_custody=False, custody_event_id=fact.event_id, commission=None)
            case "HandedToRepatriationCommission":
                values["commission"] = Commission(
                    data["disposition_id"], fact.effective_at, int(data["explanation_days"]), fact.event_id
                )
            case "ProsecutionRecorded":
                if data["stage"] == "OPENED":
                    prosecutions[data["proceedings_id"]] = fact.event_id
                else:
                    prosecutions.pop(data["proceedings_id"], None)
            case "MediaExposureRecorded":  # identity or images made public (Art. 13(2)), or a wish to defect
                exposures.append(fact)
            case "RiskAssessed":
                # `onward_state` is the older single-state form of "would hand him on to".
                onward = tuple(
                    dict.fromkeys([*(data.get("onward_states") or ()), *filter(None, [data.get("onward_state")])])
                )
                risks[data["destination"]] = Risk(
                    RiskOutcome(data["outcome"]),
                    True if onward else data.get("would_hand_on"),
                    onward,
                    bool(data.get("diplomatic_assurances")),
                    bool(data.get("relies_on_assurances")),
                    fact.event_id,
                    fact.effective_at,
                )
            case "StateAssuranceRecorded":
                assurances[data["state"]] = Assurance(
                    bool(data["willing_and_able_to_apply_gc_iii"]),
                    bool(data.get("accepts_for_resettlement")),
                    bool(data.get("neutral_accommodation_agreement")),
                    fact.event_id,
                    bool(data.get("repatriation_commission_agreement")),
                )
            case "PartnerStateClaimRecorded":
                claims[data["state"]] = fact.event_id
            case "ConflictFactRecorded":
                if data["kind"] in (CEASED, RESUMED):
                    hostilities.append(fact)
    facts_now = DispositionFacts(
        **values,
        assurances=assurances,
        partner_claims=claims,
        open_prosecutions=prosecutions,
        used_events=tuple(used),
    )
    return _with_derived(facts_now, risks, hostilities, exposures)


def _moment(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _membership(data: Mapping, event_id: str) -> dict:
    return dict(
        force=data.get("force"),
        force_state=data.get("force_state"),
        integrated_in_forces_of=data.get("integrated_in_forces_of"),
        force_event_id=event_id,
    )


def _with_derived(
    facts: DispositionFacts, risks: dict[str, Risk], hostilities: list[Dated], exposures: list[Dated]
) -> DispositionFacts:
    return replace(
        facts,
        risks=stale_assessments(facts.home_state, risks, exposures),
        hostilities=hostilities_with(facts.parties, facts.captured_at, hostilities),
        exposures=tuple(exposure.event_id for exposure in exposures),
    )


def stale_assessments(home: str | None, risks: dict[str, Risk], exposures: list[Dated]) -> dict[str, Risk]:
    """Mark the assessments an exposure made stale: those of his home state, and of every state
    that would hand him on to a state concerned, made before the exposure. Without a known home
    state every state that may hand him on is concerned (fail closed)."""
    if not exposures:
        return risks
    concerned = {home} if home else set()
    changed = True
    while changed:  # states that would hand him on to a concerned state are concerned too
        changed = False
        for state, risk in risks.items():
            if state in concerned:
                continue
            if (home is None and risk.would_hand_on is not False) or concerned & set(risk.onward_states):
                concerned.add(state)
                changed = True
    marked = dict(risks)
    for state in concerned & set(risks):
        risk = risks[state]
        later = [e for e in exposures if risk.assessed_at is None or e.effective_at > risk.assessed_at]
        if later:
            marked[state] = replace(risk, stale_since=later[-1].event_id)
    return marked


def hostilities_with(parties: tuple[str, ...], captured_at: datetime | None, facts: list[Dated]) -> Hostilities:
    """Have active hostilities ceased with every party he fought for? Each party's latest
    cessation or resumption (one naming no state concerns every party) decides; a cessation
    dated before his capture does not concern him."""
    if not parties:
        return Hostilities(False, "the party he fought for is not established (no force recorded)")
    findings, events = [], []
    for party in parties:
        concerning = [fact for fact in facts if fact.data.get("state") in (None, party)]
        if not concerning:
            return Hostilities(False, f"no cessation of active hostilities with {party} recorded")
        latest = concerning[-1]
        events.append(latest.event_id)
        if latest.data["kind"] != CEASED:
            return Hostilities(False, f"hostilities with {party} resumed (event {latest.event_id})", tuple(events))
        if captured_at is not None and latest.effective_at <= captured_at:
            return Hostilities(
                False,
                f"the cessation with {party} (event {latest.event_id}) is dated before his capture",
                tuple(events),
            )
        findings.append(f"ceased with {party} on {latest.effective_at.date().isoformat()} (event {latest.event_id})")
    return Hostilities(True, "active hostilities " + "; ".join(findings), tuple(events))
