"""The faults a chaos run injects, each a function that breaks something and repairs it, and
returns what it did. They run one after another while the writers keep writing."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from shared import kafka as kafka_clients
from shared.contracts.topics import INTAKE_EVENTS
from shared.failpoints import CRASH_EXIT_CODE
from shared.kafka_access import ADMIN
from tests.chaos.stack import Instance, Stack
from tests.chaos.workload import History, conflicting_writes
from tests.support import kafka_access, producer, read_topic, wait_until


@dataclass
class Injected:
    name: str
    detail: str
    seconds: float


Fault = Callable[[Stack, random.Random, History], str]
SKIPPED = "skipped:"  # a fault that found nothing to break says so, and is not counted


def kill_9(service: str) -> Fault:
    def fault(stack: Stack, rng: random.Random, _history: History) -> str:
        instance = rng.choice([i for i in stack.of(service) if i.running])
        instance.signal(signal.SIGKILL)
        time.sleep(rng.uniform(0.2, 1.0))
        instance.start()
        return f"kill -9 {instance.name}, restarted"

    fault.__name__ = f"kill -9 {service}"
    return fault


def sigterm(service: str) -> Fault:
    def fault(stack: Stack, rng: random.Random, _history: History) -> str:
        instance = rng.choice([i for i in stack.of(service) if i.running])
        code = instance.signal(signal.SIGTERM)
        instance.start()
        return f"SIGTERM {instance.name} (exit {code}), restarted"

    fault.__name__ = f"SIGTERM {service}"
    return fault


def kill_broker(stack: Stack, rng: random.Random, _history: History) -> str:
    stack.broker.kill()
    down = rng.uniform(1.0, 3.0)
    time.sleep(down)
    stack.broker.start()
    return f"kill -9 the Kafka broker, down {down:.1f} s, restarted"


def crash_at(failpoint: str, service: str) -> Fault:
    """Restart an instance armed to crash at `failpoint`, wait for the crash, start it clean."""

    def fault(stack: Stack, rng: random.Random, _history: History) -> str:
        instance = rng.choice([i for i in stack.of(service) if i.running])
        instance.signal(signal.SIGTERM)
        nth = rng.randint(1, 3)
        instance.start(failpoints=f"{failpoint}={nth}", wait=False)
        crashed = _wait_exit(instance, timeout_s=30)
        if crashed is None:
            instance.signal(signal.SIGTERM)  # no work reached the failpoint in time
        instance.start()
        if crashed != CRASH_EXIT_CODE:
            return f"{SKIPPED} {instance.name} armed at {failpoint}={nth} did not reach it (exit {crashed})"
        return f"{instance.name} crashed at {failpoint} (time {nth}), restarted"

    fault.__name__ = f"crash {service} at {failpoint}"
    return fault


def _wait_exit(instance: Instance, timeout_s: float) -> int | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            return instance.process.returncode
        time.sleep(0.1)
    return None


def grow_group(stack: Stack, _rng: random.Random, _history: History) -> str:
    extra = stack.instances.get("status-extra") or stack.add("status", 0)
    if extra.name != "status-extra":  # stack.add names it status-0: keep one well-known name
        stack.instances.pop(extra.name)
        extra.name = "status-extra"
        stack.instances[extra.name] = extra
    extra.start()
    return f"status group grown to {sum(i.running for i in stack.of('status'))} instances"


def shrink_group(stack: Stack, _rng: random.Random, _history: History) -> str:
    extra = stack.instances.get("status-extra")
    if extra is None or not extra.running:
        return f"{SKIPPED} no extra status instance to stop"
    extra.signal(signal.SIGTERM)
    return f"status group shrunk to {sum(i.running for i in stack.of('status'))} instances"


def rewind_offsets(stack: Stack, _rng: random.Random, _history: History) -> str:
    """Stop the status group, move its committed offsets on the intake topic back to the start,
    start it again: everything it had applied is delivered a second time."""
    running = [i for i in stack.of("status") if i.running]
    for instance in running:
        instance.signal(signal.SIGTERM)
    group, topic = f"{stack.prefix}status", stack.topic(INTAKE_EVENTS)
    admin = kafka_clients.admin(kafka_access(stack.bootstrap, ADMIN), "chaos-rewind")
    try:
        partitions = [TopicPartition(topic, p) for p in range(int(stack.env["KAFKA_PARTITIONS"]))]
        wait_until(lambda: _rewound(admin, group, partitions), timeout_s=60, what="the status group empty and rewound")
    finally:
        admin.close()
    for instance in running:
        instance.start()
    return f"status offsets on {INTAKE_EVENTS} rewound to 0 ({len(running)} instances restarted)"


def _rewound(admin, group: str, partitions: list[TopicPartition]) -> bool:
    try:
        admin.alter_group_offsets(group, {tp: OffsetAndMetadata(0, "", -1) for tp in partitions})
        return True
    except Exception:  # the group still has members for a moment after they leave
        return False


def redeliver_old_versions(stack: Stack, rng: random.Random, _history: History) -> str:
    """Publish again, after newer ones, records of streams' first versions (an old copy arriving
    late, as after a producer retry or a mirror's replay)."""
    records = read_topic(stack.bootstrap, stack.topic(INTAKE_EVENTS), timeout_s=60)
    old = rng.sample(records, min(50, len(records)))
    # As intake's relay would re-send them: the principal that may write intake's topic.
    resender = producer(stack.bootstrap, "intake")
    try:
        for record in old:
            resender.send(record.topic, key=record.key, value=record.value, headers=list(record.headers or []))
        resender.flush(30)
    finally:
        resender.close()
    return f"{len(old)} old intake records published again"


def conflicting(stack: Stack, _rng: random.Random, history: History) -> str:
    statuses = conflicting_writes(stack.instances["intake-1"].url, history, writers=100)
    stack.conflict_statuses.append(dict(statuses))
    return f"100 concurrent writes to one captive at one version: {dict(sorted(statuses.items()))}"


# The names the report shows.
kill_broker.__name__ = "kill -9 the broker"
grow_group.__name__ = "grow the status group"
shrink_group.__name__ = "shrink the status group"
rewind_offsets.__name__ = "rewind status offsets"
redeliver_old_versions.__name__ = "redeliver old versions"
conflicting.__name__ = "100 conflicting writes"


def schedule() -> list[Fault]:
    """One round: every kind of fault once (a full run does several rounds)."""
    return [
        kill_9("status"),
        crash_at("relay.after_publish", "intake"),
        conflicting,
        kill_9("intake"),
        grow_group,
        kill_broker,
        shrink_group,
        kill_9("disposition"),
        crash_at("consumer.before_commit", "status"),
        sigterm("status"),
        redeliver_old_versions,
        rewind_offsets,
        crash_at("relay.after_publish", "status"),
        sigterm("intake"),
    ]
