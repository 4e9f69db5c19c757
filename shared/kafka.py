"""Kafka clients configured the one way this project uses them (kafka-python 3.x)."""

from __future__ import annotations

import structlog
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from shared.contracts.topics import dead_letter

log = structlog.get_logger(__name__)

# The topics are the log of record that audits replay: never delete by age or size.
LOG_OF_RECORD = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
# Fail fast when the broker is away, so the relay and consumers can retry on their own schedule.
BOOTSTRAP_TIMEOUT_MS = 5_000
CLOUDEVENTS_JSON = [("content-type", b"application/cloudevents+json; charset=UTF-8")]


def producer(bootstrap_servers: str, client_id: str) -> KafkaProducer:
    # Set explicitly, so that a conflicting option raises instead of silently turning idempotence
    # off: acks=all + idempotence keeps per-partition order and no duplicates across retries.
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
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


def consumer(bootstrap_servers: str, group_id: str, client_id: str, topics: list[str] | None = None) -> KafkaConsumer:
    kafka_consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
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


def admin(bootstrap_servers: str, client_id: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        request_timeout_ms=10_000,
    )


def ensure_topics(
    bootstrap_servers: str,
    topics: list[str],
    partitions: int,
    *,
    client_id: str,
    single: tuple[str, ...] = (),
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> None:
    """Create each topic and its dead-letter topic if missing (idempotent, safe to race), and the
    `single` topics with one partition (checkpoints, whose order matters)."""
    configs = dict(LOG_OF_RECORD)
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    wanted = sorted({name for topic in topics for name in (topic, dead_letter(topic))})
    client = admin(bootstrap_servers, client_id)
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
