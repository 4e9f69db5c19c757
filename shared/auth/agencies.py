"""The directory of agencies: which bodies may call the API, what kind each is (which bounds the
roles its people and systems may hold), the state a partner-state agency speaks for, and each
agency's request rate.

People, API clients, passwords and secrets live in the identity provider (Keycloak by default,
deploy/keycloak/); a token names its bearer's agency, and the services look the agency up here.
A token naming an agency this directory does not hold, or roles its kind cannot hold, is refused:
a misconfigured identity provider cannot make a partner state into a detaining state's officer.

The file is configuration (TOML, the demo's is deploy/auth/demo-agencies.toml), re-read when it
changes, so adding or removing an agency needs no restart.
"""

from __future__ import annotations

import threading
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_extra_types.country import CountryAlpha2

from shared.auth.roles import KIND_ROLES, AgencyKind, Role

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
DEMO_AGENCIES = Path(__file__).resolve().parents[2] / "deploy" / "auth" / "demo-agencies.toml"


class AgencyClient(BaseModel):
    """An agency's system, registered in the identity provider as a confidential client."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=NAME_PATTERN)
    roles: list[Role] = Field(min_length=1)


class Agency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_id: str = Field(pattern=NAME_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    kind: AgencyKind
    state: CountryAlpha2 | None = None  # the state a partner-state agency speaks for
    requests_per_minute: int = Field(default=1200, ge=1, le=1_000_000)
    # Provisioned into the identity provider by deploy/keycloak/provision.py; the services
    # themselves never read these (a token says which client it was issued to).
    clients: list[AgencyClient] = Field(default_factory=list)

    @model_validator(mode="after")
    def _partner_names_its_state(self):
        if self.kind is AgencyKind.PARTNER_STATE and self.state is None:
            raise ValueError("a partner-state agency must name its state (ISO 3166 alpha-2)")
        for client in self.clients:
            if not_allowed := set(client.roles) - KIND_ROLES[self.kind]:
                listed = ", ".join(sorted(not_allowed))
                raise ValueError(f"client {client.client_id}: a {self.kind.value} agency cannot hold {listed}")
        return self

    def roles_beyond_its_kind(self, roles: frozenset[Role]) -> frozenset[Role]:
        return roles - KIND_ROLES[self.kind]


class Directory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agencies: dict[str, Agency] = Field(default_factory=dict)


def load(path: Path) -> Directory:
    """The agencies of a TOML file (`[[agencies]]` tables); a missing file is an empty directory,
    so every token is refused (fail closed) rather than every agency admitted."""
    if not path.exists():
        return Directory()
    listed = tomllib.loads(path.read_text()).get("agencies", [])
    agencies = [Agency.model_validate(entry) for entry in listed]
    seen: set[str] = set()
    for agency in agencies:
        if agency.agency_id in seen:
            raise ValueError(f"{path}: agency {agency.agency_id} is listed twice")
        seen.add(agency.agency_id)
    return Directory(agencies={agency.agency_id: agency for agency in agencies})


class DirectoryFile:
    """The directory as the services see it: re-read when the file changes."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._directory = Directory()

    def current(self) -> Directory:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._directory = load(self.path) if stamp else Directory()
                self._stamp = stamp
            return self._directory
