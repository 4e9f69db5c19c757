"""Two instances of the status service share its database and one consumer group: they split
the intake topic's partitions, one of them publishes the outbox. The one publishing is killed
(kill -9) in the middle of a mass registration; the other takes over its partitions and the
relay, and every registration is still decided exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from deploy.postgres.cluster import create_database, drop_database
from deploy.processes import free_port, tail
from shared.contracts import decode
from shared.contracts.topics import INTAKE_EVENTS, STATUS_EVENTS
from tests.support import HEADERS, caught_up, grant_prefix, read_topic, registration, wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 6
BATCHES, BATCH_SIZE = 16, 25  # 400 captives, registered while the instances work


class Instance:
    def __init__(self, name: str, service: str, env: dict, logs: Path):
        self.name, self.service, self.log = name, service, logs / f"{name}.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, f"{service.upper()}_PORT": str(self.port)}
        self.process: subprocess.Popen | None = None

    def start(self) -> Instance:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "serve", self.service],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.ready, timeout_s=60, what=f"{self.name} /readyz")
        return self

    def ready(self) -> bool:
        assert self.process.poll() is None, f"{self.name} exited:\n{tail(self.log)}"
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def metrics(self) -> dict[str, list]:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return {family.name: family.samples for family in text_string_to_metric_families(text)}

    def partitions(self) -> set[int]:
        return {int(s.labels["partition"]) for s in self.metrics().get("captives_consumer_lag", [])}

    def leads(self) -> bool:
        return any(s.value == 1 for s in self.metrics().get("captives_relay_leader", []))

    def applied(self) -> float:
        return sum(s.value for s in self.metrics()["captives_events_consumed"] if s.labels["outcome"] == "applied")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


@pytest.fixture
def cluster(kafka_bootstrap, postgres_server, keycloak, tmp_path):  # keycloak: its issuer in the env
    prefix = f"scale{uuid.uuid4().hex[:8]}."
    grant_prefix(kafka_bootstrap, prefix)
    names = {service: f"scale_{service}_{uuid.uuid4().hex[:8]}" for service in ("intake", "status")}
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": str(PARTITIONS),
        **{f"{s.upper()}_DATABASE_URL": create_database(postgres_server, n) for s, n in names.items()},
    }
    instances = {
        "intake": Instance("intake", "intake", env, tmp_path),
        "status-a": Instance("status-a", "status", env, tmp_path),
        "status-b": Instance("status-b", "status", env, tmp_path),
    }
    try:
        for instance in instances.values():
            instance.start()
        yield instances, env, prefix, kafka_bootstrap
    finally:
        for instance in instances.values():
            instance.stop(signal.SIGKILL)
        for name in names.values():
            drop_database(postgres_server, name)


def register_in_batches(intake_url: str, registered: list[str], errors: list[str]) -> None:
    with httpx.Client(base_url=intake_url, headers=HEADERS, timeout=30) as client:
        for _ in range(BATCHES):
            answer = client.post("/v1/captives:batch", json={"captives": [registration()] * BATCH_SIZE})
            if answer.status_code != 200:
                errors.append(answer.text)
                return
            registered.extend(result["event_id"] for result in answer.json()["results"])


def test_two_status_instances_split_the_work_and_survive_losing_one(cluster):
    instances, env, prefix, bootstrap = cluster
    a, b = instances["status-a"], instances["status-b"]

    # One consumer group: the partitions are split between the two, none held by both.
    split = wait_until(
        lambda: (
            (a.partitions(), b.partitions())
            if a.partitions() and b.partitions() and len(a.partitions() | b.partitions()) == PARTITIONS
            else None
        ),
        what="both instances holding partitions",
    )
    assert not split[0] & split[1], split
    # One relay: exactly one instance leads.
    leader, standby = (
        (a, b) if wait_until(lambda: a.leads() or b.leads(), what="a relay leader") and a.leads() else (b, a)
    )
    assert leader.leads() and not standby.leads()

    registered: list[str] = []
    errors: list[str] = []
    load = threading.Thread(target=register_in_batches, args=(instances["intake"].url, registered, errors))
    load.start()
    wait_until(lambda: a.applied() + b.applied() >= 60, what="the instances to apply some registrations")
    leader.stop(signal.SIGKILL)  # mid-stream, holding partitions and the relay
    load.join(120)
    assert not errors and len(registered) == BATCHES * BATCH_SIZE, errors[:1]

    # The survivor takes over the relay and every partition, and decides everyone.
    wait_until(standby.leads, what="the standby taking over the relay")
    status_db = sa.create_engine(env["STATUS_DATABASE_URL"])

    def decided() -> int:
        with status_db.connect() as connection:
            return connection.execute(
                sa.text("SELECT count(*) FROM events WHERE event_type = 'StatusDetermined'")
            ).scalar()

    wait_until(lambda: decided() >= len(registered), timeout_s=120, what="a status for every registration")
    wait_until(lambda: standby.partitions() == set(range(PARTITIONS)), what="the survivor holding every partition")

    with status_db.connect() as connection:
        inbox = Counter(connection.execute(sa.text("SELECT event_id FROM inbox")).scalars())
        causes = Counter(
            decode(envelope.encode()).envelope.causation_id
            for envelope in connection.execute(
                sa.text("SELECT envelope FROM events WHERE event_type = 'StatusDetermined'")
            ).scalars()
        )
        stored = set(connection.execute(sa.text("SELECT event_id FROM events")).scalars())
    status_db.dispose()
    # Every registration applied once: one inbox row and exactly one decision caused by it.
    assert set(registered) <= set(inbox)
    assert {cause: n for cause, n in causes.items() if n != 1} == {}
    assert set(causes) == set(registered)

    # Every decision reached the topic (a relay killed between the broker's ack and its delete
    # may send a few again: at-least-once publication, which the consumers' inboxes absorb).
    def published() -> set[str]:
        return {decode(r.value).envelope.id for r in read_topic(bootstrap, prefix + STATUS_EVENTS)}

    wait_until(lambda: stored <= published(), what="every status event on the topic")
    on_intake_topic = {decode(r.value).envelope.id for r in read_topic(bootstrap, prefix + INTAKE_EVENTS)}
    assert set(registered) <= on_intake_topic

    # The killed instance comes back: the group rebalances, and redelivered records change nothing.
    leader.start()
    wait_until(lambda: leader.partitions() and standby.partitions(), what="the group split again")
    wait_until(lambda: caught_up(bootstrap, f"{prefix}status", prefix + INTAKE_EVENTS), what="the group caught up")
    assert not (leader.leads() and standby.leads())
    status_db = sa.create_engine(env["STATUS_DATABASE_URL"])
    with status_db.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM events")).scalar() == len(stored)
        assert connection.execute(sa.text("SELECT count(*) FROM inbox")).scalar() == sum(inbox.values())
    status_db.dispose()
