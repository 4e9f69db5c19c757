"""The topics the services create: the log of record (never deleted by age or size), with the
replication settings a deployment gives."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from shared.broker import clients as kafka_clients
from shared.contracts.topics import dead_letter
from tests.support import kafka_access, wait_until

pytestmark = pytest.mark.integration


def test_topics_keep_everything_and_take_the_deployment_replication_settings(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}intake.events.v1"
    provisioning = kafka_access(kafka_bootstrap, "admin")
    kafka_clients.ensure_topics(provisioning, [topic], 3, client_id="test", min_insync_replicas=1)
    admin = kafka_clients.admin(provisioning, "test")
    try:
        for name in (topic, dead_letter(topic)):
            configs = wait_until(lambda n=name: topic_configs(admin, n), what=f"the configuration of {name}")
            assert value(configs, "retention.ms") == "-1" and value(configs, "retention.bytes") == "-1", name
            assert value(configs, "min.insync.replicas") == "1", name
        # Idempotent: asking again for topics that exist changes nothing and does not fail.
        kafka_clients.ensure_topics(provisioning, [topic], 3, client_id="test", min_insync_replicas=1)
    finally:
        admin.close()


def value(configs: dict, key: str) -> str:
    found = configs[key]
    return found["value"] if isinstance(found, dict) else found


def topic_configs(admin, name: str) -> dict:
    """The topic's configuration ({} until every broker knows the new topic)."""
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    return next((found for by_name in described.values() for found in by_name.values()), {})


def test_a_service_refuses_to_start_on_a_topic_that_would_lose_events(kafka_bootstrap, topic_prefix, tmp_path):
    """Its topic made elsewhere with a 7-day retention: `captives serve intake` exits, naming the
    difference, before it accepts a single write; made right, the same service starts."""
    from deploy.processes import free_port
    from tests.support import grant_prefix

    topic = f"{topic_prefix}intake.events.v1"
    grant_prefix(kafka_bootstrap, topic_prefix)
    provisioning = kafka_access(kafka_bootstrap, "admin")
    admin = kafka_clients.admin(provisioning, "test")
    try:
        week = {"retention.ms": str(7 * 24 * 3600 * 1000), "cleanup.policy": "delete"}
        admin.create_topics([NewTopic(topic, 3, 1, topic_configs=week)])
        wait_until(lambda: topic_configs(admin, topic), what=f"the configuration of {topic}")
    finally:
        admin.close()
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_PARTITIONS": "3",
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'intake.db'}",
        "INTAKE_PORT": str(port),
        "INTAKE_KEK_FILE": str(tmp_path / "intake.kek"),
        "INTAKE_LOG_JSON": "false",
    }
    serve = [sys.executable, "-m", "tools.cli", "serve", "intake"]
    refused = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=120)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert f"{topic} has retention.ms=604800000, not -1" in output, output
    assert "topics differ from this service's settings" in output

    # Fixed with the admin tools, the service starts (and would have published nothing before).
    admin = kafka_clients.admin(provisioning, "test")
    try:
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "-1", "retention.bytes": "-1"})]
        )
        wait_until(lambda: value(topic_configs(admin, topic), "retention.ms") == "-1", what="retention.ms=-1")
    finally:
        admin.close()
    process = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _ready(port, process), timeout_s=60, what="intake /readyz")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(port: int, process: subprocess.Popen) -> bool:
    assert process.poll() is None, f"intake exited with {process.returncode}"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_each_property_of_a_topic_that_differs_is_named(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}status.events.v1"
    provisioning = kafka_access(kafka_bootstrap, "admin")
    admin = kafka_clients.admin(provisioning, "test")
    try:
        compacted = {"cleanup.policy": "compact", "retention.bytes": "1048576", "min.insync.replicas": "1"}
        admin.create_topics([NewTopic(topic, 2, 1, topic_configs=compacted)])
        wait_until(lambda: topic_configs(admin, topic), what=f"the configuration of {topic}")
        differences = kafka_clients.differences_of(admin, kafka_clients.topic_specs([topic], 3, min_insync_replicas=2))
    finally:
        admin.close()
    mine = [difference for difference in differences if difference.startswith(f"{topic} ")]
    assert sorted(mine) == sorted(
        [
            f"{topic} has 2 partitions, not 3",
            f"{topic} has cleanup.policy=compact, not delete",
            f"{topic} has retention.bytes=1048576, not -1",
            f"{topic} has retention.ms=604800000, not -1",
            f"{topic} has min.insync.replicas=1, not 2",
        ]
    ), differences
    # The dead-letter topic was never made: it has no partitions, which is named too.
    assert f"{dead_letter(topic)} has 0 partitions, not 3" in differences
    # Not set on the topic, retention.ms is the broker's default of 7 days: named as well.
    assert f"{topic} has retention.ms=604800000, not -1" in differences
