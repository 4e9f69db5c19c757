"""`captives demo` against the three services as real processes on real Kafka and PostgreSQL,
with the demo agencies' own clients: what the scenario leaves recorded, asked of the services
independently of what the demo printed, and a second run that records nothing twice."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from services import demo
from services.cli_clients import create_demo_clients
from services.demo import CHOE, HAN, JO, JONG, KANG, KIM, PAK, RYU, SCENARIO
from tests.support import AUTH

pytestmark = pytest.mark.integration

SERVICES = ("intake", "status", "disposition")


@pytest.fixture(scope="module")
def credentials() -> dict[str, dict]:
    # The demo agencies and clients, in the registry the e2e stack's services read.
    return create_demo_clients(Path(AUTH.registry_file).with_name("demo-credentials.json"))


@pytest.fixture(scope="module")
def urls(stack) -> dict[str, str]:
    return {service: str(stack[service].base_url) for service in SERVICES}


@pytest.fixture(scope="module")
def loaded(urls, credentials):
    output = io.StringIO()
    first = demo.run_demo(urls, credentials, console=Console(file=output, width=160, color_system=None))
    return first, output.getvalue()


def status_of(stack, captive_id: str, **params) -> dict:
    answer = stack["status"].get(f"/v1/captives/{captive_id}/status", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def blocked(reasons: list[dict]) -> dict[str, str]:
    return {reason["rule_id"]: reason["finding"] for reason in reasons if reason["finding"].startswith("BLOCKED")}


def transfer_check(stack, captive_id: str, destination: str) -> dict:
    answer = stack["disposition"].get(
        f"/v1/captives/{captive_id}/dispositions/check", params={"kind": "ART_12_TRANSFER", "destination": destination}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_presumed_pow_until_the_acknowledgement_then_pow_and_the_unclear_one_until_his_tribunal(stack, loaded):
    captives, _ = loaded
    kim = captives.captives[KIM]
    before = status_of(stack, kim, as_of="2025-03-01")
    assert before["status"] == "PRESUMED_POW" and before["rules"][-1]["rule_id"] == "R7"
    after = status_of(stack, kim)
    assert (after["status"], after["rules"][-1]["rule_id"]) == ("POW", "R3")
    assert after["effective_from"] == "2025-04-28T00:00:00Z"

    jong = captives.captives[JONG]
    between = status_of(stack, jong, as_of="2025-05-01")
    assert between["status"] == "PRESUMED_POW" and "affiliation unclear" in between["rules"][-1]["finding"]
    ruled = status_of(stack, jong)
    assert (ruled["status"], ruled["rules"][-1]["rule_id"]) == ("POW", "R8")
    assert ruled["effective_from"].startswith("2025-05-13")

    assert {soldier: status_of(stack, captive_id)["status"] for soldier, captive_id in captives.captives.items()} == (
        dict.fromkeys(SCENARIO.soldiers, "POW")
    )


def test_the_istanbul_list_refuses_those_at_risk_and_says_why_and_exchanges_the_others(stack, loaded):
    captives, _ = loaded
    ids = captives.captives
    answer = stack["disposition"].get(f"/v1/exchange-lists/{captives.lists['istanbul']}")
    assert answer.status_code == 200, answer.text
    exchange = answer.json()
    assert exchange["counterpart_state"] == "RU" and exchange["stage"] == "EXECUTED"
    assert set(exchange["proposed"]) == {ids[PAK], ids[CHOE]}
    results = {result["captive_id"]: result for result in exchange["last_check"]}
    assert {captive_id for captive_id, result in results.items() if result["eligible"]} == {ids[PAK], ids[CHOE]}

    refused = {soldier: blocked(results[ids[soldier]]["blocked_by"]) for soldier in (JO, KANG, KIM, JONG, HAN, RYU)}
    for soldier in (JO, KANG, KIM, JONG, RYU):
        assert "real risk in KP (he could be sent on there from RU)" in refused[soldier]["D4"], soldier
    assert list(refused[KIM]) == ["D4"]  # he wishes to go home: only the risk keeps him off the list
    assert "diplomatic assurances do not clear it" in refused[RYU]["D4"]
    assert "a media statement never verifies a wish" in refused[KANG]["D3"]
    for soldier, wish in ((JO, "THIRD_STATE to KR"), (JONG, "STAY_IN_DETAINING_STATE"), (HAN, "UNDECIDED")):
        assert f"his verified wish is {wish} (event" in refused[soldier]["D3"]
        assert "not REPATRIATE" in refused[soldier]["D3"]
    assert "risk in RU not assessed" in refused[HAN]["D4"]

    custody = {soldier: stack["disposition"].get(f"/v1/captives/{ids[soldier]}").json()["custody"] for soldier in ids}
    assert custody == {**dict.fromkeys(SCENARIO.soldiers, "INTERNED"), PAK: "ENDED", CHOE: "ENDED", JO: "ENDED"}


def test_jo_is_transferred_to_south_korea_under_art_12_and_no_one_else_could_be(stack, loaded):
    captives, _ = loaded
    jo = captives.captives[JO]
    assert captives.transfers[JO].startswith("DSP-")
    assert stack["disposition"].get(f"/v1/captives/{jo}").json()["custody"] == "ENDED"
    # Every condition of the transfer still holds; only his custody has ended (it was carried out).
    now = transfer_check(stack, jo, "KR")
    assert list(blocked(now["reasons"])) == ["D1"]
    satisfied = {reason["rule_id"]: reason["finding"] for reason in now["reasons"]}
    assert "verified wish THIRD_STATE to KR" in satisfied["D3"]
    assert "KR assured it is willing and able to apply GC III" in satisfied["D5"]
    assert "claims him as its national" in satisfied["D5"]
    assert "no real risk in KR" in satisfied["D4"]
    assert "THIRD_STATE to KR" in blocked(transfer_check(stack, captives.captives[KIM], "KR")["reasons"])["D3"]


def test_south_korea_s_liaison_sees_exactly_the_captive_who_asked_to_go_there_and_consented(urls, credentials, loaded):
    captives, _ = loaded
    secret = credentials["kr-liaison"]["secret"]
    issued = httpx.post(
        f"{urls['intake']}/oauth/token", auth=("kr-liaison", secret), data={"grant_type": "client_credentials"}
    )
    assert issued.status_code == 200, issued.text
    liaison = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    for service in ("intake", "disposition"):
        seen = {
            soldier
            for soldier, captive_id in captives.captives.items()
            if httpx.get(f"{urls[service]}/v1/captives/{captive_id}", headers=liaison).status_code == 200
        }
        assert seen == {JO}, service  # not Kang, whose latest wish is KR too, but said only to a newspaper


def test_the_demo_prints_each_dated_step_and_what_changed(loaded):
    _, output = loaded
    for step in SCENARIO.steps:
        assert f"{step.on.isoformat()}  {step.title}" in output
    assert "status — → PRESUMED_POW  R7 AP I Art. 45(1)" in output
    assert "status PRESUMED_POW → POW  R3 GC III Art. 4A(1); AP I Art. 43" in output
    assert "status PRESUMED_POW → POW  R8 GC III Art. 5(2): the competent tribunal ruled POW" in output
    assert "KP acknowledged as a party (co-belligerent of the Russian Federation) from 2025-04-28: 8 status" in output
    assert "checks it as a whole: 2 eligible, 6 refused" in output
    assert "exchange with RU: — → blocked by D4" in output
    assert "sees Jo Kwang-chol; for the other 7 the answer is 'no captive' (404)" in output
    assert "Art. 12 transfer of Jo Kwang-chol to KR now: blocked: D5" in output
    assert "Art. 12 transfer of Jo Kwang-chol to KR now: allowed" in output
    assert "custody INTERNED → ENDED" in output
    assert "already recorded" not in output


def test_running_the_demo_again_records_nothing_twice(stack, urls, credentials, loaded):
    first, _ = loaded
    kim = first.captives[KIM]
    decisions = stack["status"].get(f"/v1/captives/{kim}/decisions").json()
    history = stack["intake"].get(f"/v1/captives/{first.captives[JO]}/events").json()

    output = io.StringIO()
    again = demo.run_demo(urls, credentials, console=Console(file=output, width=160, color_system=None))

    assert (again.captives, again.lists, again.transfers) == (first.captives, first.lists, first.transfers)
    assert output.getvalue().count("already recorded by an earlier run") == len(SCENARIO.steps)
    assert stack["status"].get(f"/v1/captives/{kim}/decisions").json() == decisions
    assert stack["intake"].get(f"/v1/captives/{first.captives[JO]}/events").json() == history


def test_after_the_demo_each_service_s_metrics_count_what_it_did(stack, loaded):
    from prometheus_client.parser import text_string_to_metric_families

    for service in ("intake", "status", "disposition"):
        text = stack[service].get("/metrics").text
        values = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

        def total(name: str, values=values, **labels) -> float:
            return sum(v for (n, found), v in values.items() if n == name and set(labels.items()) <= set(found))

        assert total("captives_events_produced_total") > 0, service
        assert total("http_requests_total", method="POST") > 0 or service == "status", service
        assert total("http_request_duration_seconds_count") > 0, service
        if service != "intake":
            assert total("captives_events_consumed_total", outcome="applied") > 0, service
