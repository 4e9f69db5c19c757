"""B9: an authenticated read while bursts of 200 requests with bad credentials arrive at once,
side by side with the same read and no burst.

The services issue no tokens (Keycloak does) and verify a bearer token with the issuer's public
key, so a bad credential costs a signature check, not a password hash. The burst mixes what an
attacker can send without a key: garbage, a real token with its signature altered, and a token
naming a key id the issuer never published (which could make a verifier fetch the issuer's keys
again on every request: ours refetches at most once per 30 s). Every bad request must be refused:
401, or 429 once its address has sent more than AUTH_FAILED_CREDENTIALS_PER_MINUTE of them (the
credential screen, shared/auth/screen.py), while the read's token, verified before, still passes.
The services run as processes (bench/stack.py); the read is `GET /v1/captives/{id}` on intake."""

from __future__ import annotations

import base64
import json
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import httpx

from bench.growth import percentile
from bench.harness import Harness, operator_headers
from bench.results import BenchResult
from bench.samples import registration_body

ID = "B9"
TITLE = "Authenticated read p99 during bursts of 200 bad-credential requests, against no burst"
SIZES = {
    "quick": {"reads": 300, "burst": 200, "rounds": 5},
    "full": {"reads": 3000, "burst": 200, "rounds": 30},
}
SENDERS = 50  # concurrent attackers per burst


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def bad_tokens(good: str) -> list[str]:
    header, payload, signature = good.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    unknown_key = _b64({"alg": "RS256", "typ": "JWT", "kid": uuid.uuid4().hex})
    return ["not-a-token", f"{header}.{payload}.{flipped}", f"{unknown_key}.{payload}.{signature}"]


def warm() -> None:
    """Start the attacking process (imports and all) before the first burst is timed."""


def burst_of(url: str, path: str, forged: list[str], count: int) -> list[int]:
    """`count` requests from SENDERS threads at once: with bad credentials to `path`, or with none
    to /healthz when `forged` is empty (the baseline: as many requests that need no token); their
    statuses."""

    def attack(n: int, attacker: httpx.Client) -> int:
        if not forged:
            return attacker.get("/healthz").status_code
        return attacker.get(path, headers={"Authorization": f"Bearer {forged[n % len(forged)]}"}).status_code

    limits = httpx.Limits(max_connections=SENDERS)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as attacker, ThreadPoolExecutor(SENDERS) as pool:
        return list(pool.map(lambda n: attack(n, attacker), range(count)))


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    reads, burst, rounds = sizes["reads"], sizes["burst"], sizes["rounds"]
    stack = harness.stack()
    url = stack.urls["intake"]
    good = operator_headers()
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/v1/captives", json=registration_body(), headers=dict(good))
        answer.raise_for_status()
        path = f"/v1/captives/{answer.json()['captive_id']}"

        def timed_read() -> float:
            started = time.perf_counter()
            answer = client.get(path, headers=dict(good))
            elapsed = time.perf_counter() - started
            answer.raise_for_status()
            return elapsed * 1000

        for _ in range(20):  # warm up the connection, the verifier's key cache, the database
            timed_read()
        task = harness.task("B9 reads, no burst", total=reads, unit=" reads/s")
        quiet = []
        for n in range(reads):
            quiet.append(timed_read())
            task.update(n + 1)
        task.done()

        forged = bad_tokens(good["Authorization"].removeprefix("Bearer "))
        # The attackers run in another process, so they take no turn of this one's GIL from the
        # read being timed: what is measured is the service's answer, not the benchmark's. The
        # baseline bursts are as many requests to /healthz, which needs no token: on two cores
        # any burst slows the read; what bad credentials add is the difference between the two.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as attackers:
            attackers.submit(warm).result()
            healthz, _ = _reads_during(harness, attackers, timed_read, url, path, [], burst, rounds, "baseline")
            loud, statuses = _reads_during(harness, attackers, timed_read, url, path, forged, burst, rounds, "bad")

    quiet_p50, quiet_p99 = percentile(quiet, 0.50), percentile(quiet, 0.99)
    loud_p50, loud_p99 = percentile(loud, 0.50), percentile(loud, 0.99)
    result.add("read p50, no burst", quiet_p50, "ms", digits=1)
    result.add("read p99, no burst", quiet_p99, "ms", digits=1)
    result.add("read p50, during bursts", loud_p50, "ms", digits=1, ratio=loud_p50 / quiet_p50, ratio_to="no burst")
    result.add("read p99, during bursts", loud_p99, "ms", digits=1, ratio=loud_p99 / quiet_p99, ratio_to="no burst")
    base_p50, base_p99 = percentile(healthz, 0.50), percentile(healthz, 0.99)
    result.add(
        "read p50, during /healthz bursts",
        base_p50,
        "ms",
        digits=1,
        ratio=loud_p50 / base_p50,
        ratio_to="bad vs healthz",
    )
    result.add(
        "read p99, during /healthz bursts",
        base_p99,
        "ms",
        digits=1,
        ratio=loud_p99 / base_p99,
        ratio_to="bad vs healthz",
    )
    unauthorized = sum(1 for status in statuses if status == 401)
    throttled = sum(1 for status in statuses if status == 429)
    refused = unauthorized + throttled
    result.add("bad-credential requests refused (401 or 429)", refused, f"of {len(statuses)}")
    result.add("of which throttled by address (429)", throttled, f"of {len(statuses)}")
    result.series["reads_ms"] = {"no burst": quiet, "during bursts": loud, "during /healthz bursts": healthz}
    result.notes.append(
        f"{len(loud)} reads during {rounds} bursts of {burst} bad-credential requests from {SENDERS} senders "
        f"(garbage, an altered signature, an unknown key id) sent by another process, against {len(quiet)} reads "
        f"with no burst and {len(healthz)} reads during as many bursts of {burst} requests to /healthz (no token)."
    )
    if refused != len(statuses):
        others = sorted({status for status in statuses if status not in (401, 429)})
        result.notes.append(f"NOT ALL REFUSED: answers other than 401: {others}")


def _reads_during(harness, attackers, timed_read, url, path, forged, burst, rounds, label):
    """Timed reads while `rounds` bursts run one after another; the reads and the bursts' statuses."""
    reads, statuses = [], []
    task = harness.task(f"B9 reads during {label} bursts", total=rounds, unit=" bursts/s")
    for number in range(rounds):
        pending = attackers.submit(burst_of, url, path, forged, burst)
        while not pending.done():
            reads.append(timed_read())
        statuses += pending.result()
        task.update(number + 1)
    task.done()
    return reads, statuses
