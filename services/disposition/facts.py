"""What the disposition rules may read about a captive at one moment, folded from dated facts
(pure; no I/O, no clock).

Every fact disposition learns (from intake's and status's topics and from its own events) is
kept as a `Dated` row: when it takes effect and when it was recorded. The facts of a captive
"as of T, as known at K" are the fold of those in effect at T and recorded by K, so an answer
about a past date never uses what happened later, and an audit can ask what we knew then
(docs/legal-basis.md, "Bitemporal answers").

How each kind of fact is read is a legal choice, made here once:
- a fact takes its legal weight from who verifiably recorded it (`standing` in its data, from the
  envelope: shared/contracts/standing.py), never from a field of the request;
- a wish counts only when verified (an ICRC delegate, as herself, recorded a private interview she
  judged free and informed); it stands until another verified wish replaces it, and its date is
  the last time it was confirmed; media and other statements are kept for the trace and never
  override it (BRIEF section 4);
- "seriously wounded or sick" counts only as a member of a mixed medical commission found it;
- fitness to travel: the latest finding that says stands; an admission to hospital leaves it
  unknown (so blocking) until a finding made after it says he is fit; a finding that he is fit
  counts only from a person (an officer or the commission), one that he is not from anyone;
- a "no real risk" assessment or a state's assurance clears him only when an officer of the
  detaining state recorded it as himself; a system's record of either is read as none;
- the newest risk assessment by its own date stands for each destination, whatever the order in
  which assessments were recorded; an exposure (Art. 13(2)) or a wish to defect made public makes
  older assessments of the states concerned stale (BRIEF section 3);
- hostilities cease and resume per party, each from its date, and only in the conflict he is held
  in; a capture dated after a cessation with no resumption is a contradiction for the legal
  officer, never a lifelong block: the cessation applies to him (Art. 118)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.contracts.disposition import RiskOutcome
from shared.contracts.fitness import Fitness, after_admission_to_hospital, after_finding
from shared.contracts.intake import InterviewSetting, MovementKind, Wish
from shared.contracts.standing import Standing, clears, commission_finding, verifies_wish
from shared.contracts.status import DEFAULT_CONFLICT

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
    standing: str | None = None  # who verifiably recorded it (shared/contracts/standing.py)

    @property
    def verified(self) -> bool:
        """Only an ICRC delegate's own record of a private interview judged free and informed
        verifies a wish; a media interview never does (the captive is exposed and cannot speak
        freely), nor does anyone else's record naming a private interview."""
        return verifies_wish(self.standing, self.setting, self.free_and_informed)

    @property
    def claims_verification(self) -> bool:
        """It names a private interview judged free and informed, but its author cannot verify it."""
        return not self.verified and verifies_wish(Standing.ICRC_DELEGATE, self.setting, self.free_and_informed)

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
    commission_explanation_days: int | None = None  # the period the commission's agreement records


@dataclass(frozen=True)
class Hostilities:
    """Whether active hostilities had ceased with the parties he fought for, at the moment asked."""

    ceased: bool
    finding: str
    event_ids: tuple[str, ...] = ()
    contradiction: str | None = None  # for the legal officer: a capture after the cessation


@dataclass(frozen=True)
class ConventionFailure:
    """A receiving Power's failure to carry out the Convention (Art. 12(3)) that no measure has met
    yet, as it stands at the moment asked."""

    state: str
    notified_by: str
    event_id: str
    since: datetime


@dataclass(frozen=True)
class Commission:
    disposition_id: str
    handed_at: datetime
    explanation_days: int
    event_id: str
    referred_at: datetime | None = None  # still undecided when the explanations ended: referred on
    referral_days: int = 0
    referral_event_id: str | None = None

    @property
    def explanations_end(self) -> datetime:
        return self.handed_at + timedelta(days=self.explanation_days)

    @property
    def referral_end(self) -> datetime | None:
        return None if self.referred_at is None else self.referred_at + timedelta(days=self.referral_days)


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
    fitness: Fitness = Fitness()
    conflict: str = DEFAULT_CONFLICT  # the conflict he is held in: only its hostilities concern him
    assurances: Mapping[str, Assurance] = field(default_factory=dict)
    partner_claims: Mapping[str, str] = field(default_factory=dict)  # state -> event id
    hostilities: Hostilities = Hostilities(False, "no cessation of active hostilities recorded")
    open_prosecutions: Mapping[str, str] = field(default_factory=dict)  # judicial proceedings id -> event id
    # Open proceedings the detaining Power consented he leave before their end (Art. 115(2)): id -> event
    consented_proceedings: Mapping[str, str] = field(default_factory=dict)
    commission: Commission | None = None
    transferred_to: str | None = None  # the Power he was transferred to under Art. 12, if he was
    failures: Mapping[str, ConventionFailure] = field(default_factory=dict)  # open Art. 12(3) failures, by state
    exposures: tuple[str, ...] = ()  # events that raised the risk of his return
    used_events: tuple[str, ...] = ()  # every event the fold read

    @property
    def art_12_duty(self) -> ConventionFailure | None:
        """Art. 12(3): he was transferred to a Power that, as notified, fails to carry out the
        Convention in an important respect, and no measure has met that failure yet: the detaining
        state must take effective measures to correct it or request his return."""
        return self.failures.get(self.transferred_to or "")

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
    consents: dict[str, str] = {}
    failures: dict[str, ConventionFailure] = {}
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
                    data.get("standing"),
                )
                if wish.verified:
                    values["wish"] = wish
                else:
                    values["unverified_wish"] = wish
                    if wish.setting is InterviewSetting.MEDIA and wish.wish is not Wish.REPATRIATE:
                        exposures.append(fact)  # a wish to defect made public
            case "MedicalAssessed":
                author = data.get("standing")
                if commission_finding(author, data["by_mixed_medical_commission"]):
                    # The commission's finding stands until the commission finds otherwise.
                    values.update(
                        seriously_wounded_or_sick=bool(data["seriously_wounded_or_sick"]),
                        medical_event_id=fact.event_id,
                    )
                values["fitness"] = after_finding(
                    values.get("fitness", Fitness()),
                    data.get("fit_to_travel"),
                    author,
                    fact.event_id,
                    fact.effective_at,
                )
            case "MovementRecorded":
                kind = MovementKind(data["kind"])
                if kind is MovementKind.HOSPITALISED:
                    values["fitness"] = after_admission_to_hospital(fact.event_id, fact.effective_at)
                if kind is MovementKind.DIED:
                    values.update(in_custody=False, dead=True, custody_event_id=fact.event_id)
                elif kind in (MovementKind.ESCAPED, MovementKind.RELEASED) and not values.get("dead"):
                    values.update(in_custody=False, custody_event_id=fact.event_id)
                elif kind is MovementKind.RECAPTURED and not values.get("dead"):
                    values.update(in_custody=True, custody_event_id=None)
            case "CustodyEnded":
                values.update(in_custody=False, custody_event_id=fact.event_id, commission=None)
                if data.get("kind") == "ART_12_TRANSFER":
                    values["transferred_to"] = data.get("destination")
            case "ConventionFailureRecorded":
                failures[data["state"]] = ConventionFailure(
                    data["state"], data["notified_by"], fact.event_id, fact.effective_at
                )
            case "Art12MeasuresRecorded" if clears(data.get("standing")):
                failures.pop(data["state"], None)  # the duty is met
            case "HandedToRepatriationCommission":
                values["commission"] = Commission(
                    data["disposition_id"], fact.effective_at, int(data["explanation_days"]), fact.event_id
                )
            case "DispositionReferred" if (commission := values.get("commission")) is not None:
                if commission.disposition_id == data["disposition_id"]:
                    values["commission"] = replace(
                        commission,
                        referred_at=fact.effective_at,
                        referral_days=int(data["referral_days"]),
                        referral_event_id=fact.event_id,
                    )
            case "ProsecutionRecorded" if data.get("proceedings_kind") == "DISCIPLINARY":
                pass  # Art. 115(1): a disciplinary punishment never keeps him back
            case "ProsecutionRecorded":
                if data["stage"] == "OPENED":
                    prosecutions[data["proceedings_id"]] = fact.event_id
                    consents.pop(data["proceedings_id"], None)
                else:
                    prosecutions.pop(data["proceedings_id"], None)
            case "ReleaseDuringProceedingsConsented" if clears(data.get("standing")):
                consents[data["proceedings_id"]] = fact.event_id
            case "MediaExposureRecorded":  # identity or images made public (Art. 13(2)), or a wish to defect
                exposures.append(fact)
            case "RiskAssessed":
                # `onward_state` is the older single-state form of "would hand him on to".
                onward = tuple(
                    dict.fromkeys([*(data.get("onward_states") or ()), *filter(None, [data.get("onward_state")])])
                )
                outcome = RiskOutcome(data["outcome"])
                if outcome is RiskOutcome.NO_REAL_RISK and not clears(data.get("standing")):
                    outcome = RiskOutcome.NOT_ASSESSED  # only an officer, as himself, may clear a destination
                risks[data["destination"]] = Risk(
                    outcome,
                    True if onward else data.get("would_hand_on"),
                    onward,
                    bool(data.get("diplomatic_assurances")),
                    bool(data.get("relies_on_assurances")),
                    fact.event_id,
                    fact.effective_at,
                )
            case "StateAssuranceRecorded" if clears(data.get("standing")):
                assurances[data["state"]] = Assurance(
                    bool(data["willing_and_able_to_apply_gc_iii"]),
                    bool(data.get("accepts_for_resettlement")),
                    bool(data.get("neutral_accommodation_agreement")),
                    fact.event_id,
                    bool(data.get("repatriation_commission_agreement")),
                    data.get("commission_explanation_days"),
                )
            case "PartnerStateClaimRecorded":
                claims[data["state"]] = fact.event_id
            case "ConflictFactRecorded":
                if data["kind"] in (CEASED, RESUMED) and (data.get("conflict") or DEFAULT_CONFLICT) == DEFAULT_CONFLICT:
                    hostilities.append(fact)  # another conflict's hostilities never concern him
    facts_now = DispositionFacts(
        **values,
        assurances=assurances,
        partner_claims=claims,
        open_prosecutions=prosecutions,
        consented_proceedings={pid: event for pid, event in consents.items() if pid in prosecutions},
        failures=failures,
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
    cessation or resumption (one naming no state concerns every party) decides.

    A capture dated after the cessation that stands, with no resumption recorded, contradicts it:
    either hostilities went on (a resumption not recorded) or he was taken after their end. Either
    way he may not be held for ever on that account: the cessation applies to him, and to be
    released without delay is what Art. 118 asks; the contradiction is named for the legal
    officer to resolve (by recording the resumption, if there was one)."""
    if not parties:
        return Hostilities(False, "the party he fought for is not established (no force recorded)")
    findings, events, contradictions = [], [], []
    for party in parties:
        concerning = [fact for fact in facts if fact.data.get("state") in (None, party)]
        if not concerning:
            return Hostilities(False, f"no cessation of active hostilities with {party} recorded")
        latest = concerning[-1]
        events.append(latest.event_id)
        if latest.data["kind"] != CEASED:
            return Hostilities(False, f"hostilities with {party} resumed (event {latest.event_id})", tuple(events))
        ceased_on = latest.effective_at.date().isoformat()
        findings.append(f"ceased with {party} on {ceased_on} (event {latest.event_id})")
        if captured_at is not None and latest.effective_at <= captured_at:
            contradictions.append(
                f"he was captured on {captured_at.date().isoformat()}, after active hostilities with {party} "
                f"ceased on {ceased_on} (event {latest.event_id}), and no resumption is recorded: a contradiction "
                "for the legal officer to resolve"
            )
    contradiction = "; ".join(contradictions) or None
    finding = "active hostilities " + "; ".join(findings)
    if contradiction:
        finding += f" (CONTRADICTION: {contradiction}; until it is resolved the cessation applies to him)"
    return Hostilities(True, finding, tuple(events), contradiction)
