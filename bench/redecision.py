"""B8: one conflict fact re-decides N captives. How long until every new StatusDetermined is on
the topic (acknowledged by the broker, acks=all)?

The status service runs in this process (its HTTP API through Starlette's TestClient, its relay
and consumer threads on the run's broker, a fresh database on the run's PostgreSQL). The N
registrations are applied through the service's own registration handler, in chunks, and their
first decisions published, before the clock starts."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from bench.harness import Harness, operator_headers
from bench.results import BenchResult
from bench.samples import envelope, registration
from services.status.app import StatusSettings, build
from shared.broker.settings import KafkaSettings
from shared.contracts import DecodedEvent

ID = "B8"
TITLE = "Re-decision: one conflict fact affecting many captives"
SIZES = {"quick": {"captives": 2_000}, "full": {"captives": 10_000}}
# The README's figure: 10,000 captives' decisions all on the topic within 10 s.
TARGET = 1_000
CHUNK = 500


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    captives = sizes["captives"]
    settings = StatusSettings(
        database_url=harness.database("b8"),
        log_json=False,
        log_level="WARNING",
        checkpoint_interval_s=0,
        signing_key_file=str(harness.workdir / "keys" / "b8-status.pem"),
        kafka=KafkaSettings(bootstrap_servers=harness.bootstrap, topic_prefix=harness.topic_prefix("b8")),
    )
    with TestClient(build(settings)) as client:
        runtime = client.app.state.runtime
        on_registered = runtime.definition.consumer_handlers(runtime.store)["CaptiveRegistered"]
        task = harness.task("B8 registering captives", total=captives, unit=" captives/s")
        for start in range(0, captives, CHUNK):
            with runtime.sessions.begin() as session:
                for n in range(start, min(start + CHUNK, captives)):
                    payload = registration(f"CAP-B8{n:010d}")
                    on_registered.apply(session, [DecodedEvent(envelope(payload, payload.captive_id), payload)])
            runtime.relay.wake()
            task.update(min(start + CHUNK, captives))
        task.done()
        task = harness.task("B8 publishing first decisions", total=captives, unit=" events/s")
        while (backlog := runtime.relay.backlog()) > 0:
            task.update(captives - backlog)
            time.sleep(0.2)
        task.done()

        published_before = runtime.relay.published_total
        task = harness.task("B8 conflict fact: re-deciding, publishing", total=None)
        started = time.perf_counter()
        answer = client.post(
            "/v1/conflict-facts",
            json={
                "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
                "state": "KP",
                "source": "benchmark",
                "occurred_at": "2025-04-28T00:00:00Z",
            },
            headers=operator_headers(),
        )
        committed = time.perf_counter()
        assert answer.status_code == 201, answer.text
        changed = answer.json()["decisions_changed"]
        while runtime.relay.backlog() > 0:
            time.sleep(0.01)
        on_topic = time.perf_counter()
        published = runtime.relay.published_total - published_before
        task.done()
    if changed != captives:
        raise RuntimeError(f"the conflict fact changed {changed} decisions, expected {captives}")
    rate = changed / (on_topic - started)
    result.add("re-decide + append, one transaction", committed - started, "s", digits=2)
    result.add("until all on the topic (acks=all)", on_topic - started, "s", digits=2)
    result.add(
        "throughput",
        rate,
        "decisions/s",
        target=f">= {TARGET:,} decisions/s (10,000 in 10 s)",
        met=rate >= TARGET,
    )
    result.notes.append(
        f"{changed:,} decisions changed (StatusDetermined appended), {published:,} events published "
        "including the fact; HTTP in-process (TestClient)."
    )
