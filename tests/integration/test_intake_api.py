"""The intake API on real PostgreSQL: the capture record, consent-gated details, deadlines,
batch intake, idempotent retries, and bad input that is refused without changing anything."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from kafka.consumer.fetcher import ConsumerRecord

from services.intake.tables import clock_facts
from shared.contracts import EventEnvelope, EventPayload, encode
from shared.contracts.disposition import CustodyEnded, DispositionApproved
from shared.evidence.chain import GENESIS, event_hash
from shared.runtime.runtime import signer_of
from tests.support import HEADERS, as_person, build_app, registration, settings_for, signed_in

pytestmark = pytest.mark.integration

CAMP_ARRIVAL = "2025-01-13T12:00:00Z"
DEATH_CERTIFICATE = {"certificate_ref": "DC-2025-0042", "issued_by": "Dr. O. Bondar, military hospital 3"}
PRIVATE_ICRC = {
    "interviewer": "ICRC delegate 4",
    "interviewer_agency": "ICRC",
    "interpreter": "K. Lee",
    "setting": "PRIVATE_ICRC_INTERVIEW",
    "free_and_informed": True,
}


# An intake officer signed in as himself: his finding that a man is fit to travel counts.
INTAKE_OFFICER = as_person("o.kovalenko")


@pytest.fixture
def intake(new_database, kafka_bootstrap, topic_prefix):
    # The relay is not started: these tests are about the API and the database.
    settings = settings_for(
        "intake", database_url=new_database("intake"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    with signed_in(TestClient(build_app("intake", settings, background=False))) as client:
        yield client


def event_count(client: TestClient) -> int:
    """Events about captives (not the access log's record of reads)."""
    runtime = client.app.state.runtime
    events = runtime.definition.store_tables.events
    with runtime.sessions() as session:
        return session.execute(
            sa.select(sa.func.count()).select_from(events).where(events.c.event_type != "DataAccessed")
        ).scalar()


def register(client: TestClient, body: dict | None = None, **headers) -> str:
    answer = client.post("/v1/captives", json=body or registration(), headers={**HEADERS, **headers})
    assert answer.status_code == 201, answer.text
    return answer.json()["captive_id"]


def post(client: TestClient, captive_id: str, what: str, body: dict, **headers):
    return client.post(f"/v1/captives/{captive_id}/{what}", json=body, headers={**HEADERS, **headers})


def test_declined_and_unknown_fields_are_recorded_and_do_not_block_intake(intake):
    body = registration()
    body.update(
        surname={"answer": "DECLINED"},
        rank={"answer": "UNKNOWN"},
        unable_to_state_identity={"reason": "concussion; cannot speak"},
    )
    captive_id = register(intake, body)
    identity = intake.get(f"/v1/captives/{captive_id}").json()["identity"]
    assert identity["surname"] == {"answer": "DECLINED", "value": None, "romanised": None}
    assert identity["rank"]["answer"] == "UNKNOWN"
    assert identity["first_names"]["answer"] == "DECLINED"
    assert identity["unable_to_state_identity"] == {"reason": "concussion; cannot speak"}


def test_art_122_4_details_are_kept_only_with_a_consent_and_its_purpose(intake):
    details = {"place_of_birth": "함흥", "mothers_maiden_name": "Ким", "person_to_inform": {"name": "김순희"}}
    with_consent = {**registration(), "consented_details": {"consent": {"purpose": "family tracing"}, **details}}
    captive_id = register(intake, with_consent)
    stored = intake.get(f"/v1/captives/{captive_id}").json()["identity"]["consented_details"]
    assert stored["consent"]["purpose"] == "family tracing"
    assert stored["place_of_birth"] == "함흥" and stored["mothers_maiden_name"] == "Ким"

    before = event_count(intake)
    no_consent = {**registration(), "consented_details": details}
    answer = intake.post("/v1/captives", json=no_consent, headers=HEADERS)
    assert answer.status_code == 422 and "consent" in answer.text
    loose = {**registration(), "place_of_birth": "함흥"}
    answer = intake.post("/v1/captives", json=loose, headers=HEADERS)
    assert answer.status_code == 422 and "place_of_birth" in answer.text
    no_purpose = {**registration(), "consented_details": {"consent": {"purpose": " "}, **details}}
    assert intake.post("/v1/captives", json=no_purpose, headers=HEADERS).status_code == 422
    assert event_count(intake) == before


def test_the_full_capture_record_and_every_later_fact_come_back_in_order(intake):
    body = {
        **registration(),
        "identity_document": {"kind": "military ID", "number": "24-0117", "issuing_state": "RU"},
        "interview": {"language": "kor", "interpreter": "K. Lee"},
        "capture": {
            **registration()["capture"],
            "circumstances": "wounded, found in a dugout",
            "uniform_worn": "Russian Federation",
            "papers_found": "Tuvan identity papers",
        },
    }
    captive_id = register(intake, body)
    facts = [
        (
            "medical-assessments",
            {
                "assessor": "Dr. Kovalenko",
                "findings": "shrapnel, jaw; cannot speak",
                "seriously_wounded_or_sick": True,
                "at_capture": True,
                "occurred_at": "2025-01-11T10:00:00Z",
            },
        ),
        ("movements", {"kind": "ARRIVED_AT_CAMP", "location": "Camp 1, Lviv region", "occurred_at": CAMP_ARRIVAL}),
        (
            "capture-card",
            {
                "action": "SENT",
                "recipient": "Central Tracing Agency",
                "addressee": "CENTRAL_AGENCY",
                "occurred_at": "2025-01-15T00:00:00Z",
            },
        ),
        (
            "notifications",
            {
                "recipient": "NATIONAL_INFORMATION_BUREAU",
                "fields_sent": ["surname", "rank", "capture"],
                "occurred_at": "2025-01-14T00:00:00Z",
            },
        ),
        (
            "icrc-visits",
            {
                "delegate": "D. Müller",
                "place": "Camp 1",
                "private_interview": True,
                "occurred_at": "2025-02-03T00:00:00Z",
            },
        ),
        (
            "wishes",
            {
                "wish": "THIRD_STATE",
                "third_state": "KR",
                "provenance": PRIVATE_ICRC,
                "occurred_at": "2025-02-03T01:00:00Z",
            },
        ),
        (
            "movements",
            {"kind": "HOSPITALISED", "location": "Military hospital 3", "occurred_at": "2025-02-10T00:00:00Z"},
        ),
    ]
    for what, fact in facts:
        answer = post(intake, captive_id, what, fact)
        assert answer.status_code == 201, (what, answer.text)
    answer = post(
        intake,
        captive_id,
        "identity-amendments",
        {
            "field": "rank",
            "current": {"answer": "GIVEN", "value": "상등병", "romanised": "Corporal"},
            "reason": "unit papers found",
        },
        **{"If-Match": '"8"'},
    )
    assert answer.status_code == 201, answer.text

    history = intake.get(f"/v1/captives/{captive_id}/events").json()
    assert [e["type"] for e in history] == [
        "CaptiveRegistered",
        "MedicalAssessed",
        "MovementRecorded",
        "CaptureCardRecorded",
        "NotificationSent",
        "IcrcVisitRecorded",
        "WishDeclared",
        "MovementRecorded",
        "IdentityAmended",
    ]
    assert [e["streamversion"] for e in history] == list(range(1, 10))
    assert all(e["actor"] == "client captives-operator" and e["agency"] == "operator" for e in history)
    assert history[2]["time"] == "2025-01-13T12:00:00Z"  # when it happened, not when it was typed in

    record = intake.get(f"/v1/captives/{captive_id}")
    assert record.headers["ETag"] == '"9"'
    view = record.json()
    assert view["reference"]["custody"] == {"state": "HOSPITALISED", "since": "2025-02-10T00:00:00Z"}
    assert view["identity"]["rank"]["romanised"] == "Corporal"
    assert view["identity"]["amendments"][0]["previous"]["romanised"] == "Private"
    assert view["identity"]["identity_document"]["number"] == "24-0117"
    assert view["identity"]["interview"] == {"language": "kor", "interpreter": "K. Lee"}
    assert view["medical"]["medical_assessments"][0]["seriously_wounded_or_sick"] is True
    assert view["wishes_and_risk"]["wishes"][0]["third_state"] == "KR"
    assert view["wishes_and_risk"]["wishes"][0]["provenance"]["setting"] == "PRIVATE_ICRC_INTERVIEW"
    assert view["reference"]["notifications"][0]["fields_sent"] == ["surname", "rank", "capture"]


# Art. 122(4): the Art. 17 minimum, the Power on which he depends, the address for his letters, the capture.
CAPTURE_FIELDS = [
    "surname",
    "first_names",
    "rank",
    "date_of_birth",
    "service_number",
    "armed_force",
    "power_depended_on",
    "internment_address",
    "capture",
]


def test_overdue_cards_and_notifications_as_of_a_date(intake):
    """Art. 70: both cards within a week of each arrival; Arts. 122-123: both notifications of
    the capture and of each transfer or hospitalisation, each carrying its fields."""
    late, on_time, hospitalised = register(intake), register(intake), register(intake)
    for captive_id in (late, on_time):
        arrival = {"kind": "ARRIVED_AT_CAMP", "location": "Camp 1", "occurred_at": CAMP_ARRIVAL}
        assert post(intake, captive_id, "movements", arrival).status_code == 201
    straight_to_hospital = {"kind": "HOSPITALISED", "location": "Hospital 3", "occurred_at": "2025-01-11T12:00:00Z"}
    hospital = post(intake, hospitalised, "movements", straight_to_hospital).json()["event_id"]
    for recipient in ("NATIONAL_INFORMATION_BUREAU", "CENTRAL_TRACING_AGENCY"):
        for captive_id in (late, on_time, hospitalised):
            notice = {"recipient": recipient, "fields_sent": CAPTURE_FIELDS, "occurred_at": "2025-01-12T00:00:00Z"}
            assert post(intake, captive_id, "notifications", notice).status_code == 201
        health = {"recipient": recipient, "fields_sent": ["health"], "occurred_at": "2025-01-12T00:00:00Z"}
        assert post(intake, hospitalised, "notifications", health).status_code == 201
    declined = {"action": "DECLINED_BY_CAPTIVE", "occurred_at": "2025-01-14T00:00:00Z"}
    assert post(intake, on_time, "capture-card", declined).status_code == 201
    to_family = {
        "action": "SENT",
        "recipient": "his mother",
        "addressee": "FAMILY",
        "occurred_at": "2025-01-14T00:00:00Z",
    }
    assert post(intake, late, "capture-card", to_family).status_code == 201
    to_agency = {**to_family, "recipient": "CPWA", "addressee": "CENTRAL_AGENCY", "occurred_at": "2025-01-25T00:00:00Z"}
    assert post(intake, late, "capture-card", to_agency).status_code == 201
    transfer = {"kind": "TRANSFERRED", "location": "Camp 2", "occurred_at": "2025-02-01T00:00:00Z"}
    transferred = post(intake, on_time, "movements", transfer).json()["event_id"]
    partial = {
        "recipient": "CENTRAL_TRACING_AGENCY",
        "fields_sent": ["transfer"],
        "occurred_at": "2025-02-02T00:00:00Z",
    }
    partial_id = post(intake, on_time, "notifications", partial).json()["event_id"]

    def overdue(as_of: str) -> list[dict]:
        answer = intake.get("/v1/overdue", params={"as_of": as_of})
        assert answer.status_code == 200, answer.text
        return answer.json()["overdue"]

    def owed(as_of: str) -> set:
        return {(item["captive_id"], item["obligation"], item["to"], item["trigger"]) for item in overdue(as_of)}

    assert owed("2025-01-18") == set()
    # the week after his arrival in hospital is out: both cards, each on its own
    assert owed("2025-01-19") == {
        (hospitalised, "CAPTURE_CARD", "FAMILY", "HOSPITALISED"),
        (hospitalised, "CAPTURE_CARD", "CENTRAL_AGENCY", "HOSPITALISED"),
    }
    [card] = [item for item in overdue("2025-01-19") if item["to"] == "FAMILY"]
    assert (card["article"], card["started_by"], card["due_at"]) == ("GC III Art. 70", hospital, "2025-01-18T12:00:00Z")
    late_card = (late, "CAPTURE_CARD", "CENTRAL_AGENCY", "ARRIVED_AT_CAMP")
    assert late_card in owed("2025-01-22") and (late, "CAPTURE_CARD", "FAMILY", "ARRIVED_AT_CAMP") not in owed(
        "2025-01-22"
    )
    assert late_card in owed("2025-01-22T00:00:00+02:00")
    assert late_card not in owed("2025-01-26")  # sent late, but sent

    # the transfer opened two new cards and two new notifications; the partial one does not count
    after_transfer = [item for item in overdue("2025-02-10") if item["captive_id"] == on_time]
    assert {(item["obligation"], item["to"]) for item in after_transfer} == {
        ("CAPTURE_CARD", "FAMILY"),
        ("CAPTURE_CARD", "CENTRAL_AGENCY"),
        ("NOTIFICATION", "NATIONAL_INFORMATION_BUREAU"),
        ("NOTIFICATION", "CENTRAL_TRACING_AGENCY"),
    }
    assert {item["started_by"] for item in after_transfer} == {transferred}
    [cta] = [item for item in after_transfer if item["to"] == "CENTRAL_TRACING_AGENCY"]
    assert cta["required_fields"] == ["transfer", "internment_address"]
    assert cta["missing_fields"] == ["internment_address"] and cta["insufficient_notifications"] == [partial_id]
    assert cta["article"] == "GC III Art. 122(5); Art. 123"

    assert intake.get("/v1/overdue", params={"as_of": "next tuesday"}).status_code == 422
    assert intake.get("/v1/overdue", params={"as_of": "2025-01-22T00:00:00"}).status_code == 422


def test_a_batch_with_bad_items_in_the_middle_registers_the_good_ones(intake):
    future = {**registration(), "capture": {**registration()["capture"], "captured_at": "2999-01-01T00:00:00Z"}}
    batch = [registration("김"), {"surname": "not an object"}, registration("박"), future, 42, registration("최")]
    answer = intake.post("/v1/captives:batch", json={"captives": batch}, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["created"], result["rejected"]) == (3, 3)
    assert [item["status"] for item in result["results"]] == [201, 422, 201, 422, 422, 201]
    assert result["results"][1]["errors"][0]["loc"][:3] == ["body", "captives", 1]
    assert any("in the future" in error["msg"] for error in result["results"][3]["errors"])
    surnames = [
        intake.get(f"/v1/captives/{item['captive_id']}").json()["identity"]["surname"]["value"]
        for item in result["results"]
        if item["status"] == 201
    ]
    assert surnames == ["김", "박", "최"]
    assert event_count(intake) == 3

    too_many = intake.post("/v1/captives:batch", json={"captives": [registration()] * 1001}, headers=HEADERS)
    assert too_many.status_code == 422 and "1000" in too_many.text


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer_and_writes_nothing(intake):
    first = intake.post("/v1/captives", json=registration(), headers={**HEADERS, "Idempotency-Key": "intake-42"})
    assert first.status_code == 201
    again = intake.post("/v1/captives", json=registration(), headers={**HEADERS, "Idempotency-Key": "intake-42"})
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert event_count(intake) == 1

    other = intake.post("/v1/captives", json=registration("박"), headers={**HEADERS, "Idempotency-Key": "intake-42"})
    assert other.status_code == 422 and "already used for a different request" in other.text

    captive_id = first.json()["captive_id"]
    visit = {
        "delegate": "D. Müller",
        "place": "Camp 1",
        "private_interview": False,
        "occurred_at": "2025-02-01T00:00:00Z",
    }
    answers = [post(intake, captive_id, "icrc-visits", visit, **{"Idempotency-Key": "visit-1"}) for _ in range(3)]
    assert {a.status_code for a in answers} == {201} and len({a.json()["event_id"] for a in answers}) == 1
    assert event_count(intake) == 2

    batch = {"captives": [registration(), registration()]}
    first_batch = intake.post("/v1/captives:batch", json=batch, headers={**HEADERS, "Idempotency-Key": "batch-1"})
    again_batch = intake.post("/v1/captives:batch", json=batch, headers={**HEADERS, "Idempotency-Key": "batch-1"})
    assert first_batch.json() == again_batch.json()
    assert event_count(intake) == 4


def test_concurrent_retries_with_one_key_write_once(intake):
    answers = []

    def send() -> None:
        answers.append(intake.post("/v1/captives", json=registration(), headers={**HEADERS, "Idempotency-Key": "race"}))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["captive_id"] for answer in answers}) == 1
    assert event_count(intake) == 1


@pytest.mark.parametrize(
    ("what", "body", "where", "message"),
    [
        (
            "movements",
            {"kind": "DIED", "death_certificate": DEATH_CERTIFICATE, "occurred_at": "2024-12-31T00:00:00Z"},
            "occurred_at",
            "before the capture",
        ),
        ("movements", {"kind": "TELEPORTED", "location": "x"}, "kind", "Input should be"),
        ("movements", {"kind": "ARRIVED_AT_CAMP"}, "body", "location is required"),
        (
            "medical-assessments",
            {"assessor": "Dr. K", "findings": "ok", "seriously_wounded_or_sick": "maybe"},
            "seriously_wounded_or_sick",
            "valid boolean",
        ),
        (
            "medical-assessments",
            {
                "assessor": "Dr. K",
                "findings": "ok",
                "seriously_wounded_or_sick": False,
                "occurred_at": "2999-01-01T00:00:00Z",
            },
            "occurred_at",
            "in the future",
        ),
        (
            "wishes",
            {"wish": "THIRD_STATE", "third_state": "ZZ", "provenance": PRIVATE_ICRC},
            "third_state",
            "Invalid country",
        ),
        (
            "wishes",
            {"wish": "REPATRIATE", "provenance": {**PRIVATE_ICRC, "setting": "TWITTER"}},
            "setting",
            "Input should",
        ),
        ("icrc-visits", {"delegate": "x" * 201, "place": "Camp", "private_interview": True}, "delegate", "at most 200"),
        ("icrc-visits", {"delegate": "", "place": "Camp", "private_interview": True}, "delegate", "at least 1"),
        ("notifications", {"recipient": "NATIONAL_INFORMATION_BUREAU", "fields_sent": []}, "fields_sent", "at least 1"),
        (
            "notifications",
            {"recipient": "NATIONAL_INFORMATION_BUREAU", "fields_sent": ["shoe_size"]},
            "fields_sent",
            "Input should be",
        ),
        ("capture-card", {"action": "SENT", "addressee": "FAMILY"}, "body", "recipient is required"),
        ("capture-card", {"action": "SENT", "recipient": "his mother"}, "body", "addressee is required"),
        ("capture-card", {"action": "SENT", "recipient": "x", "addressee": "NEIGHBOUR"}, "addressee", "Input should"),
        (
            "capture-card",
            {"action": "DECLINED_BY_CAPTIVE", "addressee": "FAMILY"},
            "body",
            "declined for both addressees",
        ),
        ("movements", {"kind": "DIED"}, "body", "death_certificate is required for DIED"),
        (
            "movements",
            {"kind": "DIED", "death_certificate": {"certificate_ref": "DC-1"}},
            "issued_by",
            "Field required",
        ),
        (
            "movements",
            {"kind": "ARRIVED_AT_CAMP", "location": "Camp 1", "death_certificate": DEATH_CERTIFICATE},
            "body",
            "ARRIVED_AT_CAMP takes none",
        ),
        (
            "movements",
            {"kind": "DIED", "death_certificate": {"withheld": "sealed"}},
            "death_certificate",
            "`withheld` marks data",
        ),
        ("force-membership", {"force_state": "KP"}, "force", "Field required"),
        ("force-membership", {"force": "KPA", "force_state": "XX"}, "force_state", "Invalid country"),
        ("force-membership", {"force": "  ", "force_state": "KP"}, "force", "must not be empty"),
        (
            "force-membership",
            {"force": "KPA", "force_state": "KP", "integrated_in_forces_of": "KP"},
            "body",
            "cannot be the force's own state",
        ),
        ("force-membership", {"force": "KPA", "basis": {"withheld": "erased"}}, "basis", "`withheld` marks data"),
        ("prosecutions", {"proceedings_id": "P-1", "stage": "OPENED", "court": "Court"}, "body", "offence is required"),
        (
            "prosecutions",
            {"proceedings_id": "P-1", "stage": "OPENED", "court": "Court", "offence": "x", "outcome": "acquitted"},
            "body",
            "outcome is recorded when the proceedings are CLOSED",
        ),
        ("prosecutions", {"proceedings_id": "P-1", "stage": "STAYED", "court": "Court"}, "stage", "Input should"),
        ("media-exposures", {"kind": "IMAGES_PUBLISHED"}, "outlet", "Field required"),
        ("media-exposures", {"kind": "INTERVIEWED", "outlet": "TV"}, "kind", "Input should"),
        (
            "notifications",
            {"recipient": "CENTRAL_TRACING_AGENCY", "fields_sent": ["death"], "concerning_event_id": "no-such-event"},
            "concerning_event_id",
            "is not an event of",
        ),
    ],
)
def test_bad_facts_get_a_422_naming_the_field_and_change_nothing(intake, what, body, where, message):
    captive_id = register(intake)
    before = intake.get(f"/v1/captives/{captive_id}").json()
    answer = post(intake, captive_id, what, body)
    assert answer.status_code == 422, answer.text
    assert where in answer.text and message in answer.text, answer.text
    assert intake.get(f"/v1/captives/{captive_id}").json() == before


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"nationality": "XX"}, "nationality", "Invalid country"),
        ({"nationality": 7}, "nationality", "string"),
        ({"claimed_affiliation": "MERCENARY"}, "claimed_affiliation", "Input should be"),
        ({"date_of_birth": {"answer": "GIVEN", "value": "2026-13-01"}}, "date_of_birth", "date"),
        ({"date_of_birth": {"answer": "GIVEN", "value": "2025-06-01"}}, "date_of_birth", "after the capture"),
        ({"surname": {"answer": "GIVEN", "value": ""}}, "surname", "at least 1"),
        ({"surname": {"answer": "GIVEN", "value": "김" * 201}}, "surname", "at most 200"),
        ({"interview": {"language": "klingon"}}, "language", "pattern"),
        ({"interview": {"language": "xqz"}}, "language", "ISO 639-3"),
        ({"occurred_at": "2025-01-10T00:00:00Z"}, "occurred_at", "before the capture"),
        (
            {"capture": {"captured_at": "2025-01-11T09:00:00", "place": "x", "capturing_unit": "y"}},
            "captured_at",
            "timezone",
        ),
    ],
)
def test_bad_registrations_get_a_422_naming_the_field_and_store_nothing(intake, change, where, message):
    answer = intake.post("/v1/captives", json={**registration(), **change}, headers=HEADERS)
    assert answer.status_code == 422, answer.text
    assert where in answer.text and message in answer.text, answer.text
    assert event_count(intake) == 0


def test_movements_that_cannot_follow_get_409(intake):
    captive_id = register(intake)
    died = {"kind": "DIED", "death_certificate": DEATH_CERTIFICATE, "occurred_at": "2025-01-12T00:00:00Z"}
    assert post(intake, captive_id, "movements", died).status_code == 201
    after_death = post(
        intake,
        captive_id,
        "movements",
        {"kind": "TRANSFERRED", "location": "Camp 2", "occurred_at": "2025-01-13T00:00:00Z"},
    )
    assert after_death.status_code == 409 and "DEAD" in after_death.text
    out_of_order = register(intake)
    post(intake, out_of_order, "movements", {"kind": "ARRIVED_AT_CAMP", "location": "C", "occurred_at": CAMP_ARRIVAL})
    earlier = post(
        intake,
        out_of_order,
        "movements",
        {"kind": "HOSPITALISED", "location": "H", "occurred_at": "2025-01-12T00:00:00Z"},
    )
    assert earlier.status_code == 409 and "time order" in earlier.text


def test_a_man_not_fit_to_travel_is_not_transferred_unless_his_safety_demands_it(intake):
    """GC III Art. 47: sick or wounded prisoners "shall not be transferred as long as their recovery
    may be endangered by the journey, unless their safety imperatively demands it"."""
    him = register(intake)
    arrived = {"kind": "ARRIVED_AT_CAMP", "location": "C", "occurred_at": CAMP_ARRIVAL}
    assert post(intake, him, "movements", arrived).is_success
    unfit = {"assessor": "Dr. K", "findings": "post-operative", "seriously_wounded_or_sick": True}
    unfit["fit_to_travel"] = False
    assert post(intake, him, "medical-assessments", {**unfit, "occurred_at": "2025-01-20T00:00:00Z"}).is_success
    before = event_count(intake)
    transfer = {"kind": "TRANSFERRED", "location": "Camp 2", "occurred_at": "2025-01-21T00:00:00Z"}
    refused = post(intake, him, "movements", transfer)
    assert refused.status_code == 409 and "Arts. 46-47" in refused.text and "not fit to travel" in refused.text
    assert event_count(intake) == before
    # The camp is shelled: his safety demands it, and the reason is recorded (sealed, identity tier).
    moved = post(intake, him, "movements", {**transfer, "safety_demands_it": "the camp is under artillery fire"})
    assert moved.status_code == 201, moved.text
    # A later finding that he is fit, by the detaining state's doctor signed in as himself, lets him move again.
    fit = {**unfit, "fit_to_travel": True, "occurred_at": "2025-01-25T00:00:00Z"}
    assert post(intake, him, "medical-assessments", fit, **dict(INTAKE_OFFICER)).is_success
    again = {"kind": "TRANSFERRED", "location": "Camp 3", "occurred_at": "2025-01-26T00:00:00Z"}
    assert post(intake, him, "movements", again).status_code == 201


def test_force_membership_at_registration_and_later_is_recorded_with_its_basis_in_the_identity_tier(intake):
    kpa = {"force": "Korean People's Army", "force_state": "KP", "integrated_in_forces_of": "RU"}
    captive_id = register(
        intake, {**registration(), "nationality": None, "armed_force": {**kpa, "basis": "unit papers"}}
    )
    view = intake.get(f"/v1/captives/{captive_id}").json()
    assert view["reference"]["armed_force"] == kpa  # the force in clear: status decides from it
    assert view["identity"]["armed_force"] == {"basis": "unit papers"}  # how it is known: identity tier

    corrected = {"force": "Korean People's Army", "force_state": "KP", "occurred_at": "2025-02-01T00:00:00Z"}
    answer = post(intake, captive_id, "force-membership", {**corrected, "basis": "interview with the ICRC"})
    assert answer.status_code == 201, answer.text
    view = intake.get(f"/v1/captives/{captive_id}").json()
    [later] = view["reference"]["force_memberships"]
    assert (later["force_state"], later["integrated_in_forces_of"], later["occurred_at"]) == (
        "KP",
        None,
        "2025-02-01T00:00:00Z",
    )
    assert "basis" not in later and view["identity"]["force_memberships"][0]["basis"] == "interview with the ICRC"

    history = intake.get(f"/v1/captives/{captive_id}/events").json()
    assert history[0]["data"]["armed_force"]["basis"] == "unit papers"
    assert history[1]["type"] == "ForceMembershipRecorded"

    bad = {**registration(), "armed_force": {**kpa, "basis": {"withheld": "sealed"}}}
    before = event_count(intake)
    answer = intake.post("/v1/captives", json=bad, headers=HEADERS)
    assert answer.status_code == 422 and "armed_force" in answer.text and "withheld" in answer.text, answer.text
    same_state = {**registration(), "armed_force": {**kpa, "integrated_in_forces_of": "KP"}}
    assert intake.post("/v1/captives", json=same_state, headers=HEADERS).status_code == 422
    assert event_count(intake) == before


def test_proceedings_open_and_close_once_each_and_refusals_store_nothing(intake):
    captive_id = register(intake)
    opened = {
        "proceedings_id": "UA-2025-17",
        "stage": "OPENED",
        "court": "Kyiv military court",
        "offence": "a charge under Art. 82 (disciplinary)",
        "occurred_at": "2025-02-01T00:00:00Z",
    }
    closed = {
        "proceedings_id": "UA-2025-17",
        "stage": "CLOSED",
        "court": "Kyiv military court",
        "outcome": "acquitted",
        "occurred_at": "2025-03-01T00:00:00Z",
    }
    never = post(intake, captive_id, "prosecutions", {**closed, "proceedings_id": "UA-2025-99"})
    assert never.status_code == 409 and "never opened" in never.text, never.text
    assert post(intake, captive_id, "prosecutions", opened).status_code == 201
    assert intake.get(f"/v1/captives/{captive_id}").json()["reference"]["open_proceedings"] == ["UA-2025-17"]
    again = post(intake, captive_id, "prosecutions", {**opened, "occurred_at": "2025-02-02T00:00:00Z"})
    assert again.status_code == 409 and "already open" in again.text, again.text
    early = post(intake, captive_id, "prosecutions", {**closed, "occurred_at": "2025-01-20T00:00:00Z"})
    assert early.status_code == 409 and "time order" in early.text, early.text
    before = event_count(intake)
    assert post(intake, captive_id, "prosecutions", closed).status_code == 201
    twice = post(intake, captive_id, "prosecutions", {**closed, "occurred_at": "2025-03-02T00:00:00Z"})
    assert twice.status_code == 409 and "already closed" in twice.text, twice.text
    assert event_count(intake) == before + 1

    view = intake.get(f"/v1/captives/{captive_id}").json()
    assert view["reference"]["open_proceedings"] == []
    assert [(p["stage"], p["court"]) for p in view["reference"]["prosecutions"]] == [
        ("OPENED", "Kyiv military court"),
        ("CLOSED", "Kyiv military court"),
    ]
    assert "offence" not in view["reference"]["prosecutions"][0]
    assert view["identity"]["prosecutions"][0]["offence"] == opened["offence"]
    assert view["identity"]["prosecutions"][1]["outcome"] == "acquitted"

    died = {"kind": "DIED", "death_certificate": DEATH_CERTIFICATE, "occurred_at": "2025-04-01T00:00:00Z"}
    assert post(intake, captive_id, "movements", died).status_code == 201
    dead = post(intake, captive_id, "prosecutions", {**opened, "proceedings_id": "UA-2025-18"})
    assert dead.status_code == 409 and "DEAD" in dead.text


def test_a_media_exposure_and_a_death_with_its_certificate_are_recorded(intake):
    captive_id = register(intake)
    exposure = {
        "kind": "IMAGES_PUBLISHED",
        "outlet": "a national television channel",
        "details": "his face shown in an interview",
        "occurred_at": "2025-01-20T00:00:00Z",
    }
    assert post(intake, captive_id, "media-exposures", exposure).status_code == 201
    died = {"kind": "DIED", "death_certificate": {**DEATH_CERTIFICATE, "cause": "wounds"}}
    answer = post(intake, captive_id, "movements", {**died, "occurred_at": "2025-01-21T00:00:00Z"})
    assert answer.status_code == 201, answer.text
    view = intake.get(f"/v1/captives/{captive_id}").json()
    assert view["reference"]["media_exposures"][0]["kind"] == "IMAGES_PUBLISHED"
    assert view["identity"]["media_exposures"][0]["details"] == "his face shown in an interview"
    assert view["identity"]["movements"][0]["death_certificate"]["cause"] == "wounds"
    assert "death_certificate" not in view["reference"]["movements"][0]
    assert view["reference"]["custody"]["state"] == "DEAD"


def test_a_notification_names_the_event_it_reports_only_if_it_is_his_and_came_before(intake):
    captive_id = register(intake)
    other = register(intake)
    moved = post(
        intake,
        captive_id,
        "movements",
        {"kind": "HOSPITALISED", "location": "H3", "occurred_at": "2025-01-15T00:00:00Z"},
    )
    hospitalised = moved.json()["event_id"]
    wish = post(
        intake,
        captive_id,
        "wishes",
        {"wish": "UNDECIDED", "provenance": PRIVATE_ICRC, "occurred_at": "2025-01-16T00:00:00Z"},
    ).json()["event_id"]
    notice = {"recipient": "NATIONAL_INFORMATION_BUREAU", "fields_sent": ["health"]}
    before = event_count(intake)
    for concerning, when, message in (
        (hospitalised, "2025-01-14T00:00:00Z", "before the HOSPITALISED it reports"),
        (wish, "2025-01-17T00:00:00Z", "is not an event of"),
    ):
        answer = post(
            intake, captive_id, "notifications", {**notice, "concerning_event_id": concerning, "occurred_at": when}
        )
        assert answer.status_code == 422 and message in answer.text, answer.text
    elsewhere = post(intake, other, "notifications", {**notice, "concerning_event_id": hospitalised})
    assert elsewhere.status_code == 422 and "is not an event of" in elsewhere.text
    assert event_count(intake) == before
    answer = post(
        intake,
        captive_id,
        "notifications",
        {**notice, "concerning_event_id": hospitalised, "occurred_at": "2025-01-16T00:00:00Z"},
    )
    assert answer.status_code == 201, answer.text
    view = intake.get(f"/v1/captives/{captive_id}").json()
    assert view["reference"]["notifications"][0]["concerning_event_id"] == hospitalised


# -- after he left custody --------------------------------------------------------------------------

EXCHANGED_AT = datetime(2025, 5, 20, 10, tzinfo=UTC)


def disposition_records(topic: str, captive_id: str, payloads: list[EventPayload], at: datetime, sign) -> list:
    """His disposition stream as the disposition service would publish it (chained, and signed
    with its key: `sign`), as records of `topic` read by intake's consumer."""
    records, previous = [], GENESIS
    for version, payload in enumerate(payloads, start=1):
        envelope = EventEnvelope(
            id=str(uuid.uuid4()),
            source="/services/disposition",
            type=payload.event_type,
            subject=captive_id,
            occurred_at=at,
            recorded_at=at,
            stream_version=version,
            schema_version=payload.schema_version,
            correlation_id="exchange-1",
            actor="I. Bondarenko",
            agency="ua-coordination-hq",
            previous_hash=previous,
            data=payload.model_dump(mode="json"),
        )
        value = encode(envelope)
        previous = event_hash(value)
        records.append(
            ConsumerRecord(
                topic, 0, None, version - 1, 0, 0, captive_id.encode(), value, [sign(value)], None, -1, len(value), -1
            )
        )
    return records


def test_after_an_exchange_intake_refuses_every_fact_but_the_notifications_still_owed(intake):
    """Art. 122(5): once disposition records that he left custody (here: exchanged to RU), intake
    shows it, owes the notification of it, accepts that notification and refuses (409, naming
    the exchange) any other fact about him. The consumer takes only the hand-over from the
    disposition topic, passes every other event by without a dead letter, and a redelivery
    changes nothing."""
    captive_id = register(intake)
    arrival = {"kind": "ARRIVED_AT_CAMP", "location": "Camp 1", "occurred_at": CAMP_ARRIVAL}
    assert post(intake, captive_id, "movements", arrival).status_code == 201
    runtime = intake.app.state.runtime
    topic = runtime.consumed_topics[0]
    approved = DispositionApproved(captive_id=captive_id, disposition_id="D-1", proposed_by="I. Bondarenko", reasons=[])
    exchanged = CustodyEnded(captive_id=captive_id, kind="EXCHANGE", destination="RU", disposition_id="list-1")
    # Signed as the disposition service signs (its key and pin beside intake's: the test's var/keys).
    disposition = signer_of(runtime.settings, "disposition")
    records = disposition_records(topic, captive_id, [approved, exchanged], EXCHANGED_AT, disposition.header)
    exchange_id = EventEnvelope.model_validate_json(records[1].value).id

    consumer = runtime.consumer
    consumer.process_batch(records)
    assert (consumer.applied_total, consumer.ignored_total, consumer.dead_lettered_total) == (1, 1, 0)
    consumer.process_batch(records)  # redelivered
    assert (consumer.applied_total, consumer.dead_lettered_total) == (1, 0)
    with runtime.sessions() as session:
        left = session.execute(sa.select(clock_facts).where(clock_facts.c.fact == "LEFT")).all()
        parked = session.execute(sa.select(sa.func.count()).select_from(runtime.definition.store_tables.parked))
        assert [(row.event_id, row.kind, row.destination) for row in left] == [(exchange_id, "EXCHANGED", "RU")]
        assert parked.scalar() == 0

    view = intake.get(f"/v1/captives/{captive_id}").json()
    custody = view["reference"]["custody"]
    assert (custody["state"], custody["since"], custody["destination"], custody["event_id"]) == (
        "EXCHANGED",
        "2025-05-20T10:00:00Z",
        "RU",
        exchange_id,
    )
    assert view["stream_version"] == 2  # his intake stream: nothing was appended to it

    before = event_count(intake)
    later = {"occurred_at": "2025-05-21T00:00:00Z"}
    refused = {
        "movements": {"kind": "TRANSFERRED", "location": "Camp 2", **later},
        "medical-assessments": {"assessor": "Dr. K", "findings": "fit", "seriously_wounded_or_sick": False, **later},
        "capture-card": {"action": "OFFERED", **later},
        "icrc-visits": {"delegate": "D. Müller", "place": "Camp 1", "private_interview": True, **later},
        "wishes": {"wish": "UNDECIDED", "provenance": PRIVATE_ICRC, **later},
        "prosecutions": {"proceedings_id": "P-1", "stage": "OPENED", "court": "Kyiv", "offence": "a charge", **later},
    }
    for what, body in refused.items():
        answer = post(intake, captive_id, what, body)
        assert answer.status_code == 409, (what, answer.text)
        expected = f"captive {captive_id} left custody: EXCHANGED to RU on 2025-05-20T10:00:00Z"
        assert answer.json()["detail"].startswith(f"{expected} (disposition event {exchange_id}"), answer.text
    amended = post(
        intake,
        captive_id,
        "identity-amendments",
        {"field": "rank", "current": {"answer": "GIVEN", "value": "상등병"}, "reason": "papers", **later},
        **{"If-Match": '"2"'},
    )
    assert amended.status_code == 409 and "left custody" in amended.text
    assert event_count(intake) == before

    # The notification of the exchange is still owed, and accepted; it may name the exchange.
    def overdue_exchange(as_of: str) -> set:
        found = intake.get("/v1/overdue", params={"as_of": as_of}).json()["overdue"]
        return {
            (item["to"], item["started_by"], item["article"], tuple(item["required_fields"]))
            for item in found
            if item["captive_id"] == captive_id and item["trigger"] == "EXCHANGED"
        }

    assert overdue_exchange("2025-05-27") == set()
    assert overdue_exchange("2025-05-28") == {
        ("NATIONAL_INFORMATION_BUREAU", exchange_id, "GC III Art. 122(5)", ("exchange", "destination")),
        ("CENTRAL_TRACING_AGENCY", exchange_id, "GC III Art. 122(5); Art. 123", ("exchange", "destination")),
    }
    notice = {
        "recipient": "NATIONAL_INFORMATION_BUREAU",
        "fields_sent": ["exchange", "destination"],
        "concerning_event_id": exchange_id,
    }
    early = post(intake, captive_id, "notifications", {**notice, "occurred_at": "2025-05-19T00:00:00Z"})
    assert early.status_code == 422 and "before the EXCHANGED it reports" in early.text
    sent = post(intake, captive_id, "notifications", {**notice, "occurred_at": "2025-05-21T00:00:00Z"})
    assert sent.status_code == 201, sent.text
    assert {to for to, *_ in overdue_exchange("2025-05-28")} == {"CENTRAL_TRACING_AGENCY"}
