"""The topics the services create: the log of record (never deleted by age or size), with the
replication settings a deployment gives."""

from __future__ import annotations

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from shared import kafka as kafka_clients
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
