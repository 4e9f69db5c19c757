"""docker-compose.yml's broker, run without Docker: its start script (deploy/kafka/compose-broker.sh)
with the kafka service's environment from the compose file, on the jars `make deps` fetched
(shims stand in for the image's bin/ scripts), then `captives kafka provision` as the compose
file runs it. What comes up is secured: the services' principals work within their ACLs, an
anonymous client gets nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from deploy.kafka.node import JVM_FLAGS, LOG4J2, STARTED_MARKER, fetch
from deploy.processes import free_port, tail
from shared.broker import clients as kafka_clients
from shared.broker.access import KafkaAccess, ensure_credentials, read_password

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def shims(directory: Path) -> Path:
    """bin/kafka-storage.sh and bin/kafka-server-start.sh, as the image has them, on our jars."""
    directory.mkdir()
    java = f'java {" ".join(JVM_FLAGS)} -Dlog4j2.configurationFile={LOG4J2} -cp "{fetch()}/*"'
    for name, main in (("kafka-storage.sh", "kafka.tools.StorageTool"), ("kafka-server-start.sh", "kafka.Kafka")):
        (directory / name).write_text(f'#!/bin/bash\nexec {java} {main} "$@"\n')
        (directory / name).chmod(0o755)
    return directory


def test_the_compose_broker_comes_up_secured_and_provisioned(tmp_path):
    if shutil.which("java") is None:
        pytest.fail("this test runs the compose broker's script on Java 17 (make deps installs it)")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    port, controller = free_port(), free_port()
    credentials = ensure_credentials(tmp_path / "credentials")
    env = {name: str(value) for name, value in compose["services"]["kafka"]["environment"].items()}
    # Only where it listens changes: loopback and free ports instead of the compose network.
    env["KAFKA_LISTENERS"] = (
        env["KAFKA_LISTENERS"]
        .replace(":9092", f"127.0.0.1:{port}")
        .replace("localhost:9093", f"127.0.0.1:{controller}")
    )
    env["KAFKA_ADVERTISED_LISTENERS"] = env["KAFKA_ADVERTISED_LISTENERS"].replace("kafka:9092", f"127.0.0.1:{port}")
    env["KAFKA_CONTROLLER_QUORUM_VOTERS"] = f"1@127.0.0.1:{controller}"
    env["KAFKA_LOG_DIRS"] = str(tmp_path / "data")
    log = tmp_path / "broker.log"
    with log.open("wb") as out:
        broker = subprocess.Popen(
            ["bash", str(ROOT / "deploy" / "kafka" / "compose-broker.sh")],
            env={
                "PATH": os.environ["PATH"],
                **env,
                "CAPTIVES_KAFKA_BIN": str(shims(tmp_path / "bin")),
                "CAPTIVES_ADMIN_SECRET": str(credentials / "admin"),
                "CAPTIVES_CONFIG_DIR": str(tmp_path / "config"),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while STARTED_MARKER not in log.read_text(errors="replace"):
            assert broker.poll() is None, tail(log)
            assert time.monotonic() < deadline, tail(log)
            time.sleep(0.3)
        admin_password = read_password(credentials, "admin")
        assert admin_password not in log.read_text(errors="replace"), "the broker logged the admin password"
        assert oct((tmp_path / "config" / "server.properties").stat().st_mode)[-3:] == "600"

        bootstrap = f"127.0.0.1:{port}"
        provisioned = subprocess.run(
            [sys.executable, "-m", "tools.cli", "kafka", "provision", "--wait-s", "60"],
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_CREDENTIALS_DIR": str(credentials)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr
        assert "users intake, status, disposition, auditor" in provisioned.stdout

        intake = KafkaAccess(bootstrap, "intake", read_password(credentials, "intake"))
        kafka_clients.ensure_topics(intake, ["intake.events.v1"], 1, client_id="test")
        writer = kafka_clients.producer(intake, "test")
        writer.send("intake.events.v1", value=b'{"a": "record"}').get(10)
        writer.close()
        with pytest.raises(KafkaError):
            anonymous = KafkaConsumer(bootstrap_servers=bootstrap, bootstrap_timeout_ms=3000)
            anonymous.topics()
        status = KafkaAccess(bootstrap, "status", read_password(credentials, "status"))
        with pytest.raises(KafkaError, match="AuthorizationFailed"):
            forger = kafka_clients.producer(status, "test", max_block_ms=5000)
            try:
                forger.send("intake.events.v1", value=b"forged").get(10)
            finally:
                forger.close()
        auditor = KafkaAccess(bootstrap, "auditor", read_password(credentials, "auditor"))
        reader = kafka_clients.reader(auditor)
        try:
            assert reader.partitions_for_topic("intake.events.v1") == {0}
        finally:
            reader.close()
    finally:
        os.killpg(broker.pid, signal.SIGTERM)
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(broker.pid, signal.SIGKILL)
            broker.wait(10)
