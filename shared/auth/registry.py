"""The registry of agencies and their API clients: a JSON file the services read (and re-read
when it changes), written by `captives clients ...`. Client secrets are kept only as scrypt
hashes; the secret itself is shown once, when the client is created.

The file is configuration, not event data: who may call the API is decided by the operators of
the deployment, and the services only read it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_extra_types.country import CountryAlpha2

from shared.auth.roles import KIND_ROLES, AgencyKind, Role

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class Agency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_id: str = Field(pattern=NAME_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    kind: AgencyKind
    state: CountryAlpha2 | None = None  # the state a partner-state agency speaks for
    requests_per_minute: int = Field(default=1200, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _partner_names_its_state(self):
        if self.kind is AgencyKind.PARTNER_STATE and self.state is None:
            raise ValueError("a partner-state agency must name its state (ISO 3166 alpha-2)")
        return self


class Client(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=NAME_PATTERN)
    agency_id: str
    roles: list[Role] = Field(min_length=1)
    secret_hash: str  # scrypt$<salt hex>$<hash hex>
    disabled: bool = False


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agencies: dict[str, Agency] = Field(default_factory=dict)
    clients: dict[str, Client] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _clients_fit_their_agency(self):
        for client in self.clients.values():
            agency = self.agencies.get(client.agency_id)
            if agency is None:
                raise ValueError(f"client {client.client_id} names unknown agency {client.agency_id}")
            if not_allowed := set(client.roles) - KIND_ROLES[agency.kind]:
                raise ValueError(
                    f"client {client.client_id}: a {agency.kind.value} agency cannot hold "
                    f"{', '.join(sorted(not_allowed))}"
                )
        return self

    def add_agency(self, agency: Agency) -> None:
        if agency.agency_id in self.agencies:
            raise ValueError(f"agency {agency.agency_id} already exists")
        self.agencies[agency.agency_id] = agency

    def add_client(self, client_id: str, agency_id: str, roles: list[Role]) -> str:
        """Create a client; returns its secret (shown once, stored only hashed)."""
        if client_id in self.clients:
            raise ValueError(f"client {client_id} already exists")
        secret = secrets.token_urlsafe(32)
        client = Client(client_id=client_id, agency_id=agency_id, roles=roles, secret_hash=hash_secret(secret))
        Registry(agencies=self.agencies, clients={**self.clients, client_id: client})  # raises if the roles don't fit
        self.clients[client_id] = client
        return secret

    def authenticate(self, client_id: str, secret: str) -> tuple[Client, Agency] | None:
        client = self.clients.get(client_id)
        if client is None or client.disabled or not verify_secret(secret, client.secret_hash):
            return None
        return client, self.agencies[client.agency_id]


# scrypt parameters per RFC 7914's interactive-login recommendation.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    found = re.fullmatch(r"scrypt\$([0-9a-f]{32})\$([0-9a-f]{64})", stored)
    if not found:
        return False
    digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(found.group(1)), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), found.group(2))


def load(path: Path) -> Registry:
    if not path.exists():
        return Registry()
    return Registry.model_validate_json(path.read_bytes())


def save(registry: Registry, path: Path) -> None:
    """Write atomically (a reader never sees half a file), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(registry.model_dump(mode="json"), indent=2, sort_keys=True))
    temporary.chmod(0o600)
    temporary.replace(path)


class RegistryFile:
    """The registry as the services see it: re-read when the file changes, so revoking a client
    takes effect on its next request without a restart."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._registry = Registry()

    def current(self) -> Registry:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._registry = load(self.path) if stamp else Registry()
                self._stamp = stamp
            return self._registry
