"""The three-broker cluster (`deploy/kafka` `Cluster(size=3)`, issue 18 item 7), as production
runs Kafka: three KRaft nodes secured as the one node is, topics with replication factor 3 and
min.insync.replicas 2. One broker lost, records are still acknowledged; two lost, none is, and
the services' readiness says so; both back, every acknowledged record is there."""

from __future__ import annotations

import uuid

import pytest
from kafka.errors import KafkaError

from deploy.kafka.node import Cluster
from shared.broker import clients as kafka_clients
from shared.broker.access import ADMIN, KafkaAccess
from tests.broker import KAFKA_CREDENTIALS, grant_prefix, register_broker
from tests.support import kafka_access, producer, read_topic, wait_until

pytestmark = pytest.mark.integration


def test_three_brokers_acknowledge_with_one_lost_refuse_with_two_lost_and_keep_every_acknowledged_record(tmp_path):
    with Cluster(tmp_path / "kafka", size=3, credentials_dir=KAFKA_CREDENTIALS) as cluster:
        bootstrap = cluster.bootstrap_servers
        assert len(bootstrap.split(",")) == 3 and len({node.port for node in cluster.nodes}) == 3
        register_broker(bootstrap)
        prefix = f"cluster{uuid.uuid4().hex[:6]}."
        grant_prefix(bootstrap, prefix)  # intake may write its topic under this prefix, as deployed
        admin_access = kafka_access(bootstrap, ADMIN)
        topic = f"{prefix}intake.events.v1"
        kafka_clients.ensure_topics(
            admin_access, [topic], 3, client_id="test", replication_factor=3, min_insync_replicas=2
        )
        partitions = wait_until(lambda: fully_replicated(admin_access, topic), what=f"{topic} on three brokers")
        assert {tuple(sorted(p["replica_nodes"])) for p in partitions} == {(1, 2, 3)}

        # Secured as one node is: a wrong password gets nothing from any of the three.
        with pytest.raises(kafka_clients.KafkaAuthenticationFailed):
            kafka_clients.check_credentials(KafkaAccess(bootstrap, "intake", "not-its-password"))

        acknowledged = send(bootstrap, topic, "all up", 10)
        assert kafka_clients.accepts_writes(admin_access, "test", in_sync=2)

        leader = next(p["leader_id"] for p in partitions if p["partition_index"] == 0)
        cluster.node(leader).kill()
        # Its partitions get another leader once the controller notices it gone (the broker's
        # session, 9 s by default): writes wait for that, then are acknowledged by the two left.
        wait_until(lambda: led_without(admin_access, topic, leader), timeout_s=60, what=f"leaders other than {leader}")
        acknowledged += send(bootstrap, topic, "one lost", 10)
        assert kafka_clients.accepts_writes(admin_access, "test", in_sync=2)

        second = next(node for node in cluster.nodes if node.running)
        second.kill()
        assert not accepts_writes(admin_access)
        with pytest.raises(KafkaError):
            send(bootstrap, topic, "two lost", 1)

        cluster.start()
        wait_until(lambda: fully_replicated(admin_access, topic), timeout_s=120, what="the replicas in sync again")
        assert kafka_clients.accepts_writes(admin_access, "test", in_sync=2)
        stored = {record.value for record in read_topic(bootstrap, topic)}
        assert set(acknowledged) <= stored, set(acknowledged) - stored
    assert not any(node.running for node in cluster.nodes)


def accepts_writes(access: KafkaAccess) -> bool:
    """With two brokers of three gone the cluster may not even answer the question (a refused
    connection to the one it asks): either way it accepts no write."""
    try:
        return kafka_clients.accepts_writes(access, "test", in_sync=2)
    except KafkaError:
        return False


def send(bootstrap: str, topic: str, label: str, count: int) -> list[bytes]:
    """`count` records, each acknowledged by the cluster (acks=all) or raising."""
    sender = producer(bootstrap, "intake", request_timeout_ms=5_000, delivery_timeout_ms=8_000, max_block_ms=8_000)
    try:
        values = [f"{label} {n}".encode() for n in range(count)]
        for future in [sender.send(topic, key=str(n).encode(), value=value) for n, value in enumerate(values)]:
            future.get(timeout=30)
        return values
    finally:
        sender.close(timeout=1)


def led_without(access: KafkaAccess, topic: str, gone: int) -> bool:
    """Whether every partition of `topic` has a leader, and none is broker `gone`."""
    admin = kafka_clients.admin(access, "test")
    try:
        (described,) = admin.describe_topics([topic])
    except KafkaError:
        return False
    finally:
        admin.close()
    leaders = [p["leader_id"] for p in described["partitions"]]
    return bool(leaders) and all(leader not in (gone, -1) for leader in leaders)


def fully_replicated(access: KafkaAccess, topic: str) -> list[dict] | None:
    """The topic's partitions, once each has three replicas all in sync (None before)."""
    admin = kafka_clients.admin(access, "test")
    try:
        (described,) = admin.describe_topics([topic])
    except KafkaError:
        return None
    finally:
        admin.close()
    partitions = described["partitions"]
    return partitions if partitions and all(len(p["isr_nodes"]) == 3 for p in partitions) else None
