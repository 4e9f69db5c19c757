"""B3: end-to-end latency, from `POST /v1/captives` on intake to the captive's status being
visible on the status service, at fixed offered loads (the lowest, 10 requests/s, shows the
path's own latency, before any queueing).

Open loop: request i of a load of R requests/s is due at t0 + i/R, whether or not earlier ones
have been answered, and its latency counts from when it was due (so a backlog shows as latency
instead of lowering the load). A status is visible once its StatusDetermined is committed in the
status service's database, with the decision row the API reads in the same transaction; a probe
reads new ones there every 2 ms. The services run as processes (bench/stack.py), the same as B2."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx
import psycopg
import sqlalchemy as sa

from bench.growth import percentile
from bench.harness import Harness
from bench.pipeline import headers
from bench.results import BenchResult
from bench.samples import registration_body

ID = "B3"
TITLE = "End-to-end latency: POST /v1/captives -> status visible on the status service"
IN_FLIGHT = 200  # requests sent at once; the rest wait their turn (open loop: late counts)
SIZES = {
    "quick": {"loads": [10, 50, 200, 500], "seconds": 3, "drain_s": 30},
    "full": {"loads": [10, 50, 200, 500], "seconds": 30, "drain_s": 300},
}
TARGET_MS, TARGET_LOAD = 100, 200
PROBE_INTERVAL_S = 0.002

NEW_DECISIONS = (
    "SELECT position, stream_id FROM events WHERE position > %s AND event_type = 'StatusDetermined' ORDER BY position"
)


class VisibilityProbe:
    """Notes the moment each captive's first StatusDetermined is seen in the status database."""

    def __init__(self, database_url: str):
        url = sa.make_url(database_url)
        self.conninfo = f"host={url.host} port={url.port} dbname={url.database} user={url.username}"
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-probe", daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            last = connection.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
            while not self._stop.is_set():
                rows = connection.execute(NEW_DECISIONS, (last,), prepare=True).fetchall()
                now = time.perf_counter()
                for position, captive_id in rows:
                    self.seen.setdefault(captive_id, now)
                    last = position
                self._stop.wait(PROBE_INTERVAL_S)

    def __enter__(self) -> VisibilityProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


async def offer(url: str, rate: int, seconds: float) -> tuple[dict[str, float], Counter, float]:
    """Send `rate` registrations a second for `seconds`; the due time of each captive created,
    the requests that failed (by status code or error), and the rate actually sent."""
    count = int(rate * seconds)
    body = registration_body()
    due: dict[str, float] = {}
    failures: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    # Requests past the connections wait here, not in httpx's pool: its queue costs time per
    # waiting request on every assignment, so thousands of them made the client, not the
    # service, the bottleneck. A request's latency still counts from when it was due.
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, headers=headers(), timeout=60, limits=limits) as client:

        async def one(at: float) -> None:
            # One retry when the connection drops (a kept-alive connection the server closed
            # meanwhile). Without an Idempotency-Key (which would add its own statements to the
            # path measured): at worst a second captive is registered, and only one is counted.
            for attempt in (1, 2):
                try:
                    async with in_flight:
                        answer = await client.post("/v1/captives", json=body)
                except httpx.TransportError as error:
                    if attempt == 2:
                        failures[type(error).__name__] += 1
                    continue
                if answer.status_code == 201:
                    due[answer.json()["captive_id"]] = at
                else:
                    failures[str(answer.status_code)] += 1
                return

        started = time.perf_counter()
        tasks = []
        for i in range(count):
            at = started + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at)))
        sent_rate = count / max(time.perf_counter() - started, 1e-9)
        await asyncio.gather(*tasks)
    return due, failures, sent_rate


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    stack = harness.stack()
    series: dict[str, dict] = {}
    # Warm up the path (connections, caches, the consumer's fetch loop) before measuring.
    with VisibilityProbe(stack.database_urls["status"]):
        asyncio.run(offer(stack.urls["intake"], 20, 1))
    with harness.profiling("B3"):
        for load in sizes["loads"]:
            series[str(load)] = one_load(harness, stack, load, sizes, result)
    result.series["loads"] = series
    result.notes.append(
        f"{sizes['seconds']} s per load, open loop (latency counted from when each request was due); "
        f"visibility probed in the status database every {PROBE_INTERVAL_S * 1000:.0f} ms; a status not "
        f"visible {sizes['drain_s']} s after the last request counts as that late (a lower bound)."
    )


def one_load(harness: Harness, stack, load: int, sizes: dict, result: BenchResult) -> dict:
    task = harness.task(f"B3 {load} requests/s for {sizes['seconds']} s", total=None, unit=" visible/s")
    with VisibilityProbe(stack.database_urls["status"]) as probe:
        due, failures, sent_rate = asyncio.run(offer(stack.urls["intake"], load, sizes["seconds"]))
        deadline = time.perf_counter() + sizes["drain_s"]
        while (waiting := len(set(due) - set(probe.seen))) and time.perf_counter() < deadline:
            task.update(len(due) - waiting, total=len(due))
            time.sleep(0.05)
        gave_up = time.perf_counter()
    task.done()
    seen = dict(probe.seen)
    missing = [captive for captive in due if captive not in seen]
    latencies = sorted((seen.get(captive, gave_up) - at) * 1000 for captive, at in due.items())
    if not latencies:
        raise RuntimeError(f"no registration was accepted at {load} requests/s: {dict(failures)}")
    figures = {q: percentile(latencies, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
    for q, value in figures.items():
        judged = q == "p99" and load == TARGET_LOAD
        result.add(
            f"{q} at {load} requests/s",
            value,
            "ms",
            target=f"< {TARGET_MS} ms" if judged else None,
            met=value < TARGET_MS if judged else None,
            digits=1 if value < 100 else 0,
        )
    if failures or missing or sent_rate < 0.95 * load:
        result.notes.append(
            f"At {load} requests/s: {sent_rate:,.0f} requests/s actually sent; "
            f"{sum(failures.values())} failed{' ' + str(dict(failures)) if failures else ''}; "
            f"{len(missing)} statuses not visible within {sizes['drain_s']} s."
        )
    return {
        **figures,
        "sent_rate": sent_rate,
        "requests": len(due) + sum(failures.values()),
        "failures": dict(failures),
        "not_visible": len(missing),
    }
