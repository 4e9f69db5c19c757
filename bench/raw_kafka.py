"""B1, the raw ceiling: kafka-python producing and consuming messages of the size of our events
(intake registrations, as intake publishes them), on the run's broker, with no processing. The
baseline the other rates are compared with.

The log produced here is kept for the run: B5 replays the same topic."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import orjson

from bench.harness import Harness
from bench.results import BenchResult
from bench.samples import envelope, registration
from shared.broker import clients as kafka_clients
from shared.broker.access import AUDITOR
from shared.contracts import encode
from shared.contracts.identifiers import new_captive_id

ID = "B1"
TITLE = "Raw Kafka ceiling (kafka-python, no processing)"
SIZES = {"quick": {"events": 50_000}, "full": {"events": 1_000_000}}
PARTITIONS = 6


@dataclass(frozen=True)
class RegistrationLog:
    topic: str
    events: int
    event_bytes: int
    produce_rate: float  # events/s, acks=all, until the last is acknowledged


@dataclass(frozen=True)
class RawRates:
    log: RegistrationLog
    consume_rate: float  # events/s, read_log (what replay reads with), offset 0 to the end


def template() -> dict:
    return orjson.loads(encode(envelope(registration("CAP-0000-0000-0000"), "CAP-0000-0000-0000")))


def registration_log(harness: Harness, events: int) -> RegistrationLog:
    """A topic of `events` registrations (each its own captive), produced once per run."""
    key = ("registration-log", events)
    if key in harness.cache:
        return harness.cache[key]
    topic = f"{harness.topic_prefix('b1')}intake.events.v1"
    # As intake, which may create and write its own topic (and nothing else).
    intake = harness.access("intake")
    kafka_clients.ensure_topics(intake, [topic], PARTITIONS, client_id="bench")
    document = template()
    producer = kafka_clients.producer(intake, "bench", linger_ms=20, batch_size=256 * 1024)
    task = harness.task("B1 producing the log", total=events, unit=" events/s")
    size = 0
    started = time.perf_counter()
    try:
        for n in range(events):
            captive_id = new_captive_id()
            document["id"], document["subject"] = str(uuid.uuid4()), captive_id
            document["data"]["captive_id"] = captive_id
            value = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
            size = len(value)
            producer.send(topic, key=captive_id.encode(), value=value)
            if n % 5000 == 0:
                task.update(n)
        producer.flush()
        rate = events / (time.perf_counter() - started)
        task.update(events)
    finally:
        producer.close()
        task.done()
    harness.cache[key] = RegistrationLog(topic, events, size, rate)
    return harness.cache[key]


def raw_rates(harness: Harness, events: int) -> RawRates:
    key = ("raw-rates", events)
    if key in harness.cache:
        return harness.cache[key]
    log = registration_log(harness, events)
    task = harness.task("B1 consuming the log", total=events, unit=" events/s")
    count = 0
    started = time.perf_counter()
    for _record in kafka_clients.read_log(harness.access(AUDITOR), [log.topic]):
        count += 1
        if count % 5000 == 0:
            task.update(count)
    rate = count / (time.perf_counter() - started)
    task.done()
    if count != events:
        raise RuntimeError(f"read {count} records back, produced {events}")
    harness.cache[key] = RawRates(log, rate)
    return harness.cache[key]


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    rates = raw_rates(harness, sizes["events"])
    result.sizes["event_bytes"] = rates.log.event_bytes
    result.add("produce (acks=all, linger 20 ms)", rates.log.produce_rate, "events/s")
    result.add("consume (read_log, no processing)", rates.consume_rate, "events/s", ratio=1.0, ratio_to="B1 consume")
    result.notes.append(
        f"{rates.log.events:,} registrations of {rates.log.event_bytes} bytes on {PARTITIONS} partitions; "
        "consumed with shared.broker.clients.read_log, the reader B5 replays with."
    )
