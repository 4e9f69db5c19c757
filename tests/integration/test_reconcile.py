"""`captives reconcile`: records deleted from a service's topic (kafka-delete-records on a whole
partition's range) are found by comparing the events table with the topic, queued again in the
outbox, and published by the running service's relay; a second run finds nothing to do."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import TopicPartition

from shared.broker import clients as kafka_clients
from tests.support import HEADERS, build_app, kafka_access, read_topic, registration, settings_for, wait_until

pytestmark = pytest.mark.integration


def ids_on(bootstrap: str, topic: str) -> list[str]:
    return [orjson.loads(record.value)["id"] for record in read_topic(bootstrap, topic)]


def count(output: str, label: str) -> int:
    """A row of reconcile's table, e.g. `missing from the topic │ 3`."""
    found = re.search(rf"{label}\s*│\s*([\d,]+)", output)
    assert found, f"no row {label!r} in:\n{output}"
    return int(found.group(1).replace(",", ""))


def reconcile(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", "reconcile", "intake", *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_reconcile_republishes_a_range_deleted_from_the_topic(kafka_bootstrap, topic_prefix, tmp_path):
    database = f"sqlite:///{tmp_path / 'intake.db'}"
    settings = settings_for("intake", database_url=database, bootstrap=kafka_bootstrap, prefix=topic_prefix)
    settings.kek_file = str(tmp_path / "intake.kek")
    topic = f"{topic_prefix}intake.events.v1"
    env = {
        **os.environ,
        "INTAKE_DATABASE_URL": database,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_PARTITIONS": "3",
    }
    with TestClient(build_app("intake", settings)) as intake:
        for number in range(12):
            answer = intake.post("/v1/captives", json=registration(surname=f"리{number}"), headers=HEADERS)
            assert answer.status_code == 201, answer.text
        stored = wait_until(lambda: len(ids_on(kafka_bootstrap, topic)) == 12 and ids_on(kafka_bootstrap, topic))

        # Nothing is missing yet: the dry run says so and exits 0.
        clean = reconcile(env, "--dry-run")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert count(clean.stdout, "missing from the topic") == 0 and count(clean.stdout, "on the topic") == 12

        # Delete every record of the busiest partition, as kafka-delete-records would.
        records = read_topic(kafka_bootstrap, topic)
        counts = {p: sum(1 for r in records if r.partition == p) for p in {r.partition for r in records}}
        busiest = max(counts, key=counts.get)
        lost = {orjson.loads(r.value)["id"] for r in records if r.partition == busiest}
        # Up to the partition's end: the relay's transaction markers take offsets of their own.
        partition = TopicPartition(topic, busiest)
        reader = kafka_clients.reader(kafka_access(kafka_bootstrap, "admin"))
        try:
            end = reader.end_offsets([partition])[partition]
        finally:
            reader.close()
        admin = kafka_clients.admin(kafka_access(kafka_bootstrap, "admin"), "test")
        try:
            admin.delete_records({partition: end})
        finally:
            admin.close()
        remaining = wait_until(
            lambda: len(ids_on(kafka_bootstrap, topic)) == 12 - len(lost) and ids_on(kafka_bootstrap, topic)
        )
        assert not lost & set(remaining)

        found = reconcile(env, "--dry-run")
        assert found.returncode == 1, found.stdout + found.stderr
        assert count(found.stdout, "missing from the topic") == len(lost) > 0
        assert count(found.stdout, "queued again now") == 0

        done = reconcile(env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{len(lost)} events queued" in done.stdout, done.stdout
        # The service's relay publishes them: every stored event is on the topic again, once more.
        wait_until(lambda: set(ids_on(kafka_bootstrap, topic)) == set(stored), what="the lost events republished")

        again = reconcile(env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert count(again.stdout, "missing from the topic") == 0
        assert count(again.stdout, "queued again now") == 0
    assert sorted(ids_on(kafka_bootstrap, topic)) == sorted(remaining + list(lost))  # no duplicate
