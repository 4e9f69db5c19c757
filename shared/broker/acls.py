"""What each principal may do on the broker (least privilege), and provisioning it.

For a deployment whose topics carry the prefix P (empty in production; each test, benchmark and
chaos run has its own), with a service S that produces topic T and consumes topics C:

  S        topics starting with P+T (T itself, T.dlq, T.checkpoints): CREATE, WRITE, READ, DESCRIBE,
           DESCRIBE_CONFIGS (it creates its own topics at start, checks their settings, and reads
           its own topic to checkpoint it)
           each topic P+c of C: READ, DESCRIBE (never WRITE: it cannot forge upstream events)
           each P+c.dlq: CREATE, WRITE, DESCRIBE, DESCRIBE_CONFIGS (it sets aside what it cannot
           apply there, and checks the topic's settings)
           its consumer group P+S: READ, DESCRIBE
           its relay's transactional id P+S-relay: WRITE, DESCRIBE (the relay publishes in
           transactions, so that a new leader fences the old one: shared/eventstore/relay.py)
  auditor  every topic of the deployment: READ, DESCRIBE, nothing else (replay and audits read
           with no consumer group)
  admin    super user (the broker's own principal, set in its configuration): users and ACLs

Nothing else is allowed (allow.everyone.if.no.acl.found=false), so a principal without ACLs, or a
client that does not authenticate, gets nothing. The producers are idempotent, which since Kafka
2.8 needs WRITE on a topic rather than IDEMPOTENT_WRITE on the cluster; a transactional producer
needs WRITE (and DESCRIBE) on its TRANSACTIONAL_ID instead, so no principal has IDEMPOTENT_WRITE.
The id is LITERAL: a service's principal cannot take another service's transactional id, nor
fence its relay.

Users are created with the Admin API (AlterUserScramCredentials, SCRAM-SHA-512): `ensure_users`
once per broker, `grant` once per deployment prefix; both are idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from shared.broker.access import ADMIN, AUDITOR, KafkaAccess
from shared.broker.clients import relay_transactional_id
from shared.contracts.topics import dead_letter

LITERAL, PREFIXED = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
READ, WRITE, CREATE, DESCRIBE = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.CREATE, ACLOperation.DESCRIBE
DESCRIBE_CONFIGS = ACLOperation.DESCRIBE_CONFIGS


class ProvisioningFailed(RuntimeError):
    """The broker refused a user or an ACL; the message says which and why."""


@dataclass(frozen=True)
class ServiceTopics:
    name: str  # the service, and its principal
    topic: str  # the topic it produces (unprefixed)
    consumes: tuple[str, ...]  # the topics it consumes (unprefixed)


def _acl(principal: str, operation: ACLOperation, resource: ResourceType, name: str, pattern) -> ACL:
    return ACL(
        principal=f"User:{principal}",
        host="*",
        operation=operation,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(resource, name, pattern),
    )


def service_acls(prefix: str, service: ServiceTopics) -> list[ACL]:
    own = f"{prefix}{service.topic}"
    owned = (CREATE, WRITE, READ, DESCRIBE, DESCRIBE_CONFIGS)
    acls = [_acl(service.name, op, ResourceType.TOPIC, own, PREFIXED) for op in owned]
    for upstream in service.consumes:
        topic = f"{prefix}{upstream}"
        acls += [_acl(service.name, op, ResourceType.TOPIC, topic, LITERAL) for op in (READ, DESCRIBE)]
        acls += [
            _acl(service.name, op, ResourceType.TOPIC, dead_letter(topic), LITERAL)
            for op in (CREATE, WRITE, DESCRIBE, DESCRIBE_CONFIGS)
        ]
    transactional_id = relay_transactional_id(prefix, service.name)
    acls += [
        _acl(service.name, op, ResourceType.TRANSACTIONAL_ID, transactional_id, LITERAL) for op in (WRITE, DESCRIBE)
    ]
    if service.consumes:
        group = f"{prefix}{service.name}"
        acls += [_acl(service.name, op, ResourceType.GROUP, group, LITERAL) for op in (READ, DESCRIBE)]
    return acls


def auditor_acls(prefix: str) -> list[ACL]:
    # PREFIXED needs a non-empty name; a deployment without a prefix owns every topic ("*").
    name, pattern = (prefix, PREFIXED) if prefix else ("*", LITERAL)
    return [_acl(AUDITOR, op, ResourceType.TOPIC, name, pattern) for op in (READ, DESCRIBE)]


def deployment_acls(prefix: str, services: Iterable[ServiceTopics]) -> list[ACL]:
    acls = [acl for service in services for acl in service_acls(prefix, service)]
    return acls + auditor_acls(prefix)


def ensure_users(admin: KafkaAccess, passwords: Mapping[str, str]) -> None:
    """Create or update the SCRAM-SHA-512 credential of each principal but `admin` (whose own is
    added when the broker's storage is formatted)."""
    from shared.broker import clients as kafka_clients

    upserts = [
        UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)
        for user, password in passwords.items()
        if user != ADMIN
    ]
    if not upserts:
        return
    client = kafka_clients.admin(admin, "provisioning")
    try:
        refused = {user: error for user, error in client.alter_user_scram_credentials(upserts).items() if error}
    finally:
        client.close()
    if refused:
        raise ProvisioningFailed(f"the broker refused the credentials of {refused}")


def grant(admin: KafkaAccess, prefix: str, services: Iterable[ServiceTopics], *, timeout_s: float = 30.0) -> int:
    """Create the ACLs of the deployment with topic prefix `prefix`, and wait until the broker
    applies them (they travel through the metadata log). Returns how many bindings."""
    from shared.broker import clients as kafka_clients

    acls = deployment_acls(prefix, services)
    client = kafka_clients.admin(admin, "provisioning")
    try:
        failed = client.create_acls(acls)["failed"]
        if failed:
            raise ProvisioningFailed(f"the broker refused {len(failed)} ACLs: {failed[:3]}")
        # Written in one request, they are applied together: once the last is visible, all are.
        last = acls[-1]
        wanted = ACLFilter(
            principal=last.principal,
            host="*",
            operation=last.operation,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(
                last.resource_pattern.resource_type,
                last.resource_pattern.resource_name,
                last.resource_pattern.pattern_type,
            ),
        )
        deadline = time.monotonic() + timeout_s
        while not client.describe_acls(wanted)[0]:
            if time.monotonic() > deadline:
                raise ProvisioningFailed(f"the ACLs of prefix {prefix!r} were not applied within {timeout_s}s")
            time.sleep(0.05)
    finally:
        client.close()
    return len(acls)
