"""B6: checking an exchange list as a whole. Latency of `POST /v1/exchange-lists/{id}/check`,
repeated, for a list of 1,000 entries.

The disposition service runs in this process (its HTTP API through Starlette's TestClient, on a
fresh database on the run's PostgreSQL; no broker is needed: the check reads the database only).
The captives' facts arrive through the service's own event handlers before the clock starts;
a third of them have declared a wish and been assessed, so they are eligible."""

from __future__ import annotations

import statistics
import time

from fastapi.testclient import TestClient

from bench.growth import percentile
from bench.harness import Harness, operator_headers, person_headers
from bench.results import BenchResult
from bench.samples import ICRC_DELEGATE, envelope, registration
from services.disposition.app import DispositionSettings, build
from shared.auth.tokens import BearerAuth
from shared.broker.settings import KafkaSettings
from shared.contracts import DecodedEvent
from shared.contracts.identifiers import new_captive_id
from shared.contracts.intake import WishDeclared
from shared.contracts.status import StatusDetermined

ID = "B6"
TITLE = "Exchange list: checking a list as a whole"
SIZES = {"quick": {"entries": 1_000, "repeats": 10}, "full": {"entries": 1_000, "repeats": 50}}
TARGET_MS = 1_000
CHUNK = 50  # captives whose facts are applied in one transaction while loading


def facts(captive_id: str, eligible: bool) -> list:
    events = [
        registration(captive_id),
        StatusDetermined(captive_id=captive_id, status="PRESUMED_POW", rulebook_version="v1", rules=[], facts=[]),
    ]
    if eligible:
        events.append(
            WishDeclared(
                captive_id=captive_id,
                wish="REPATRIATE",
                provenance={
                    "interviewer": "ICRC",
                    "interviewer_agency": "ICRC",
                    "setting": "PRIVATE_ICRC_INTERVIEW",
                    "free_and_informed": True,
                },
            )
        )
    return events


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    entries, repeats = sizes["entries"], sizes["repeats"]
    settings = DispositionSettings(
        database_url=harness.database("b6"),
        log_json=False,
        log_level="WARNING",
        kafka=KafkaSettings(bootstrap_servers=harness.bootstrap, topic_prefix=harness.topic_prefix("b6")),
    )
    with TestClient(build(settings, start_background=False)) as client:
        client.auth = BearerAuth(operator_headers().source)
        runtime = client.app.state.runtime
        handle = runtime.definition.consumer_handlers(runtime.store)
        ids = [new_captive_id() for _ in range(entries)]
        task = harness.task("B6 loading the captives' facts", total=entries, unit=" captives/s")
        for start in range(0, entries, CHUNK):
            with runtime.sessions.begin() as session:
                for n in range(start, min(start + CHUNK, entries)):
                    for payload in facts(ids[n], eligible=n % 3 == 0):
                        author = ICRC_DELEGATE if payload.event_type == "WishDeclared" else None
                        record = envelope(payload, ids[n], author=author)
                        handle[payload.event_type].apply(session, [DecodedEvent(record, payload)])
            task.update(min(start + CHUNK, entries))
        task.done()
        legal_officer = person_headers("d.lysenko")
        task = harness.task("B6 assessing a third of them (HTTP)", total=len(ids[::3]), unit=" requests/s")
        for n, captive_id in enumerate(ids[::3]):
            answer = client.post(
                f"/v1/captives/{captive_id}/risk-assessments",
                # Says whether RU would hand him on: an open onward question blocks (D4).
                json={
                    "destination": "RU",
                    "outcome": "NO_REAL_RISK",
                    "would_hand_on": False,
                    "assessor": "b",
                    "basis": "b",
                },
                headers=legal_officer,  # a "no real risk" clears only as an officer records it himself
            )
            assert answer.status_code == 201, answer.text
            task.update(n + 1)
        task.done()
        answer = client.post(
            "/v1/exchange-lists", json={"counterpart_state": "RU", "agreement": "bench", "captive_ids": ids}
        )
        assert answer.status_code == 201, answer.text
        list_id = answer.json()["list_id"]
        timings = []
        task = harness.task("B6 checking the list", total=repeats, unit=" checks/s")
        for n in range(repeats):
            started = time.perf_counter()
            answer = client.post(f"/v1/exchange-lists/{list_id}/check")
            timings.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 201, answer.text
            task.update(n + 1)
        task.done()
        checked = answer.json()
    result.add("check p50", statistics.median(timings), "ms")
    result.add("check p95", percentile(timings, 0.95), "ms")
    result.add("check max", max(timings), "ms", target=f"< {TARGET_MS:,} ms", met=max(timings) < TARGET_MS)
    result.series["timings_ms"] = timings
    result.notes.append(
        f"{entries:,} entries ({checked['eligible']} eligible, {checked['blocked']} blocked), {repeats} checks, "
        "HTTP in-process (TestClient), PostgreSQL."
    )
