"""The three services as real processes (as `captives serve` runs them), on real PostgreSQL and a
real Kafka broker, driven over HTTP the way an agency would."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import SERVICES
from tests.support import HEADERS, KPA_MEMBERSHIP, registration, wait_until

pytestmark = pytest.mark.integration


def register(stack, **overrides) -> str:
    created = stack["intake"].post("/v1/captives", json=registration(**overrides), headers=HEADERS)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/v1/captives/{created.json()['captive_id']}"
    return created.json()["captive_id"]


def test_a_registered_captive_gets_a_status_with_its_rule_trace_on_status_and_disposition(stack):
    captive_id = register(stack, armed_force=KPA_MEMBERSHIP)

    status = wait_until(
        lambda: ok_json(stack["status"].get(f"/v1/captives/{captive_id}")),
        timeout_s=30,
        what="the status on the status service",
    )
    assert status["status"] == "PRESUMED_POW"
    assert status["rulebook_version"] == "v1"
    assert [rule["rule_id"] for rule in status["rules"]] == ["R1", "R5", "R7"]
    registration_event = {fact["name"]: fact["source_event_id"] for fact in status["facts"]}["claimed_affiliation"]
    assert registration_event is not None
    assert status["effective_from"] == "2025-01-11T09:00:00Z", "protection runs from capture (Art. 5(1))"

    picture = wait_until(
        lambda: (
            (body := ok_json(stack["disposition"].get(f"/v1/captives/{captive_id}")))
            and body["registered"]
            and body["status"]
            and body
        ),
        timeout_s=30,
        what="registration and status on the disposition service",
    )
    assert picture["status"]["status"] == "PRESUMED_POW"
    assert picture["status"]["event_id"] == status["event_id"]
    assert picture["nationality"] == "KP"


def test_names_in_their_original_script_come_back_exactly(stack):
    # Hangul, Cyrillic, a zero-width joiner and a right-to-left embedding (overrides are refused)
    surname = "김\u200dОлег\u202bטל\u202c"
    captive_id = register(stack, surname=surname, romanised="Kim Oleg Tal")
    stored = stack["intake"].get(f"/v1/captives/{captive_id}").json()
    assert stored["identity"]["surname"] == {"answer": "GIVEN", "value": surname, "romanised": "Kim Oleg Tal"}
    assert stored["identity"]["first_names"] == {"answer": "DECLINED", "value": None, "romanised": None}


def test_concurrent_writes_on_one_version_have_one_winner_and_the_rest_get_409(stack):
    captive_id = register(stack)

    def amend(n: int) -> httpx.Response:
        return stack["intake"].post(
            f"/v1/captives/{captive_id}/identity-amendments",
            headers={**HEADERS, "If-Match": '"1"'},
            json={"field": "rank", "current": {"answer": "GIVEN", "value": f"rank-{n}"}, "reason": f"writer {n}"},
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(amend, range(6)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    winner = next(answer for answer in answers if answer.status_code == 201)
    loser = next(answer for answer in answers if answer.status_code == 409)
    assert "expected at version 1" in loser.json()["detail"]
    stored = stack["intake"].get(f"/v1/captives/{captive_id}")
    assert stored.headers["ETag"] == '"2"'
    assert stored.json()["identity"]["rank"] == json.loads(winner.request.content)["current"] | {"romanised": None}


def test_bad_input_gets_a_clear_4xx_and_changes_nothing(stack):
    captive_id = register(stack)
    intake = stack["intake"]
    before = intake.get(f"/v1/captives/{captive_id}").json()
    amendment = {"field": "rank", "current": {"answer": "GIVEN", "value": "x"}, "reason": "r"}
    url = f"/v1/captives/{captive_id}/identity-amendments"

    missing_field = registration()
    del missing_field["capture"]
    answer = intake.post("/v1/captives", json=missing_field, headers=HEADERS)
    assert answer.status_code == 422 and "capture" in answer.text

    answer = intake.post(
        "/v1/captives", content=b'{"surname": ', headers={**HEADERS, "content-type": "application/json"}
    )
    assert answer.status_code == 422 and "JSON" in answer.text

    given_without_value = {**registration(), "rank": {"answer": "GIVEN"}}
    answer = intake.post("/v1/captives", json=given_without_value, headers=HEADERS)
    assert answer.status_code == 422 and "required when the answer is GIVEN" in answer.text

    assert intake.post(url, json=amendment, headers=HEADERS).status_code == 428
    answer = intake.post(url, json=amendment, headers={**HEADERS, "If-Match": "yesterday"})
    assert answer.status_code == 400 and "If-Match" in answer.text
    answer = intake.post(url, json={**amendment, "field": "date_of_birth"}, headers={**HEADERS, "If-Match": '"1"'})
    assert answer.status_code == 422 and "takes a date" in answer.text
    assert intake.post(url, json=amendment, headers={**HEADERS, "If-Match": '"7"'}).status_code == 409
    missing = "CAP-0000-0000-0000"
    answer = intake.post(
        f"/v1/captives/{missing}/identity-amendments", json=amendment, headers={**HEADERS, "If-Match": '"1"'}
    )
    assert answer.status_code == 404
    assert intake.get("/v1/captives/not-a-captive-id").status_code == 422
    for service in SERVICES:
        assert stack[service].get(f"/v1/captives/{missing}").status_code == 404

    assert intake.get(f"/v1/captives/{captive_id}").json() == before


def ok_json(response: httpx.Response):
    return response.json() if response.status_code == 200 else None
