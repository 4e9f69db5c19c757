"""Who connects to Kafka, and with which secret.

Every client of the broker authenticates with SASL/SCRAM-SHA-512 as one principal:

  admin        the broker itself and provisioning (users, ACLs): the only super user
  intake, status, disposition
               one per service: writes only its own topics, reads only what it consumes
  auditor      the operators' read-only tools (replay, audit verify/reproduce/timeline)

The secrets are generated (never committed) into a credentials directory, one file per
principal named after it and holding only its password (mode 0600, the directory 0700):
`var/kafka/credentials/` for `make up`, a temporary one for the tests and benchmarks, and
docker secrets for docker-compose (`make compose-secrets` writes them). A process reads the one
file of the principal it runs as, or takes KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from shared.platform.private_files import private_directory

ADMIN = "admin"
AUDITOR = "auditor"
SERVICES = ("intake", "status", "disposition")
PRINCIPALS = (ADMIN, *SERVICES, AUDITOR)
MECHANISM = "SCRAM-SHA-512"


class KafkaCredentialsMissing(RuntimeError):
    """No secret for the principal: the message says where one was looked for."""


@dataclass(frozen=True)
class KafkaAccess:
    """Where the broker is and who connects to it. The password is never in repr or logs."""

    bootstrap_servers: str
    username: str
    password: str = field(repr=False)
    security_protocol: str = "SASL_PLAINTEXT"
    ssl_cafile: str | None = None

    def client_config(self) -> dict:
        """The options every kafka-python client of this project is given (shared/broker/clients.py)."""
        config = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }
        if self.ssl_cafile:
            config["ssl_cafile"] = self.ssl_cafile
        return config

    def as_principal(self, username: str, credentials_dir: Path | str) -> KafkaAccess:
        """The same broker, as another principal whose secret is in `credentials_dir`."""
        return KafkaAccess(
            self.bootstrap_servers,
            username,
            read_password(credentials_dir, username),
            self.security_protocol,
            self.ssl_cafile,
        )


def read_password(credentials_dir: Path | str, principal: str) -> str:
    path = Path(credentials_dir) / principal
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        raise KafkaCredentialsMissing(
            f"no Kafka password for principal '{principal}': {path} does not exist (set KAFKA_CREDENTIALS_DIR "
            "to the directory `captives up` or `captives kafka credentials` wrote, or KAFKA_SASL_PASSWORD)"
        ) from None
    if not password:
        raise KafkaCredentialsMissing(f"the Kafka password file of principal '{principal}' ({path}) is empty")
    return password


def ensure_credentials(credentials_dir: Path | str, principals: tuple[str, ...] = PRINCIPALS) -> Path:
    """Generate a password for each principal that has none yet (existing ones are kept)."""
    directory = Path(credentials_dir)
    private_directory(directory)
    os.chmod(directory, 0o700)
    for principal in principals:
        path = directory / principal
        if path.exists() and path.read_text().strip():
            continue
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return directory


def all_passwords(credentials_dir: Path | str, principals: tuple[str, ...] = PRINCIPALS) -> dict[str, str]:
    return {principal: read_password(credentials_dir, principal) for principal in principals}
