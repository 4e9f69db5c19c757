"""The test harness's side of the secured broker (shared/broker/access.py, shared/broker/acls.py).

Every principal's password is generated, once per session, into one directory that the in-process
services and the subprocesses (which inherit KAFKA_CREDENTIALS_DIR) read; every broker a test
starts is given the same secrets. Each topic prefix a test uses gets the deployment's ACLs
(`grant_prefix`, which `tests.support.settings_for` calls), so the services' principals are
confined to their own test's topics as they are to a deployment's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kafka import KafkaProducer

from shared.broker import clients as kafka_clients
from shared.broker.access import ADMIN, AUDITOR, KafkaAccess, ensure_credentials

if "KAFKA_CREDENTIALS_DIR" not in os.environ:
    os.environ["KAFKA_CREDENTIALS_DIR"] = tempfile.mkdtemp(prefix="captives-test-kafka-")
    ensure_credentials(os.environ["KAFKA_CREDENTIALS_DIR"])
KAFKA_CREDENTIALS = Path(os.environ["KAFKA_CREDENTIALS_DIR"])

# Brokers the harness provisions (bootstrap -> admin access), and the topic prefixes granted on each.
BROKERS: dict[str, KafkaAccess] = {}
_GRANTED: set[tuple[str, str]] = set()


def kafka_access(bootstrap: str, principal: str = AUDITOR) -> KafkaAccess:
    """How a test connects to the broker as `principal` (default: the read-only auditor)."""
    return KafkaAccess(bootstrap, principal, (KAFKA_CREDENTIALS / principal).read_text().strip())


def register_broker(bootstrap: str) -> None:
    """Create the principals on a broker the harness runs (idempotent), so that each new topic
    prefix on it can be granted its ACLs."""
    from shared.broker.access import PRINCIPALS, all_passwords
    from shared.broker.acls import ensure_users

    admin = kafka_access(bootstrap, ADMIN)
    ensure_users(admin, all_passwords(KAFKA_CREDENTIALS, PRINCIPALS))
    BROKERS[bootstrap] = admin
    _GRANTED.difference_update({granted for granted in _GRANTED if granted[0] == bootstrap})


def grant_prefix(bootstrap: str, prefix: str) -> None:
    """Give the deployment with topic prefix `prefix` its ACLs (services and auditor), once. A
    bootstrap address the harness does not run (a unit test's dummy) is left alone."""
    from tools.broker import provision

    if bootstrap not in BROKERS or (bootstrap, prefix) in _GRANTED:
        return
    provision(BROKERS[bootstrap], prefix, KAFKA_CREDENTIALS, users=False)
    _GRANTED.add((bootstrap, prefix))


def producer(bootstrap: str, principal: str = ADMIN, **options) -> KafkaProducer:
    """A producer as `principal` (default admin: a test that forges or replays records writes
    where no service could)."""
    return kafka_clients.producer(kafka_access(bootstrap, principal), "test", **options)
