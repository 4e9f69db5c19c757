"""B2: sustained throughput through intake -> status -> disposition, and each service's peak
memory meanwhile.

The three services run as processes (bench/stack.py). Registrations go to intake in batches
(`POST /v1/captives:batch`, two requests in flight); the clock stops when every captive's status
is in the status service's read model and every captive's registration and status have been
applied by disposition (its eligibility re-computed in the same transaction), read from the
services' own databases. The services' RSS is sampled throughout."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import Harness, operator_headers
from bench.results import BenchResult
from bench.samples import registration_body
from bench.stack import SERVICES

ID = "B2"
TITLE = "Pipeline throughput: intake -> status -> disposition"
SIZES = {"quick": {"captives": 1_000, "batch": 250}, "full": {"captives": 50_000, "batch": 500}}
TARGET = 1_000
IN_FLIGHT = 2

DECIDED = "SELECT count(DISTINCT captive_id) FROM decisions"
SETTLED = "SELECT count(*) FROM captives WHERE status IS NOT NULL AND registration_event_id IS NOT NULL"


def headers() -> dict[str, str]:
    return dict(operator_headers())


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    captives, batch = sizes["captives"], sizes["batch"]
    stack = harness.stack()
    decided_before = stack.scalar("status", DECIDED)
    settled_before = stack.scalar("disposition", SETTLED)
    body = {"captives": [registration_body() for _ in range(batch)]}
    batches = [body] * (captives // batch)
    client = httpx.Client(base_url=stack.urls["intake"], headers=headers(), timeout=300)
    accepted_task = harness.task("B2 intake accepting", total=captives, unit=" captives/s")
    decided_task = harness.task("B2 status deciding", total=captives, unit=" captives/s")
    settled_task = harness.task("B2 disposition settling", total=captives, unit=" captives/s")
    accepted = 0
    accepted_at = None

    def send(one: dict) -> int:
        answer = client.post("/v1/captives:batch", json=one)
        answer.raise_for_status()
        return answer.json()["created"]

    deadline_s = 120 + captives / 20  # a correctness bound, not a target: 20 captives/s at worst
    with stack.sample_memory() as memory, harness.profiling("B2"), ThreadPoolExecutor(IN_FLIGHT) as pool:
        started = time.perf_counter()
        pending = [pool.submit(send, one) for one in batches]
        decided = settled = 0
        while settled < captives:
            if time.perf_counter() - started > deadline_s:
                raise RuntimeError(f"not settled within {deadline_s:.0f} s: {decided} decided, {settled} settled")
            done = [future for future in pending if future.done()]
            for future in done:
                accepted += future.result()
                pending.remove(future)
            if not pending and accepted_at is None:
                accepted_at = time.perf_counter()
            decided = stack.scalar("status", DECIDED) - decided_before
            settled = stack.scalar("disposition", SETTLED) - settled_before
            accepted_task.update(accepted)
            decided_task.update(decided)
            settled_task.update(settled)
            if settled < captives:
                time.sleep(0.25)
        finished = time.perf_counter()
    client.close()
    for task in (accepted_task, decided_task, settled_task):
        task.done()
    seconds = finished - started
    rate = captives / seconds
    result.add(
        "throughput (all statuses, eligibilities visible)",
        rate,
        "captives/s",
        target=f">= {TARGET:,} captives/s",
        met=rate >= TARGET,
    )
    result.add("intake accepting (HTTP batches)", captives / (accepted_at - started), "captives/s")
    for service in SERVICES:
        result.add(f"peak RSS, {service}", memory.peak(service) / 2**20, "MiB")
    result.series["memory"] = {
        "interval_s": memory.interval_s,
        "times": memory.times,
        "rss_mib": {service: [round(v / 2**20, 1) for v in values] for service, values in memory.rss.items()},
    }
    result.notes.append(
        f"{captives:,} registrations in batches of {batch} ({IN_FLIGHT} requests in flight); "
        f"all settled in {seconds:.1f} s; RSS sampled every {memory.interval_s} s."
    )
