"""What the tests, the demo and `make up` need to get tokens from the provisioned realm: written by
deploy/keycloak/provision.py to a credentials file (0600, git-ignored) and read back from it.

The command line's client secret and every person's password and second-factor secret are in it:
it is as sensitive as the realm itself. The ledger of one-time codes spent (shared/auth/
one_time_codes.py) lives beside it, so every process that reads one file shares one ledger.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.auth.one_time_codes import OneTimeCodes
from shared.auth.tokens import TokenSource
from shared.platform.private_files import private_directory


@dataclass
class Credentials:
    issuer: str
    token_endpoint: str
    jwks_uri: str
    cli_client_id: str
    audiences: tuple[str, ...]
    clients: dict[str, dict]  # client_id -> {secret, agency, roles}
    persons: dict[str, dict]  # username -> {password, agency, roles, name, totp_secret (if any)}
    cli_client_secret: str = field(default="", repr=False)
    source: Path | None = field(default=None, compare=False, repr=False)  # the file it was read from

    def write(self, path: Path) -> None:
        private_directory(path.parent)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        kept = {name: value for name, value in self.__dict__.items() if name != "source"}
        with os.fdopen(descriptor, "w") as file:
            json.dump(kept | {"audiences": list(self.audiences)}, file, indent=2)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        self.source = path

    @classmethod
    def read(cls, path: Path) -> Credentials:
        data = json.loads(path.read_text())
        return cls(**data | {"audiences": tuple(data["audiences"]), "source": path})

    @property
    def ledger(self) -> Path | None:
        return None if self.source is None else self.source.with_name(self.source.name + ".codes-spent")

    def client(self, client_id: str) -> TokenSource:
        """Tokens of an agency's system (the client-credentials grant)."""
        if client_id not in self.clients:
            raise KeyError(f"no client {client_id} in the credentials (known: {', '.join(self.clients)})")
        return TokenSource(self.token_endpoint, client_id, client_secret=self.clients[client_id]["secret"])

    def person(self, username: str, client_id: str | None = None, client_secret: str | None = None) -> TokenSource:
        """Tokens of a person, with his password and his one-time code, through the command
        line's client (or another person-facing client the caller names)."""
        if username not in self.persons:
            raise KeyError(f"no person {username} in the credentials (known: {', '.join(self.persons)})")
        person = self.persons[username]
        return TokenSource(
            self.token_endpoint,
            client_id or self.cli_client_id,
            client_secret=client_secret if client_id else self.cli_client_secret,
            username=username,
            password=person["password"],
            one_time_codes=self.codes(username),
        )

    def codes(self, username: str) -> OneTimeCodes | None:
        """The person's one-time codes, or None when he signs in with his password alone."""
        secret = self.persons[username].get("totp_secret")
        return OneTimeCodes(username, secret, self.ledger) if secret else None
