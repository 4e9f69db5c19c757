"""Kafka clients configured the one way this project uses them (kafka-python 3.x).

Every client authenticates (SASL/SCRAM-SHA-512) as the principal its `KafkaAccess` names
(shared/kafka_access.py); this module is the one place that turns it into client options, so
no caller builds a KafkaConsumer, KafkaProducer or KafkaAdminClient of its own."""

from __future__ import annotations

import logging

import structlog
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from shared.contracts.topics import dead_letter
from shared.kafka_access import KafkaAccess

log = structlog.get_logger(__name__)

# The topics are the log of record that audits replay: never delete by age or size.
LOG_OF_RECORD = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
# Fail fast when the broker is away, so the relay and consumers can retry on their own schedule.
BOOTSTRAP_TIMEOUT_MS = 5_000
CLOUDEVENTS_JSON = [("content-type", b"application/cloudevents+json; charset=UTF-8")]
# kafka-python warns on every SCRAM login without TLS that "credentials" are exchanged in the
# clear: SCRAM sends a proof, never the password, and the listeners here are on loopback.
logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)


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
    )
    return KafkaProducer(**access.client_config(), **(settings | options))


def reader(access: KafkaAccess, **options) -> KafkaConsumer:
    """A consumer with no group (nothing committed): for reading topics from offset 0."""
    settings = dict(group_id=None, enable_auto_commit=False, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
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


def ensure_topics(
    access: KafkaAccess,
    topics: list[str],
    partitions: int,
    *,
    client_id: str,
    single: tuple[str, ...] = (),
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
    dead_letters_of: tuple[str, ...] = (),
) -> None:
    """Create each topic and its dead-letter topic if missing (idempotent, safe to race), and the
    `single` topics with one partition (checkpoints, whose order matters). `dead_letters_of`:
    topics whose dead-letter topic only is wanted (those the caller consumes but does not own)."""
    configs = dict(LOG_OF_RECORD)
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    wanted = sorted(
        {name for topic in topics for name in (topic, dead_letter(topic))} | {dead_letter(t) for t in dead_letters_of}
    )
    client = admin(access, client_id)
    try:
        missing = [name for name in wanted if name not in set(client.list_topics())]
        missing += [name for name in single if name not in set(client.list_topics())]
        for name in missing:
            try:
                count = 1 if name in single else partitions
                client.create_topics([NewTopic(name, count, replication_factor, topic_configs=configs)])
                log.info("topic created", topic=name, partitions=count, replication_factor=replication_factor)
            except TopicAlreadyExistsError:
                pass
    finally:
        client.close()
