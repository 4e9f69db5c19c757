"""The broker as this deployment needs it: a principal per service and the auditor, each with its
ACLs (shared/broker/acls.py), for the topics and pipes of the system (services/system.py)."""

from __future__ import annotations

from pathlib import Path

from services.system import SYSTEM
from shared.broker.access import PRINCIPALS, KafkaAccess, all_passwords
from shared.broker.acls import ServiceTopics, ensure_users, grant


def deployment_services() -> list[ServiceTopics]:
    return [ServiceTopics(name, SYSTEM.topic(name), SYSTEM.consumes(name)) for name in SYSTEM.services]


def provision(admin: KafkaAccess, prefix: str, credentials_dir: Path | str, *, users: bool = True) -> int:
    """Create (or update) the SCRAM users whose passwords are in `credentials_dir` and the ACLs
    of the deployment with topic prefix `prefix`. Idempotent. Returns how many ACL bindings."""
    if users:
        ensure_users(admin, all_passwords(credentials_dir, PRINCIPALS))
    return grant(admin, prefix, deployment_services())
