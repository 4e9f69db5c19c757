"""One intake request followed through the stack: the W3C trace context it came with is on the
Kafka records of the events it caused in all three services, its correlation id is in those
events and in the logs, and each service's /metrics counts what happened."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts import decode
from shared.contracts.topics import DISPOSITION_EVENTS, INTAKE_EVENTS, STATUS_EVENTS
from tests.support import read_topic, registration, wait_until

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
CORRELATION_ID = "ukr-hq-2025-0111-observability"


def samples(stack, service: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the service's /metrics: (name, sorted labels) -> value."""
    answer = stack[service].get("/metrics", headers={"Authorization": ""})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def total(found: dict, name: str, **labels) -> float:
    return sum(
        value
        for (sample, sample_labels), value in found.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def records_about(stack, topic: str, captive_id: str) -> list:
    records = read_topic(stack["bootstrap"], stack["topic_prefix"] + topic)
    return [record for record in records if record.key == captive_id.encode()]


def test_a_request_is_followed_by_trace_and_correlation_to_every_event_it_caused(stack):
    answer = stack["intake"].post(
        "/v1/captives",
        json=registration(captured_at="2025-01-11T09:00:00Z"),
        headers={"traceparent": TRACEPARENT, "X-Correlation-ID": CORRELATION_ID},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Correlation-ID"] == CORRELATION_ID
    captive_id = answer.json()["captive_id"]
    wait_until(
        lambda: stack["disposition"].get(f"/v1/captives/{captive_id}/eligibility").status_code == 200,
        what="the eligibility the registration leads to",
    )

    for topic in (INTAKE_EVENTS, STATUS_EVENTS, DISPOSITION_EVENTS):
        records = wait_until(lambda t=topic: records_about(stack, t, captive_id), what=f"records on {topic}")
        for record in records:
            headers = dict(record.headers)
            assert headers["traceparent"].decode().split("-")[1] == TRACE_ID, (topic, headers)
            assert decode(record.value).envelope.correlation_id == CORRELATION_ID, topic

    # The request's log lines name its correlation id and its trace.
    lines = [
        json.loads(line)
        for service in ("intake", "status", "disposition")
        for line in (stack["logs"] / f"{service}.log").read_text().splitlines()
        if line.startswith("{")
    ]
    ours = [line for line in lines if line.get("correlation_id") == CORRELATION_ID]
    assert ours, "no log line carries the request's correlation id"
    assert {line["trace_id"] for line in ours if "trace_id" in line} == {TRACE_ID}
    assert any(line["service"] == "intake" and line["logger"] == "uvicorn.access" for line in ours)


def test_metrics_count_requests_events_and_backlog(stack):
    for _ in range(3):
        assert stack["intake"].post("/v1/captives", json=registration()).status_code == 201
    assert stack["status"].get("/v1/captives/C-nobody").status_code in (404, 422)

    def counted() -> bool:
        status = samples(stack, "status")
        return (
            total(status, "captives_events_consumed_total", outcome="applied") >= 3
            and total(status, "captives_events_produced_total") >= 3
        )

    wait_until(counted, what="status to count what it consumed and produced")
    intake, status, disposition = (samples(stack, s) for s in ("intake", "status", "disposition"))
    assert total(intake, "http_request_duration_seconds_count", handler="/v1/captives", method="POST") >= 3
    assert total(intake, "http_requests_total", handler="/v1/captives", status="201") >= 3
    assert total(intake, "captives_events_produced_total") >= 3
    assert total(intake, "captives_relay_leader") == 1
    assert ("captives_outbox_backlog", ()) in intake
    assert total(disposition, "captives_events_consumed_total", outcome="applied") >= 3
    assert ("captives_dead_lettered_total", ()) in status
    lag = [labels for (name, labels) in status if name == "captives_consumer_lag"]
    assert lag and all(dict(labels)["topic"].endswith(INTAKE_EVENTS) for labels in lag)
    # Route templates, never ids: nothing about a particular captive leaves through /metrics.
    assert not any("C-nobody" in str(labels) for (_name, labels) in status)
