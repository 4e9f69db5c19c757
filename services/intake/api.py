"""Intake's HTTP API (v1): registration (one or a batch), the later facts, the record by data
tier, the event history, and overdue obligations. What each write decides is in
services/intake/commands.py; the bodies it takes in services/intake/requests.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse

from services.intake import commands
from services.intake.queries import load_record, overdue_as_of
from services.intake.requests import (
    AmendmentRequest,
    BatchRegistration,
    CaptureCardRequest,
    DisclosureConsentRequest,
    ForceMembershipRequest,
    IcrcVisitRequest,
    MediaExposureRequest,
    MedicalAssessmentRequest,
    MovementRequest,
    NotificationRequest,
    ProsecutionRequest,
    RegistrationRequest,
    WishRequest,
    Written,
)
from shared.auth.access_log import record_access
from shared.auth.gate import CallerDep
from shared.auth.roles import Scope
from shared.contracts import registered_types
from shared.contracts.envelope import utc_now
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.intake import (
    CaptureCardRecorded,
    DisclosureConsentRecorded,
    ForceMembershipRecorded,
    IcrcVisitRecorded,
    MediaExposureRecorded,
    MedicalAssessed,
    WishDeclared,
)
from shared.contracts.registry import declared_in
from shared.contracts.tiers import DataTier, field_tiers
from shared.web.deps import DbSession, NotFound, Runtime
from shared.web.facts import Fact, add_fact_routes
from shared.web.feed import redact
from shared.web.http import IfMatch, Writer, parse_as_of
from shared.web.routes import Routes

routes = Routes("intake")
router = routes.router

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]


# -- registration -------------------------------------------------------------------------------


@routes.write("/captives", Scope.INTAKE_REGISTER, 413, response_model=Written)
def register_captive(body: RegistrationRequest, command: Writer):
    """Register a captive: the Art. 17 fields (each GIVEN, DECLINED or UNKNOWN), nationality,
    claimed affiliation, the capture, and, only with a consent and its purpose, Art. 122(4) details.
    The captive gets a random pseudonymous id."""
    return commands.register_one(command, body)


@routes.write("/captives:batch", Scope.INTAKE_REGISTER, 413, status_code=200)
def register_batch(body: BatchRegistration, command: Writer):
    """Register up to 1,000 captives at once (a mass capture). Each item is checked on its own:
    the answer has one result per item, in order (201 with the new id, or 422 with the errors),
    and a bad item does not stop the others."""
    return commands.register_batch(command, body)


# -- reads --------------------------------------------------------------------------------------


@routes.read("/captives/{captive_id}", Scope.INTAKE_READ, 404)
def get_captive(
    captive_id: CaptiveId, runtime: Runtime, session: DbSession, request: Request, caller: CallerDep
) -> JSONResponse:
    """The captive's record, one section per data tier (reference, identity, medical,
    wishes_and_risk): the sections the caller's role may read; the others are named in
    `withheld_tiers`. Reading a sensitive section is recorded in the access log."""
    record = load_record(runtime, session, captive_id)
    view = record.view()
    sections = {tier.value for tier in DataTier}
    document = {key: value for key, value in view.items() if key not in sections or DataTier(key) in caller.tiers}
    if withheld := sorted(tier.value for tier in DataTier if tier not in caller.tiers):
        document["withheld_tiers"] = withheld
    record_access(runtime, request, caller, {tier for tier in caller.tiers if view[tier.value]}, [captive_id])
    return JSONResponse(document, headers={"ETag": f'"{record.stream_version}"'})


@routes.read("/captives/{captive_id}/events", Scope.INTAKE_READ, 404)
def get_history(
    captive_id: CaptiveId, runtime: Runtime, session: DbSession, request: Request, caller: CallerDep
) -> list[dict[str, Any]]:
    """Every intake event about the captive, in order, as CloudEvents JSON, each with only the
    fields of the tiers the caller may read (the others named in `redacted`); identity opened
    with his key: erased values read {"withheld": "erased"}."""
    events = runtime.reveal(session, runtime.store.read_stream(session, captive_id))
    if not events:
        raise NotFound(f"no captive {captive_id}")
    documents, shown = [], set()
    for stored in events:
        document, tiers = redact(stored.event, caller.tiers)
        documents.append(document)
        shown |= tiers
    record_access(runtime, request, caller, shown, [captive_id])
    return documents


@routes.read("/overdue", Scope.INTAKE_OVERVIEW)
def get_overdue(
    session: DbSession,
    runtime: Runtime,
    request: Request,
    caller: CallerDep,
    as_of: Annotated[
        str | None, Query(description="a date (2025-02-01, read as 00:00 UTC) or a datetime with a zone; default now")
    ] = None,
):
    """The obligations overdue as of a moment, from the facts in effect then: the Art. 70
    capture cards (to his family and to the Central Prisoners of War Agency, within a week of
    each arrival at a camp, a hospital or another camp, and of a finding that he is seriously
    wounded or sick), the Arts. 122-123 notifications to the National Information Bureau and the
    Central Tracing Agency (of the capture and of each transfer, hospitalisation, escape,
    recapture, death and release, and of each hand-over out of custody: exchange, transfer to
    another Power, repatriation, release, hand-over to the neutral repatriation commission,
    carrying the fields each must carry) and the weekly Art. 122(6) reports on the health of
    the seriously wounded or sick. Each names its article, the event that started its clock and,
    for a notification that was sent without every required field, the fields it lacked. What a
    finding of serious wounds or sickness started is medical tier: listed only for callers who
    may read that tier (the others get `withheld_tiers`), and recorded in the access log."""
    moment = parse_as_of(as_of) if as_of else utc_now()
    answer, sick = overdue_as_of(session, moment, DataTier.MEDICAL in caller.tiers)
    if sick:
        record_access(runtime, request, caller, {DataTier.MEDICAL}, sick)
    return answer


@routes.read("/data-tiers", Scope.INTAKE_READ)
def get_data_tiers() -> dict[str, dict[str, str]]:
    """The data tier of every field of every intake event (what access control filters on)."""
    return {
        name: {field: tier.value for field, tier in field_tiers(model).items()}
        for (name, _version), model in sorted(registered_types().items())
        if declared_in(model, "shared.contracts.intake")
    }


# -- later facts --------------------------------------------------------------------------------


@routes.write(
    "/captives/{captive_id}/identity-amendments", Scope.INTAKE_REGISTER, 404, 409, 413, 428, response_model=Written
)
def amend_identity(captive_id: CaptiveId, body: AmendmentRequest, command: Writer, if_match: IfMatch = None):
    """Correct one Art. 17 field. Requires If-Match: an amendment overwrites a value, so it must
    be based on the current version."""
    if if_match is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            'If-Match is required: send the captive\'s current version, e.g. If-Match: "3"',
        )

    return commands.record_fact(command, captive_id, body, commands.amendment(captive_id, body), if_match)


# The later facts that map one request to one event: each row is one endpoint (shared/web/facts.py).
FACTS = (
    Fact(
        "assess_health",
        "/captives/{captive_id}/medical-assessments",
        Scope.INTAKE_MEDICAL,
        MedicalAssessmentRequest,
        """Health at capture or a later assessment (Arts. 30-31); 'seriously wounded or sick' counts
        for direct repatriation when a mixed medical commission found it (Art. 110, Annex I).""",
        commands.plain(MedicalAssessed),
    ),
    Fact(
        "record_movement",
        "/captives/{captive_id}/movements",
        Scope.INTAKE_REGISTER,
        MovementRequest,
        """Arrival at a camp, transfer, hospital, escape, death or release. Movements are recorded
        in time order and must follow from the current state (nothing after a death or a release).""",
        commands.movement,
    ),
    Fact(
        "record_icrc_visit",
        "/captives/{captive_id}/icrc-visits",
        Scope.INTAKE_ICRC,
        IcrcVisitRequest,
        """A visit by an ICRC delegate (Art. 126), and whether he saw the captive in private.""",
        commands.plain(IcrcVisitRecorded),
    ),
    Fact(
        "declare_wish",
        "/captives/{captive_id}/wishes",
        Scope.INTAKE_ICRC,
        WishRequest,
        """A wish about return (repatriate / stay / a named third state / undecided) with its
        provenance: who asked, through which interpreter, in what setting, free and informed or not.""",
        commands.plain(WishDeclared),
    ),
    Fact(
        "record_capture_card",
        "/captives/{captive_id}/capture-card",
        Scope.INTAKE_REGISTER,
        CaptureCardRequest,
        """The Art. 70 capture card: offered, sent, or declined by the captive.""",
        commands.plain(CaptureCardRecorded),
    ),
    Fact(
        "record_notification",
        "/captives/{captive_id}/notifications",
        Scope.INTAKE_REGISTER,
        NotificationRequest,
        """Information sent to the National Information Bureau or the Central Tracing Agency
        (Arts. 122-123), with exactly which fields were sent, and optionally which of his events
        (the registration, or a transfer, hospitalisation, escape, recapture, death or release, a
        hand-over out of custody recorded by the disposition service, or an assessment finding him
        seriously wounded or sick) it reports. Still accepted after he left custody: the
        notifications of where he went are owed then (Art. 122(5)).""",
        commands.notification,
    ),
    Fact(
        "record_force_membership",
        "/captives/{captive_id}/force-membership",
        Scope.INTAKE_REGISTER,
        ForceMembershipRequest,
        """Which armed force he belongs to (GC III Art. 4A(1); AP I Art. 43), established or
        corrected after registration; it holds from `occurred_at`. Status reads this, never his
        nationality, to decide whether he is a member of a party's armed forces.""",
        commands.plain(ForceMembershipRecorded),
    ),
    Fact(
        "record_prosecution",
        "/captives/{captive_id}/prosecutions",
        Scope.INTAKE_REGISTER,
        ProsecutionRequest,
        """Judicial proceedings against him opened (with the offence charged) or closed (with the
        outcome), Arts. 82-88, 99-108. While any are open he may be kept back from release,
        repatriation and transfer (Arts. 115, 119(5)). A proceedings_id is opened before it is
        closed, and not opened twice at once (409).""",
        commands.prosecution,
    ),
    Fact(
        "record_media_exposure",
        "/captives/{captive_id}/media-exposures",
        Scope.INTAKE_REGISTER,
        MediaExposureRequest,
        """He was exposed to public curiosity (Art. 13(2): his identity or images published), or a
        wish not to return became public, at `occurred_at`: the risk of his return rises, and older
        risk assessments of the states concerned become stale.""",
        commands.plain(MediaExposureRecorded),
    ),
    Fact(
        "record_disclosure_consent",
        "/captives/{captive_id}/disclosure-consents",
        Scope.INTAKE_ICRC,
        DisclosureConsentRequest,
        """The captive's consent (given: true) or its withdrawal (given: false) to his case being
        disclosed to a partner state. A partner state sees a captive only while he wishes to go there
        and this consent stands.""",
        commands.plain(DisclosureConsentRecorded),
    ),
)
add_fact_routes(routes, FACTS, commands.record_fact, captive_id=CaptiveId, response_model=Written)
