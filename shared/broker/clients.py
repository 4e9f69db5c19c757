"""Kafka clients configured the one way this project uses them (kafka-python 3.x).

Every client authenticates (SASL/SCRAM-SHA-512) as the principal its `KafkaAccess` names
(shared/broker/access.py); this module is the one place that turns it into client options, so
no caller builds a KafkaConsumer, KafkaProducer or KafkaAdminClient of its own."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from shared.broker.access import KafkaAccess
from shared.contracts.topics import dead_letter

log = structlog.get_logger(__name__)

# The topics are the log of record that audits replay: never delete by age or size.
LOG_OF_RECORD = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
# Fail fast when the broker is away, so the relay and consumers can retry on their own schedule.
BOOTSTRAP_TIMEOUT_MS = 5_000
# How long a topic that exists may take to be described with its partitions (just created elsewhere).
DESCRIBE_WAIT_S = 15.0
CLOUDEVENTS_JSON = [("content-type", b"application/cloudevents+json; charset=UTF-8")]
# The largest record a producer sends (`max_request_size`) and the broker takes (its
# `message.max.bytes`: deploy/kafka/node.py and docker-compose.yml set the same number). The
# event store refuses an append whose record would be larger (the API answers 413), so that no
# event is stored that its relay could never publish.
MAX_MESSAGE_BYTES = 1_048_576
# Consumers and readers see only committed transactions: the relay publishes in transactions, so
# an aborted one, or a fenced zombie relay's, is never read.
ISOLATION_LEVEL = "read_committed"
# kafka-python warns on every SCRAM login without TLS that "credentials" are exchanged in the
# clear: SCRAM sends a proof, never the password, and the listeners here are on loopback.
logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)


def relay_transactional_id(prefix: str, service: str) -> str:
    """The one transactional id of a service's outbox relay (per deployment prefix): whichever
    instance leads uses it, so a new leader's producer fences the one before it."""
    return f"{prefix}{service}-relay"


def record_headers(traceparent: str | None, tracestate: str | None) -> list[tuple[str, bytes]]:
    """The headers the relay publishes an event with: its content type and trace context."""
    headers = list(CLOUDEVENTS_JSON)
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    if tracestate:
        headers.append(("tracestate", tracestate.encode()))
    return headers


def record_size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    """The size of a record batch holding this one record, as the producer measures it against
    `max_request_size` (and the broker against `message.max.bytes`)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)


class KafkaAuthenticationFailed(RuntimeError):
    """The broker refused the principal's credentials: retrying will not help."""


def check_credentials(access: KafkaAccess, timeout_ms: int = BOOTSTRAP_TIMEOUT_MS) -> bool:
    """Whether the broker accepts `access`'s credentials: True when it does, False when it cannot be
    reached (the caller may go on and retry later); raises KafkaAuthenticationFailed, naming the
    principal (never its password), when the broker refuses them.

    kafka-python reports a refused login only in its logs, then times out; and the broker answers
    a failed SCRAM exchange by closing the connection right behind its error, which kafka-python
    often reads as a plain disconnection. So its log is read while it tries: a refusal, or a
    broker that negotiated SASL and then hung up, with no session at the end, is a refusal."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    watched = logging.getLogger("kafka")
    handler = Collect(logging.DEBUG)
    saved = (watched.level, watched.propagate)
    watched.addHandler(handler)
    watched.setLevel(logging.DEBUG)
    watched.propagate = False
    try:
        client = KafkaAdminClient(
            **access.client_config(),
            client_id="credentials-check",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
        try:
            client.describe_cluster()  # the constructor may return before the login is refused
        finally:
            client.close()
        return True
    except KafkaError:
        refused = any("SaslAuthenticationFailed" in message for message in messages)
        negotiated = any("SaslHandshakeResponse" in m and "error_code=0" in m for m in messages)
        hung_up = any("socket disconnected" in message for message in messages)
        if refused or (negotiated and hung_up):
            raise KafkaAuthenticationFailed(
                f"Kafka at {access.bootstrap_servers} refused the credentials of principal '{access.username}' "
                f"({access.security_protocol}, SCRAM-SHA-512): check the password in KAFKA_CREDENTIALS_DIR "
                "or KAFKA_SASL_PASSWORD, and that the principal was provisioned (captives kafka provision)"
            ) from None
        return False
    finally:
        watched.removeHandler(handler)
        watched.setLevel(saved[0])
        watched.propagate = saved[1]


def producer(access: KafkaAccess, client_id: str, **options) -> KafkaProducer:
    # Set explicitly, so that a conflicting option raises instead of silently turning idempotence
    # off: acks=all + idempotence keeps per-partition order and no duplicates across retries.
    settings = dict(
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        max_in_flight_requests_per_connection=5,
        linger_ms=2,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        max_block_ms=10_000,
        request_timeout_ms=10_000,
        delivery_timeout_ms=30_000,
        max_request_size=MAX_MESSAGE_BYTES,
    )
    return KafkaProducer(**access.client_config(), **(settings | options))


def reader(access: KafkaAccess, **options) -> KafkaConsumer:
    """A consumer with no group (nothing committed): for reading topics from offset 0."""
    settings = dict(
        group_id=None,
        enable_auto_commit=False,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        isolation_level=ISOLATION_LEVEL,
    )
    return KafkaConsumer(**access.client_config(), **(settings | options))


def consumer(access: KafkaAccess, group_id: str, client_id: str, topics: list[str] | None = None) -> KafkaConsumer:
    kafka_consumer = KafkaConsumer(
        **access.client_config(),
        group_id=group_id,
        client_id=client_id,
        # Offsets are committed by hand, after the database transaction that applied the records.
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        isolation_level=ISOLATION_LEVEL,
    )
    if topics:
        kafka_consumer.subscribe(topics)
    return kafka_consumer


def admin(access: KafkaAccess, client_id: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        **access.client_config(),
        client_id=client_id,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        request_timeout_ms=10_000,
    )


def accepts_writes(access: KafkaAccess, client_id: str, in_sync: int = 1) -> bool:
    """Whether the cluster answers and at least `in_sync` of its brokers (the topics'
    min.insync.replicas) accept a connection: with fewer, a producer with acks=all has every
    record refused, or held until it times out. Raises what the Admin client raises."""
    client = admin(access, client_id)
    try:
        brokers = client.describe_cluster()["brokers"]
    finally:
        client.close()
    return sum(_reachable(b["host"], b["port"]) for b in brokers if not b.get("is_fenced")) >= in_sync


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class TopicSpec:
    """What a topic of the deployment must be: the log of record keeps every event (no deletion
    by age or size), in as many partitions as the deployment says (a different count moves a
    captive's events to another partition, breaking their order), replicated as it says."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


class TopicsDiffer(RuntimeError):
    """A topic exists with other settings than the service's; the message names each difference."""

    def __init__(self, differences: list[str]):
        self.differences = differences
        super().__init__(
            "topics differ from this service's settings: " + "; ".join(differences) + ". Fix the topic (or the "
            "settings) first: a service never publishes to or consumes from a log that may lose or reorder events"
        )


def topic_specs(
    topics: list[str],
    partitions: int,
    *,
    single: tuple[str, ...] = (),
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
    dead_letters_of: tuple[str, ...] = (),
) -> list[TopicSpec]:
    """Each topic and its dead-letter topic, the dead-letter topics of `dead_letters_of` (topics
    the caller consumes but does not own), and the `single` topics in one partition (checkpoints,
    whose order matters)."""
    configs = dict(LOG_OF_RECORD)
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    names = {name for topic in topics for name in (topic, dead_letter(topic))} | {
        dead_letter(t) for t in dead_letters_of
    }
    specs = [TopicSpec(name, partitions, replication_factor, configs) for name in sorted(names)]
    return specs + [TopicSpec(name, 1, replication_factor, configs) for name in single]


def missing_topics(access: KafkaAccess, topics: list[str], *, client_id: str) -> list[str]:
    """Those of `topics` the broker does not have (or does not let `access` describe)."""
    client = admin(access, client_id)
    try:
        existing = set(client.list_topics())
    finally:
        client.close()
    return [topic for topic in topics if topic not in existing]


def ensure_topics(access: KafkaAccess, topics: list[str], partitions: int, *, client_id: str, **options) -> None:
    """Create the topics of `topic_specs(topics, partitions, **options)` that are missing
    (idempotent, safe to race), then check that every one that was there already is as
    specified: raises TopicsDiffer naming each difference."""
    specs = topic_specs(topics, partitions, **options)
    client = admin(access, client_id)
    try:
        existing = set(client.list_topics())
        found = [spec for spec in specs if spec.name in existing]
        for spec in specs:
            if spec.name in existing:
                continue
            try:
                client.create_topics(
                    [NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.configs)]
                )
                log.info(
                    "topic created",
                    topic=spec.name,
                    partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                )
            except TopicAlreadyExistsError:  # someone else created it meanwhile: check it too
                found.append(spec)
        # The ones created here are as specified (and may not be described by every broker yet).
        # One another service created a moment ago (two consumers of a topic create its dead-letter
        # topic) may not be described yet either: wait for its metadata, then compare.
        if found:
            _wait_until_described(client, [spec.name for spec in found])
        differences = differences_of(client, found) if found else []
    finally:
        client.close()
    if differences:
        raise TopicsDiffer(differences)


def _wait_until_described(client: KafkaAdminClient, names: list[str], timeout_s: float = DESCRIBE_WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = client.describe_topics(names)
        if len(described) == len(names) and all(topic.get("partitions") for topic in described):
            return
        time.sleep(0.25)


def differences_of(client: KafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    """How each topic differs from its spec, as the broker describes it: partition count,
    replication factor (of every partition) and the configured values (effective ones, whether
    set on the topic or inherited from the broker)."""
    described = {topic["name"]: topic for topic in client.describe_topics([spec.name for spec in specs])}
    resources = [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs]
    configured = client.describe_configs(resources, config_filter="all").get("topic", {})
    differences = []
    for spec in specs:
        partitions = described.get(spec.name, {}).get("partitions") or []
        if len(partitions) != spec.partitions:
            differences.append(f"{spec.name} has {len(partitions)} partitions, not {spec.partitions}")
        factors = sorted({len(partition["replica_nodes"]) for partition in partitions})
        if partitions and factors != [spec.replication_factor]:
            shown = "/".join(map(str, factors))
            differences.append(f"{spec.name} has replication factor {shown}, not {spec.replication_factor}")
        values = configured.get(spec.name, {})
        for key, wanted in spec.configs.items():
            found = values.get(key, {})
            actual = found.get("value") if isinstance(found, dict) else found
            if actual != wanted:
                differences.append(f"{spec.name} has {key}={actual}, not {wanted}")
    return differences


def read_log(access: KafkaAccess, topics: list[str]) -> Iterator:
    """Every record of `topics`, from offset 0 to the end they have now, topic by topic."""
    consumer = reader(access, max_poll_records=2000, fetch_max_bytes=64 * 1024 * 1024)
    try:
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                continue
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    yield from (record for record in records if record.offset < end[tp])
    finally:
        consumer.close()
