"""Who may call the services: the identity provider `captives up` starts, and getting a token.

captives token m.shevchenko              a demo person's access token (stdout), for curl
captives token --client hq-intake        an agency system's token (client credentials)
captives code m.shevchenko               a demo person's one-time code (his authenticator app's)
captives access                          the demo persons and clients, and how to get a token

People, clients, passwords and secrets live in Keycloak (deploy/keycloak/); the services verify
its tokens and hold no secret of their own. The demo realm's generated passwords and secrets are
in var/keycloak/credentials.json (mode 0600), written when `captives up` provisions the realm.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from shared.auth.tokens import NoToken

if TYPE_CHECKING:  # deploy/ is imported by the commands that use it: `captives serve` needs none of it
    from deploy.keycloak.credentials import Credentials
    from deploy.keycloak.server import KeycloakServer

console = Console()
CREDENTIALS = Path("var/keycloak/credentials.json")
KEYCLOAK_PORT = 8180  # fixed, so the issuer (its URL) is the same after a restart


def start_identity_provider(var: Path, port: int = KEYCLOAK_PORT) -> tuple[KeycloakServer, Credentials]:
    """Keycloak on 127.0.0.1:`port` with its data in var/keycloak, and the demo realm provisioned
    (idempotent: a restart keeps the realm and reuses the generated secrets)."""
    from deploy.keycloak.provision import KeycloakAdmin, provision
    from deploy.keycloak.server import KeycloakServer

    server = KeycloakServer(var / "keycloak", port=port)
    started = time.monotonic()
    with console.status(f"Starting Keycloak on 127.0.0.1:{port} (about 30-150 s)..."):
        server.start()
    with (
        console.status("Provisioning the demo realm (agencies, persons, roles)..."),
        KeycloakAdmin(server.url, server.admin_username, server.admin_password) as admin,
    ):
        credentials = provision(admin, credentials_file=var / "keycloak" / "credentials.json")
    console.print(f"Keycloak ready in {time.monotonic() - started:.0f} s: issuer {credentials.issuer}")
    return server, credentials


def print_access(credentials: Credentials, credentials_file: Path, example_url: str) -> None:
    """The demo persons with their passwords, and how a person gets a token and uses it."""
    table = Table(title="Demo persons (Keycloak users; one per step of `captives demo`)")
    for column in ("username", "name", "agency", "roles", "password", "second factor"):
        table.add_column(column)
    for username, person in credentials.persons.items():
        factor = "TOTP" if person.get("totp_secret") else "-"
        table.add_row(
            username, person["name"], person["agency"], ", ".join(person["roles"]), person["password"], factor
        )
    console.print(table)
    secret = f"$(jq -r .cli_client_secret {credentials_file})"
    console.print(
        f"Agency systems (client credentials): {', '.join(credentials.clients)}\n"
        f"Passwords and secrets: {credentials_file} (0600).\n"
        "A person's token, then a call with it:\n"
        "  TOKEN=$(.venv/bin/captives token m.shevchenko)\n"
        f'  curl -s -H "Authorization: Bearer $TOKEN" {example_url}/v1/data-tiers\n'
        "or straight from Keycloak (the command line's client secret; a TOTP person's code):\n"
        f"  curl -s {credentials.token_endpoint} -d grant_type=password -d client_id={credentials.cli_client_id} "
        f"-d client_secret={secret} -d username=m.shevchenko -d password=<password> "
        "-d totp=$(.venv/bin/captives code m.shevchenko)",
        highlight=False,
        soft_wrap=True,
    )


def _credentials(path: Path) -> Credentials:
    from deploy.keycloak.credentials import Credentials

    if not path.exists():
        console.print(f"[red]No {path}: start the stack first (make up), which provisions the realm[/]")
        raise typer.Exit(1)
    return Credentials.read(path)


def token(
    username: str = typer.Argument(None, help="a demo person (see `captives access`)"),
    client: str = typer.Option(None, help="an agency's system instead of a person"),
    credentials: Path = typer.Option(CREDENTIALS, help="the realm's generated credentials"),
) -> None:
    """Print an access token of a demo person (password grant, with his code if he has a second factor) or
    client (client credentials)."""
    found = _credentials(credentials)
    if (username is None) == (client is None):
        console.print("[red]name a person (captives token m.shevchenko) or a client (--client hq-intake)[/]")
        raise typer.Exit(2)
    try:
        source = found.client(client) if client else found.person(username)
        print(source.token())
    except (KeyError, NoToken) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None


def code(
    username: str = typer.Argument(..., help="a demo person with a second factor (see `captives access`)"),
    credentials: Path = typer.Option(CREDENTIALS, help="the realm's generated credentials"),
) -> None:
    """Print a demo person's one-time code, as his authenticator app would show it (each code
    signs in once; a second one in the same 30 s is the next step's)."""
    found = _credentials(credentials)
    if username not in found.persons:
        console.print(f"[red]no person {username} in {credentials} (known: {', '.join(found.persons)})[/]")
        raise typer.Exit(1)
    codes = found.codes(username)
    if codes is None:
        console.print(f"[red]{username} signs in with his password alone: his roles decide nothing[/]")
        raise typer.Exit(1)
    print(codes.next_code())


def access(
    credentials: Path = typer.Option(CREDENTIALS, help="the realm's generated credentials"),
    example_url: str = typer.Option("http://127.0.0.1:8001", help="a service to show in the example"),
) -> None:
    """The demo persons (with their passwords) and clients, and how to get a token."""
    print_access(_credentials(credentials), credentials, example_url)
