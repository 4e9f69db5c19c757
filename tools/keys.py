"""`captives keys`: the services' key-encryption keys (shared/privacy/keyring.py), their record-signing
keys and pins (shared/evidence/signing.py), and docker compose's database logins.

captives keys compose-env var/keys          each service's KEK env file, signing key and pins
captives keys compose-database var/postgres  PostgreSQL's logins for docker compose
captives keys rotate intake                  a new signing key, pinned beside the old
captives keys pins                           the keys pinned for each service
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from tools.services import Service, service_settings

keys = typer.Typer(
    help="The services' key-encryption keys (shared/privacy/keyring.py) and signing keys (shared/evidence/signing.py).",
    no_args_is_help=True,
)
console = Console()


@keys.command("compose-env")
def compose_kek_env(
    directory: Path = typer.Argument(Path("var/keys"), help="where to write <service>.env, <service>.pem, pinned/"),
) -> None:
    """Generate each service's key-encryption key for docker-compose.yml, as an env file the
    service alone reads (`env_file: var/keys/<service>.env`, mode 0600 on the host), and its
    signing key, wrapped with that KEK (<service>.pem) and pinned (pinned/<service>.pub), which
    compose mounts as secrets: the service's own key for it alone, the pins for all. Existing
    files are kept: a new KEK would make every captive key wrapped with the old one unreadable,
    so keep these files (and a copy of them, apart from the database backups)."""
    from dotenv import dotenv_values

    from shared.evidence import signing
    from shared.privacy.kek import ensure_kek_env_file, load_kek

    for service in Service:
        path = directory / f"{service.value}.env"
        made = ensure_kek_env_file(path, service.value)
        kek = load_kek(secret=dotenv_values(path)[f"{service.value.upper()}_KEK"], path=path)
        key_path = directory / f"{service.value}.pem"
        key = signing.load_or_create_key(key_path, kek)
        signing.ensure_pinned(directory / "pinned", service.value, key)
        # The containers' users read them as the host's files: the key is useless without the
        # KEK, which only the service's environment holds; the pins are public keys.
        for readable in (key_path, signing.pin_path(directory / "pinned", service.value)):
            readable.chmod(0o644)
        console.print(
            f"{service.value}: {'created' if made else 'kept'} {path}; signing key {signing.key_id(key.public_key())}"
        )


@keys.command("compose-database")
def compose_database(
    directory: Path = typer.Argument(Path("var/postgres"), help="where the passwords and env files go"),
) -> None:
    """Generate docker compose's PostgreSQL logins: the superuser's password, the services'
    (`captives`) and Keycloak's (`keycloak`), as secrets the postgres container's init-roles.sh
    reads (0644 for the containers' users, in a 0700 folder); and, for compose's env_file, the
    services' database URLs (services.env) and Keycloak's KC_DB_PASSWORD (keycloak.env), 0600.
    Existing files are kept: the database was initialised with them."""
    import secrets as random

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    passwords = {}
    for login in ("admin", "captives", "keycloak"):
        path = directory / login
        if not path.exists():
            _write_private(path, random.token_urlsafe(32))
            path.chmod(0o644)
        passwords[login] = path.read_text().strip()
    urls = "".join(
        f"{service.value.upper()}_DATABASE_URL=postgresql+psycopg://captives:{passwords['captives']}"
        f"@postgres:5432/{service.value}\n"
        for service in Service
    )
    for name, text in (("services.env", urls), ("keycloak.env", f"KC_DB_PASSWORD={passwords['keycloak']}\n")):
        if not (directory / name).exists():
            _write_private(directory / name, text)
    console.print(f"PostgreSQL logins admin, captives, keycloak in {directory}/, with services.env and keycloak.env")


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


@keys.command("rotate")
def rotate_signing_key(service: Service) -> None:
    """Give a service a new signing key. The new key is pinned first, then replaces the old one,
    which stays pinned: every record and checkpoint it signed still verifies. Restart the service
    to sign with the new key (until then it signs with the old one, which still holds)."""
    from shared.evidence import signing
    from shared.runtime.runtime import kek_of, pins_dir, signing_key_path

    settings = service_settings(service)
    path, pins = signing_key_path(settings, service.value), pins_dir(settings, service.value)
    old, new = signing.rotate(path, kek_of(settings, service.value), pins, service.value)
    console.print(
        f"{service.value}: new signing key {new} in {path}, pinned in {signing.pin_path(pins, service.value)}; "
        f"the old key {old} stays pinned (what it signed still verifies). Restart {service.value} to sign with it."
    )


@keys.command("pins")
def list_pins() -> None:
    """The keys pinned for each service: what readers accept its records signed with, oldest first."""
    from shared.evidence import signing
    from shared.runtime.runtime import pins_dir

    for service in Service:
        pins = pins_dir(service_settings(service), service.value)
        pinned = signing.read_pins(pins, service.value)
        listed = ", ".join(pinned) if pinned else "none (its records cannot be verified until it starts once)"
        console.print(f"{service.value}: {listed}  ({signing.pin_path(pins, service.value)})")
