"""The faults a chaos run injects, each a function that breaks something and repairs it, and
returns what it did. They run one after another while the writers keep writing.

Every fault must fire: one that cannot break what it is meant to break (a failpoint never
reached, no instance to stop), or whose breakage does not show as it must (on three brokers with
two down: writes still accepted, /readyz 503), raises FaultFailed, and the run fails. A fault
that needs work to reach its failpoint drives writes at the stack while it waits (`_load`)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import orjson
import sqlalchemy as sa
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from shared.broker import clients as kafka_clients
from shared.broker.access import ADMIN
from shared.contracts.topics import INTAKE_EVENTS
from shared.platform.failpoints import CRASH_EXIT_CODE
from tests.chaos.stack import Instance, Stack
from tests.chaos.workload import History, Write, Writer, conflicting_writes
from tests.support import kafka_access, producer, read_topic, wait_until


@dataclass
class Injected:
    name: str
    detail: str
    seconds: float


class FaultFailed(AssertionError):
    """The fault did not fire, or what it broke did not behave as it must; the message says which."""


Fault = Callable[[Stack, random.Random, History], str]


@contextmanager
def _load(stack: Stack, history: History, *, captives: int = 300) -> Iterator[None]:
    """A writer of its own at intake while the fault waits for something that needs writes (a
    failpoint on the path of an event, an outbox filling): its writes are in the history too."""
    stop, no_trickle = threading.Event(), threading.Event()
    no_trickle.set()
    writer = Writer(
        stack.instances["intake-1"].url,
        history,
        captives=captives,
        follow_ups=1,
        deadline=time.monotonic() + 600,
        stop=stop,
        faults_done=no_trickle,
    )
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join(30)


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
    """One broker: the whole of Kafka is gone for a moment."""
    (broker,) = stack.kafka.nodes
    broker.kill()
    down = rng.uniform(1.0, 3.0)
    time.sleep(down)
    broker.start()
    return f"kill -9 the Kafka broker, down {down:.1f} s, restarted"


def kill_leader_then_another(stack: Stack, rng: random.Random, history: History) -> str:
    """Three brokers: kill -9 the leader of the busiest intake partition while writes flow; once
    another broker leads it, kill -9 a second broker. With one broker of three, no record can be
    acknowledged (min.insync.replicas 2): writes must still be accepted, into the outbox, and
    /readyz must say 503. Then both are started again, and the stack must be ready again."""
    intake = stack.instances["intake-1"]
    with _load(stack, history):
        partition, leader, records = _busiest_partition(stack)
        stack.kafka.node(leader).kill()

        def new_leader() -> int | None:
            now = _leader(stack, partition)
            return now if now not in (leader, -1, 0) else None

        moved = wait_until(new_leader, timeout_s=120, what=f"a new leader of {INTAKE_EVENTS}[{partition}]")
        second = rng.choice([node for node in stack.kafka.nodes if node.running])
        second.kill()
        before = len(history.acknowledged())
        wait_until(
            lambda: len(history.acknowledged()) >= before + 20,
            timeout_s=120,
            what="20 writes acknowledged with two brokers of three down",
        )
        not_ready = _wait_readyz(intake, 503, "intake /readyz 503 with two brokers of three down")
        backlog = wait_until(
            lambda: (_readyz(intake)[1] or {}).get("outbox_backlog"), timeout_s=60, what="intake's outbox filling"
        )
        accepted = len(history.acknowledged()) - before
        stack.kafka.start()
        _wait_readyz(intake, 200, "intake /readyz 200 once the brokers are back")
    return (
        f"kill -9 broker {leader} (leader of {INTAKE_EVENTS}[{partition}], {records} records), broker {moved} "
        f"took over; kill -9 broker {second.node_id}: {accepted} writes accepted into the outbox (backlog "
        f"{backlog}), /readyz {not_ready}; both restarted, ready"
    )


def _busiest_partition(stack: Stack) -> tuple[int, int, int]:
    """The intake partition with the most records: (partition, its leader, its records)."""
    topic = stack.topic(INTAKE_EVENTS)
    reader = kafka_clients.reader(kafka_access(stack.bootstrap, ADMIN))
    try:
        ends = reader.end_offsets([TopicPartition(topic, p) for p in range(int(stack.env["KAFKA_PARTITIONS"]))])
    finally:
        reader.close()
    busiest = max(ends, key=ends.get)
    leader = wait_until(
        lambda: max(_leader(stack, busiest.partition), 0), timeout_s=60, what=f"the leader of {busiest}"
    )
    return busiest.partition, leader, ends[busiest]


def _leader(stack: Stack, partition: int) -> int:
    """The broker the cluster names leader of an intake partition (-1: none); 0 while no broker
    answers."""
    try:
        admin = kafka_clients.admin(kafka_access(stack.bootstrap, ADMIN), "chaos-leaders")
    except Exception:  # noqa: BLE001 (the brokers it knows may be the ones just killed)
        return 0
    try:
        (described,) = admin.describe_topics([stack.topic(INTAKE_EVENTS)])
        return next(p["leader_id"] for p in described["partitions"] if p["partition_index"] == partition)
    except Exception:  # noqa: BLE001
        return 0
    finally:
        admin.close()


def _readyz(instance: Instance) -> tuple[int | None, dict | None]:
    try:
        answer = httpx.get(f"{instance.url}/readyz", timeout=5)
        return answer.status_code, answer.json()
    except (httpx.HTTPError, ValueError):
        return None, None


def _wait_readyz(instance: Instance, status: int, what: str) -> int:
    return wait_until(lambda: _readyz(instance)[0] == status and status, timeout_s=120, interval_s=0.5, what=what)


def kill_postgres(stack: Stack, rng: random.Random, history: History) -> str:
    """kill -9 the PostgreSQL postmaster while writes flow, start it again (crash recovery from
    the WAL, fsync and synchronous_commit on): no acknowledged write may be missing after it."""
    before = sum(history.unavailable.values())
    with _load(stack, history):
        acknowledged = len(history.acknowledged())
        wait_until(lambda: len(history.acknowledged()) > acknowledged, timeout_s=60, what="writes in flight")
        stack.postgres.kill()
        down = rng.uniform(1.0, 3.0)
        time.sleep(down)
        stack.postgres.start()
        _wait_readyz(stack.instances["intake-1"], 200, "intake /readyz 200 once PostgreSQL is back")
    return (
        f"kill -9 the PostgreSQL postmaster, down {down:.1f} s, restarted (recovered from its WAL); "
        f"{sum(history.unavailable.values()) - before} writes answered 503 meanwhile, retried"
    )


def crash_at(failpoint: str, service: str) -> Fault:
    """Restart every instance of `service` armed to crash at `failpoint` (whichever instance
    leads the relay, or holds the partitions, reaches it), drive writes until one crashes there,
    then start them all clean."""

    def fault(stack: Stack, rng: random.Random, history: History) -> str:
        armed = [i for i in stack.of(service) if i.running]
        nth = rng.randint(1, 3)
        for instance in armed:
            instance.signal(signal.SIGTERM)
        for instance in armed:
            instance.start(failpoints=f"{failpoint}={nth}", wait=False)
        with _load(stack, history):
            # Longer than the relay's watchdog takes to replace a stuck round (150 s): a stall
            # shows in the report (`relay stalls`) instead of as a failpoint never reached.
            crashed = _first_exit(armed, timeout_s=240)
        code = crashed.process.returncode if crashed else None
        for instance in armed:
            instance.signal(signal.SIGTERM)
        for instance in armed:
            instance.start()
        if crashed is None:
            raise FaultFailed(f"{service} armed at {failpoint}={nth}: no instance reached it under load")
        if code != CRASH_EXIT_CODE:
            raise FaultFailed(f"{crashed.name} armed at {failpoint} exited {code}")
        return f"{crashed.name} crashed at {failpoint} (time {nth}), restarted"

    fault.__name__ = f"crash {service} at {failpoint}"
    return fault


def _first_exit(instances: list[Instance], timeout_s: float) -> Instance | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for instance in instances:
            if instance.process.poll() is not None:
                return instance
        time.sleep(0.1)
    return None


def zombie_relay(stack: Stack, _rng: random.Random, history: History) -> str:
    """The status instance that leads the relay is paused (SIGSTOP) while events flow, and the
    database session holding its leader lock is ended, as a network partition or a failover
    would end it; a standby takes the lead. Then the old leader resumes (SIGCONT), for a moment
    a zombie that still believes it leads, beside its successor, until it finds its lock gone.

    The relay publishes in transactions of a transactional id fixed per service: the successor's
    init_transactions fences the zombie, so what it still sends or commits is refused and never
    read (tests/integration/test_outbox_parking.py asserts that exactly). Here the checker asks
    that whatever the pair sent is absorbed: nothing duplicated, nothing out of order."""
    with _load(stack, history):
        leader = wait_until(lambda: _relay_leader(stack.of("status")), timeout_s=60, what="the status relay leader")
        leader.process.send_signal(signal.SIGSTOP)
        try:
            ended = _end_advisory_lock_sessions(stack.database_urls["status"])
            others = [i for i in stack.of("status") if i is not leader and i.running]
            successor = wait_until(lambda: _relay_leader(others), timeout_s=60, what="a new status relay leader")
        finally:
            leader.process.send_signal(signal.SIGCONT)
        wait_until(lambda: _relay_leader([leader]) is None, timeout_s=60, what=f"{leader.name} to step down")
    if not ended:
        raise FaultFailed(f"no database session held {leader.name}'s leader lock")
    return (
        f"{leader.name} paused while leading the status relay, its lock session ended; {successor.name} took "
        f"the lead; {leader.name} resumed beside it, then stepped down"
    )


def _relay_leader(instances: list[Instance]) -> Instance | None:
    """The one of `instances` whose /metrics says it leads its service's relay."""
    for instance in instances:
        try:
            metrics = httpx.get(f"{instance.url}/metrics", timeout=3).text
        except httpx.HTTPError:
            continue
        if any(line.startswith("captives_relay_leader{") and line.endswith(" 1.0") for line in metrics.splitlines()):
            return instance
    return None


def _end_advisory_lock_sessions(database_url: str) -> int:
    """End every session of the database that holds an advisory lock (the relay's leader lock;
    no migration is running now). How many it ended."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return len(
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def poison_and_dead_letter(stack: Stack, _rng: random.Random, history: History) -> str:
    """Mid-run, two records no consumer may apply reach intake's topic, each about a captive of
    its own that is still being written to: a poison record (bytes that are no event at all,
    keyed by the captive) and a forged event (a valid envelope whose prevhash is not the hash of
    its stream's last event). Every consumer must dead-letter both and park each captive's later
    records behind its dead letter, in order, while other captives' records go on; an operator
    then discards both heads (`captives dlq discard`, as a subprocess against the service's
    database), and the parked records must be applied, in order. The history knows both
    records, so the checker finds each discarded in every consumer and applied by none."""
    writer = Writer(
        stack.instances["intake-1"].url,
        history,
        captives=0,
        follow_ups=0,
        deadline=time.monotonic() + 600,
        stop=threading.Event(),
        faults_done=threading.Event(),
    )
    consumers = ("status", "disposition")
    with _load(stack, history), writer.client:  # (a writer not run as a thread: its client closed here)
        poisoned, forged = writer.register(), writer.register()
        if poisoned is None or forged is None:
            raise FaultFailed("the two captives to poison could not be registered")
        (poisoned_id, _), (forged_id, forged_version) = poisoned, forged
        registrations = [write.event_id for write in _writes_to(history, poisoned_id, forged_id)]
        for service in consumers:
            wait_until(
                lambda s=service: _applied(stack, s, registrations),
                timeout_s=180,
                what=f"{service} to apply both registrations",
            )
        poison = f"poison {uuid.uuid4().hex}: not an event".encode()
        forgery = _forged(stack, forged_id, forged_version)
        history.inject(poison, None)
        history.inject(forgery, orjson.loads(forgery)["id"])
        _publish(stack, [(poisoned_id, poison), (forged_id, forgery)])
        # Each captive's next writes (acknowledged by intake) must wait behind its dead letter.
        for captive_id, version in (poisoned, forged):
            for number in range(2):
                kind = "visit" if number % 2 == 0 else "wish"
                version = writer.follow_up(kind, captive_id, version, number) or version
        later = [write for write in _writes_to(history, poisoned_id, forged_id) if write.kind != "register"]
        if len(later) != 4 or not all(write.acknowledged for write in later):
            raise FaultFailed("writes after the poison were not acknowledged")
        applied_before = {service: _inbox_size(stack, service) for service in consumers}
        for service in consumers:
            wait_until(
                lambda s=service: (
                    _held(stack, s, (poisoned_id, forged_id))
                    == {
                        poisoned_id: ["dead_letter", "parked", "parked"],
                        forged_id: ["dead_letter", "parked", "parked"],
                    }
                ),
                timeout_s=180,
                what=f"{service} to hold both captives' later records behind their dead letters",
            )
            if _applied(stack, service, [write.event_id for write in later], any_of=True):
                raise FaultFailed(f"{service} applied a record held behind a dead letter")
        # Meanwhile other captives' records go on.
        for service in consumers:
            wait_until(
                lambda s=service: _inbox_size(stack, s) > applied_before[s] + 10,
                timeout_s=120,
                what=f"{service} applying other captives' records past the dead letters",
            )
        for service in consumers:
            for captive_id, why in ((poisoned_id, "not an event"), (forged_id, "a forgery: breaks its chain")):
                _discard(stack, service, captive_id, why)
            wait_until(
                lambda s=service: _applied(stack, s, [write.event_id for write in later]),
                timeout_s=120,
                what=f"{service} to apply the released records",
            )
    return (
        f"poison record for {poisoned_id}, forged event for {forged_id} (prevhash not its chain's); both "
        f"dead-lettered by {' and '.join(consumers)}, {len(later)} later records parked behind them while "
        f"others flowed; discarded by the operator, the parked ones then applied"
    )


def _writes_to(history: History, *captive_ids: str) -> list[Write]:
    with history.lock:
        return [write for write in history.writes if write.captive_id in captive_ids]


def _forged(stack: Stack, captive_id: str, version: int) -> bytes:
    """The captive's event at `version` as intake stored it, under a new id, one version on, and
    naming a previous hash that is not its stream's: what a forger without the chain would send."""
    engine = sa.create_engine(stack.database_urls["intake"])
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.text("SELECT envelope FROM events WHERE stream_id = :s AND stream_version = :v"),
                {"s": captive_id, "v": version},
            ).scalar_one()
    finally:
        engine.dispose()
    envelope = orjson.loads(stored)
    envelope.update(id=uuid.uuid4().hex, streamversion=version + 1, prevhash="f" * 64, correlationid="forged")
    return orjson.dumps(envelope)


def _publish(stack: Stack, records: list[tuple[str, bytes]]) -> None:
    # As intake's relay publishes: the principal that may write intake's topic.
    sender = producer(stack.bootstrap, "intake")
    try:
        for key, value in records:
            sender.send(stack.topic(INTAKE_EVENTS), key=key.encode(), value=value)
        sender.flush(30)
    finally:
        sender.close()


def _query(stack: Stack, service: str, sql: str, **params) -> list:
    engine = sa.create_engine(stack.database_urls[service])
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql), params).all()
    except sa.exc.OperationalError:
        return []  # the database is restarting (another fault): asked again
    finally:
        engine.dispose()


def _applied(stack: Stack, service: str, event_ids: list[str], *, any_of: bool = False) -> bool:
    """Whether `service` has taken these events (`any_of`: any of them): applied (its inbox) or,
    of a type it does not use, passed over in its place in the stream's chain."""
    rows = _query(
        stack,
        service,
        "SELECT event_id FROM inbox WHERE event_id = ANY(:ids) "
        "UNION SELECT event_id FROM chain_links WHERE event_id = ANY(:ids)",
        ids=event_ids,
    )
    found = {row.event_id for row in rows}
    return bool(found) if any_of else found == set(event_ids)


def _inbox_size(stack: Stack, service: str) -> int:
    rows = _query(stack, service, "SELECT count(*) AS n FROM inbox")
    return rows[0].n if rows else 0


def _held(stack: Stack, service: str, captives: tuple[str, ...]) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    for row in _query(
        stack,
        service,
        "SELECT captive, state FROM parked_records WHERE captive = ANY(:c) ORDER BY position",
        c=list(captives),
    ):
        held.setdefault(row.captive, []).append(row.state)
    return held


def _discard(stack: Stack, service: str, captive_id: str, why: str) -> None:
    """What an operator runs: `captives dlq discard`, which waits for the consumer to carry it out."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.cli",
            "dlq",
            "discard",
            service,
            captive_id,
            "--reason",
            why,
            "--by",
            "chaos operator",
            "--database-url",
            stack.database_urls[service],
            "--timeout",
            "120",
        ],
        env={**stack.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0 or "nothing held any more" not in done.stdout:
        raise FaultFailed(
            f"captives dlq discard {service} {captive_id} exited {done.returncode}: {done.stdout}{done.stderr}"
        )


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
        raise FaultFailed("no extra status instance to stop")
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


def redeliver_old_versions(stack: Stack, rng: random.Random, history: History) -> str:
    """Publish again, after newer ones, records of streams' first versions (an old copy arriving
    late, as after a producer retry or a mirror's replay)."""
    records = read_topic(stack.bootstrap, stack.topic(INTAKE_EVENTS), timeout_s=60)
    records = [record for record in records if record.value not in history.injected]  # (the poison fault's)
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
kill_leader_then_another.__name__ = "kill -9 a partition leader, then a second broker"
kill_postgres.__name__ = "kill -9 PostgreSQL"
zombie_relay.__name__ = "zombie relay leader"
poison_and_dead_letter.__name__ = "poison event and a dead letter"
grow_group.__name__ = "grow the status group"
shrink_group.__name__ = "shrink the status group"
rewind_offsets.__name__ = "rewind status offsets"
redeliver_old_versions.__name__ = "redeliver old versions"
conflicting.__name__ = "100 conflicting writes"


def schedule(brokers: int = 1, *, every: bool = True) -> list[Fault]:
    """One round: every kind of fault once (a full run does several rounds). On three brokers,
    two of them are killed where one broker's run kills its only one. `every=False`: only the
    faults of what a cluster changes (brokers, the relays publishing to them, PostgreSQL under
    them, conflicting writes), for a short run."""
    brokers_fault = kill_broker if brokers == 1 else kill_leader_then_another
    if not every:
        return [
            crash_at("relay.after_publish", "intake"),
            conflicting,
            brokers_fault,
            kill_postgres,
            zombie_relay,
            poison_and_dead_letter,
            crash_at("relay.after_publish", "status"),
        ]
    return [
        kill_9("status"),
        crash_at("relay.after_publish", "intake"),
        conflicting,
        kill_9("intake"),
        grow_group,
        brokers_fault,
        shrink_group,
        kill_postgres,
        kill_9("disposition"),
        crash_at("consumer.before_commit", "status"),
        sigterm("status"),
        zombie_relay,
        poison_and_dead_letter,
        redeliver_old_versions,
        rewind_offsets,
        crash_at("relay.after_publish", "status"),
        sigterm("intake"),
    ]
