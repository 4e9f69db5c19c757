"""Replay after repair (issue 25, item 7), end to end: the three services as processes on the real
broker and PostgreSQL. The oldest records of one partition of each service's topic are deleted
(what a wrong retention does), `captives reconcile` queues them again and says that replay will
see them after later events of their streams, and `captives replay <service> --verify` then
matches the live read models on all three: replay takes each stream in version order, where it
used to skip the later events as broken chains and report MISMATCH."""

from __future__ import annotations

import re
import subprocess
import sys

import orjson
import pytest
from kafka import TopicPartition

from shared.broker import clients as kafka_clients
from tests.support import HEADERS, KPA_MEMBERSHIP, kafka_access, read_topic, registration, wait_settled, wait_until

pytestmark = pytest.mark.integration

SERVICES = ("intake", "status", "disposition")
VISIT = {"delegate": "D. Müller", "place": "Camp 1", "private_interview": True}


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        env={**stack["env"], "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def cut_point(records) -> tuple[int, int]:
    """A partition, and an offset in it, such that deleting the records before it loses a stream's
    earlier events while its later ones stay: what reconcile then puts back out of position."""
    by_partition: dict[int, list] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    for partition, held in sorted(by_partition.items(), key=lambda item: -len(item[1])):
        for index, record in enumerate(held):
            document = orjson.loads(record.value)
            later = any(
                orjson.loads(other.value)["subject"] == document["subject"]
                and orjson.loads(other.value)["streamversion"] > document["streamversion"]
                for other in held[index + 1 :]
            )
            if later and index + 1 < len(held):
                return partition, held[index + 1].offset
    raise AssertionError("no partition holds a stream with a later event after an earlier one")


def test_replay_rebuilds_every_service_after_its_topic_was_cut_and_reconciled(stack):
    intake = stack["intake"]
    for number in range(9):
        answer = intake.post("/v1/captives", json=registration(surname=f"리{number}"), headers=HEADERS)
        assert answer.status_code == 201, answer.text
        captive_id = answer.json()["captive_id"]
        for path, body in (("force-membership", KPA_MEMBERSHIP), ("icrc-visits", VISIT)):
            answer = intake.post(f"/v1/captives/{captive_id}/{path}", json=body, headers=HEADERS)
            assert answer.status_code == 201, answer.text
    wait_settled(stack)

    prefix, bootstrap = stack["topic_prefix"], stack["bootstrap"]
    lost = {}
    for service in SERVICES:
        topic = f"{prefix}{service}.events.v1"
        records = read_topic(bootstrap, topic)
        partition, before = cut_point(records)
        lost[service] = [r for r in records if r.partition == partition and r.offset < before]
        admin = kafka_clients.admin(kafka_access(bootstrap, "admin"), "test")
        try:
            admin.delete_records({TopicPartition(topic, partition): before})
        finally:
            admin.close()
        wait_until(
            lambda t=topic, n=len(records) - len(lost[service]): len(read_topic(bootstrap, t)) == n,
            what=f"the oldest records of {topic} deleted",
        )

    for service in SERVICES:
        done = cli(stack, "reconcile", service)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{len(lost[service])} events queued" in done.stdout, done.stdout
        said = re.search(r"replay will see ([\d,]+) of them after later events of their own streams", done.stdout)
        assert said and int(said.group(1)) >= 1, done.stdout
    wait_settled(stack)
    for service in SERVICES:  # every lost event is on the topic again, after later ones of its stream
        topic = f"{prefix}{service}.events.v1"
        ids = {orjson.loads(r.value)["id"] for r in read_topic(bootstrap, topic)}
        assert {orjson.loads(r.value)["id"] for r in lost[service]} <= ids

    for service in SERVICES:
        replayed = cli(stack, "replay", service, "--verify")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        said = " ".join(replayed.stdout.split())  # rich wraps long lines
        assert "match:" in said and " 0 breaking their hash chain" in said, replayed.stdout

    # The chains hold in version order; the checkpoints taken before the cut rightly no longer do.
    verified = cli(stack, "audit", "verify")
    said = " ".join(verified.stdout.split())
    assert " 0 broken chains" in said and "were judged in version order" in said, verified.stdout + verified.stderr
