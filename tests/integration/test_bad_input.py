"""Bad input at the door of every service, over raw HTTP (the real apps in-process, their relays
and consumers running, real PostgreSQL and Kafka): every write endpoint of the three services
refuses a body over the size limit (413), JSON nested too deeply (400), bytes that are not
UTF-8 JSON (4xx) and text holding U+0000 (422 naming where it is), none with a 5xx and none
leaving an event behind; and names in any script are kept exactly, from the request through
intake's record and history to the sealed event on the topic.

tests/unit/test_limits.py proves the limits middleware itself; tests/integration/test_intake_fuzz.py
fuzzes intake's bodies. This file goes endpoint by endpoint through all three services.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from deploy.postgres.cluster import create_database, drop_database
from shared.auth.settings import AuthSettings
from shared.contracts import decode
from tests.support import HEADERS, build_app, read_topic, registration, settings_for, wait_until

pytestmark = pytest.mark.integration

SERVICES = ("intake", "status", "disposition")
# A small limit, so that passing it costs little; AUTH_MAX_BODY_BYTES sets it in a deployment
# (tests/integration/test_access_control.py sends one body over the default 8 MiB).
MAX_BODY_BYTES = 64 * 1024


@dataclass
class Stack:
    clients: dict[str, TestClient]
    bootstrap: str
    topic_prefix: str
    known: dict[str, str]  # path parameter -> a value naming something stored


@pytest.fixture(scope="module")
def stack(postgres_server, kafka_bootstrap) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    prefix = f"badinput{suffix}."
    databases: list[str] = []
    clients: dict[str, TestClient] = {}
    try:
        for service in SERVICES:
            databases.append(f"badinput_{service}_{suffix}")
            url = create_database(postgres_server, databases[-1])
            settings = settings_for(service, database_url=url, bootstrap=kafka_bootstrap, prefix=prefix)
            settings.auth = AuthSettings().model_copy(update={"max_body_bytes": MAX_BODY_BYTES})
            clients[service] = TestClient(build_app(service, settings)).__enter__()
        answer = clients["intake"].post("/v1/captives", json=registration(), headers=HEADERS)
        assert answer.status_code == 201, answer.text
        captive_id = answer.json()["captive_id"]
        for service in ("status", "disposition"):
            wait_until(
                lambda s=service: clients[s].get(f"/v1/captives/{captive_id}", headers=HEADERS).status_code == 200,
                what=f"{service} to learn of {captive_id}",
            )
        exchange = {"counterpart_state": "RU", "agreement": "Istanbul", "captive_ids": [captive_id]}
        answer = clients["disposition"].post("/v1/exchange-lists", json=exchange, headers=HEADERS)
        assert answer.status_code == 201, answer.text
        known = {
            "captive_id": captive_id,
            "list_id": answer.json()["list_id"],
            "disposition_id": "DSP-0",
            "state": "KR",
        }
        yield Stack(clients, kafka_bootstrap, prefix, known)
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)
        for name in databases:
            drop_database(postgres_server, name)


def writes(stack: Stack) -> Iterator[tuple[str, TestClient, str]]:
    """(service, client, url) of every POST endpoint behind a token, its path filled in."""
    for service, client in stack.clients.items():
        for path, operations in client.app.openapi()["paths"].items():
            if "post" in operations and path.startswith("/v1/"):
                yield service, client, re.sub(r"\{(\w+)\}", lambda m: stack.known[m.group(1)], path)


def event_count(client: TestClient) -> int:
    runtime = client.app.state.runtime
    with runtime.sessions() as session:
        events = runtime.definition.store_tables.events
        return session.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()


def refused(client: TestClient, url: str, content, headers: dict | None = None):
    """POST `content`; the answer must be a 4xx saying why, and nothing may be appended."""
    before = event_count(client)
    answer = client.post(
        url, content=content, headers={**HEADERS, "content-type": "application/json", **(headers or {})}
    )
    assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.text[:300])
    assert answer.json()["detail"], f"{url}: a refusal must say what is wrong"
    assert event_count(client) == before, f"{url}: a refused request ({answer.status_code}) appended an event"
    return answer


def test_every_write_refuses_a_body_over_the_limit_declared_or_not(stack):
    huge = b'{"note": "' + b"x" * MAX_BODY_BYTES + b'"}'
    checked = 0
    for _service, client, url in writes(stack):
        assert refused(client, url, huge).status_code == 413
        # Without a Content-Length (chunked), the bytes are counted as they arrive.
        chunks = (huge[i : i + 8192] for i in range(0, len(huge), 8192))
        answer = refused(client, url, chunks)
        assert answer.status_code == 413 and f"larger than {MAX_BODY_BYTES} bytes" in answer.json()["detail"]
        checked += 1
    assert checked >= 25  # the three services' writes


def test_every_write_refuses_json_nested_deeper_than_the_limit(stack):
    deep = "[" * (AuthSettings().max_json_depth + 1) + "]" * (AuthSettings().max_json_depth + 1)
    for _service, client, url in writes(stack):
        answer = refused(client, url, deep)
        assert answer.status_code == 400 and "nesting" in answer.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"surname": {"answer": "GIVEN", "value": "\xff\xfe"}}',  # not UTF-8
        b'{"reason": "\xed\xa0\x80"}',  # an encoded lone surrogate
        b'{"agreement": "\xc3"}',  # cut in the middle of a character
        '{"agreement": "Стамбул"}'.encode("utf-16-le"),  # UTF-16 without its mark
        b"\x00\x00\x00",
    ],
    ids=["invalid", "surrogate", "truncated", "utf16", "nul-bytes"],
)
def test_every_write_refuses_bytes_that_are_not_utf8_json(stack, body):
    for _service, client, url in writes(stack):
        refused(client, url, body)


# -- U+0000: PostgreSQL text cannot hold it; every service refuses it naming where it is ----------


def _wish() -> dict:
    provenance = {"interviewer": "delegate-1", "interviewer_agency": "ICRC", "setting": "PRIVATE_ICRC_INTERVIEW"}
    return {"wish": "UNDECIDED", "statement": "он сказал\x00", "provenance": {**provenance, "free_and_informed": True}}


NUL_CASES = [
    ("intake", "/v1/captives", lambda: registration("김\x00철", "Kim"), ["body", "surname", "value"]),
    ("intake", "/v1/captives:batch", lambda: {"captives": [registration(), registration("Ri\x00")]}, None),
    ("intake", "/v1/captives/{captive_id}/wishes", _wish, ["body", "statement"]),
    (
        "status",
        "/v1/conflict-facts",
        lambda: {"kind": "HOSTILITIES_CEASED", "occurred_at": "2025-05-01T00:00:00Z", "source": "TASS\x00"},
        ["body", "source"],
    ),
    (
        "disposition",
        "/v1/exchange-lists",
        lambda: {"counterpart_state": "RU", "agreement": "\x00", "captive_ids": ["CAP-0000-0000-0000"]},
        ["body", "agreement"],
    ),
    (
        "disposition",
        "/v1/states/{state}/assurances",
        lambda: {"willing_and_able_to_apply_gc_iii": True, "assessment": "ok", "n\x00te": 1},
        ["body", "n\x00te"],
    ),
]


@pytest.mark.parametrize(("service", "path", "body", "where"), NUL_CASES, ids=[c[1] for c in NUL_CASES])
def test_text_with_nul_is_refused_with_422_naming_the_field(stack, service, path, body, where):
    client = stack.clients[service]
    url = re.sub(r"\{(\w+)\}", lambda m: stack.known[m.group(1)], path)
    answer = refused(client, url, json.dumps(body()).encode())
    assert answer.status_code == 422, answer.text
    locations = [problem["loc"] for problem in answer.json()["detail"]]
    assert locations == [where or ["body", "captives", 1, "surname", "value"]]
    assert "U+0000" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("service", "url", "where"),
    [
        ("intake", "/v1/access-log?agency=%00", ["query", "agency"]),
        ("status", "/v1/captives/{captive_id}/status?as_of=2025-01-01%00", ["query", "as_of"]),
        ("disposition", "/v1/exchange-lists/XL-%00", ["path"]),
    ],
)
def test_a_nul_in_the_query_or_the_path_is_refused_with_422(stack, service, url, where):
    url = re.sub(r"\{(\w+)\}", lambda m: stack.known[m.group(1)], url)
    answer = stack.clients[service].get(url, headers=HEADERS)
    assert answer.status_code == 422, answer.text
    assert [problem["loc"] for problem in answer.json()["detail"]] == [where]


def test_a_feed_cursor_past_any_position_is_an_empty_page_not_a_crash(stack):
    """Found by schemathesis: a 19-digit cursor is past PostgreSQL's bigint."""
    for client in stack.clients.values():
        answer = client.get("/v1/feed", params={"after": "9" * 19}, headers=HEADERS)
        assert answer.status_code == 200, answer.text
        assert answer.json()["events"] == [] and answer.json()["end"] is True


def test_times_at_the_ends_of_the_calendar_are_refused_not_crashed_on(stack):
    """Found by schemathesis: 0001-01-01T00:00+00:01 is before year 1 in UTC."""
    for moment in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "1899-12-31T23:59:59Z"):
        fact = {"kind": "HOSTILITIES_CEASED", "occurred_at": moment, "source": "TASS"}
        answer = refused(stack.clients["status"], "/v1/conflict-facts", json.dumps(fact))
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "occurred_at"]
        body = registration()
        body["capture"]["captured_at"] = moment
        answer = refused(stack.clients["intake"], "/v1/captives", json.dumps(body))
        assert answer.json()["detail"][0]["loc"] == ["body", "capture", "captured_at"]
        for service, url in (("intake", "/v1/overdue"), ("disposition", "/v1/captives/{captive_id}/eligibility")):
            url = url.replace("{captive_id}", stack.known["captive_id"])
            answer = stack.clients[service].get(url, params={"as_of": moment}, headers=HEADERS)
            assert answer.status_code == 422, (url, answer.text)


# -- names in any script, kept exactly --------------------------------------------------------------

NAMES = {
    "arabic": ("محمد عبد الله", "Muhammad Abd Allah"),
    "hebrew with a maqaf and a bidi mark": ("יוסף בן־דוד\u200f", "Yosef Ben-David"),
    "hangul, latin and cyrillic": ("김 Kim Ким", "Kim"),
    "decomposed (NFD) combining marks": (unicodedata.normalize("NFD", "Nguyễn Thị Ánh"), "Nguyen Thi Anh"),
    "composed (NFC) combining marks": (unicodedata.normalize("NFC", "Nguyễn Thị Ánh"), "Nguyen Thi Anh"),
    "emoji with a zero-width joiner and a flag": ("Pak 👨\u200d👩\u200d👦 🇰🇵", "Pak"),
    "right-to-left embedding and spaces kept": ("  \u202bعلي\u202c  ", "Ali"),
}


@pytest.mark.parametrize(("surname", "romanised"), NAMES.values(), ids=NAMES.keys())
def test_names_in_any_script_are_kept_exactly_in_the_record_history_and_sealed_event(stack, surname, romanised):
    intake = stack.clients["intake"]
    body = registration(surname, romanised)
    body["first_names"] = {"answer": "GIVEN", "value": surname[::-1], "romanised": romanised}
    raw = json.dumps(body, ensure_ascii=False).encode()  # the characters themselves, not \u escapes
    answer = intake.post("/v1/captives", content=raw, headers={**HEADERS, "content-type": "application/json"})
    assert answer.status_code == 201, answer.text
    captive_id = answer.json()["captive_id"]

    record = intake.get(f"/v1/captives/{captive_id}", headers=HEADERS)
    identity = record.json()["identity"]
    assert identity["surname"]["value"].encode() == surname.encode()
    assert identity["first_names"]["value"].encode() == surname[::-1].encode()
    assert identity["surname"]["romanised"] == romanised
    [registered] = intake.get(f"/v1/captives/{captive_id}/events", headers=HEADERS).json()
    assert registered["data"]["surname"]["value"].encode() == surname.encode()

    topic = f"{stack.topic_prefix}intake.events.v1"
    [record] = wait_until(
        lambda: [r for r in read_topic(stack.bootstrap, topic) if r.key.decode() == captive_id],
        what=f"the registration of {captive_id} on {topic}",
    )
    published = decode(record.value)
    assert published.payload.surname.withheld == "sealed"  # identity never travels in clear
    assert surname.encode() not in record.value
    runtime = intake.app.state.runtime
    with runtime.sessions() as session:
        [opened] = runtime.reveal(session, [published])
    assert opened.payload.surname.value.encode() == surname.encode()
    assert opened.payload.first_names.value.encode() == surname[::-1].encode()
