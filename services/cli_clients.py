"""`captives clients ...`: the registry of agencies and their API clients (shared/auth/registry.py).

captives clients add-agency icrc "International Committee of the Red Cross" --kind icrc
captives clients add icrc-delegate --agency icrc --role icrc_delegate     (prints the secret once)
captives clients list
captives clients revoke icrc-delegate
captives clients demo                                                      (the demo agencies)
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from shared.auth import registry as registries
from shared.auth.registry import Agency
from shared.auth.roles import AgencyKind, Role
from shared.settings import AuthSettings

clients = typer.Typer(help="Agencies and their API clients (OAuth2 client credentials).", no_args_is_help=True)
console = Console()

DEMO = Path(__file__).resolve().parents[1] / "deploy" / "auth" / "demo-agencies.toml"


def _path() -> Path:
    return Path(AuthSettings().registry_file)


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/]")
    raise typer.Exit(1)


@clients.command("add-agency")
def add_agency(
    agency_id: str,
    name: str,
    kind: AgencyKind = typer.Option(..., help="what the agency is; it bounds the roles its clients may hold"),
    state: str | None = typer.Option(None, help="ISO 3166 alpha-2 code of the state a partner-state agency speaks for"),
    requests_per_minute: int = typer.Option(1200, help="rate limit for all the agency's clients together"),
) -> None:
    """Register an agency."""
    registry = registries.load(_path())
    try:
        registry.add_agency(
            Agency(agency_id=agency_id, name=name, kind=kind, state=state, requests_per_minute=requests_per_minute)
        )
    except (ValueError, ValidationError) as error:
        _fail(str(error))
    registries.save(registry, _path())
    console.print(f"agency {agency_id} ({kind.value}) added to {_path()}")


@clients.command("add")
def add_client(
    client_id: str,
    agency: str = typer.Option(..., help="the agency the client acts for"),
    role: list[Role] = typer.Option(..., help="a role of the client (repeat for several)"),
) -> None:
    """Create an API client and print its secret (shown once; only its hash is kept)."""
    registry = registries.load(_path())
    if agency not in registry.agencies:
        _fail(f"no agency {agency}; add it first (captives clients add-agency)")
    try:
        secret = registry.add_client(client_id, agency, list(role))
    except (ValueError, ValidationError) as error:
        _fail(str(error))
    registries.save(registry, _path())
    console.print(f"client_id:     {client_id}\nclient_secret: {secret}\n(the secret is not shown again)")


@clients.command("list")
def list_clients() -> None:
    """The agencies and their clients (never the secrets)."""
    registry = registries.load(_path())
    table = Table(title=f"API clients ({_path()})")
    for column in ("client", "agency", "kind", "roles", "rate/min", "state"):
        table.add_column(column)
    for client in sorted(registry.clients.values(), key=lambda c: (c.agency_id, c.client_id)):
        agency = registry.agencies[client.agency_id]
        table.add_row(
            client.client_id,
            agency.agency_id,
            agency.kind.value,
            ", ".join(client.roles),
            str(agency.requests_per_minute),
            "revoked" if client.disabled else "active",
        )
    console.print(table)


@clients.command("revoke")
def revoke(client_id: str) -> None:
    """Disable a client: its tokens stop working at their next request."""
    registry = registries.load(_path())
    if client_id not in registry.clients:
        _fail(f"no client {client_id}")
    registry.clients[client_id].disabled = True
    registries.save(registry, _path())
    console.print(f"client {client_id} revoked")


def create_demo_clients(credentials_file: Path) -> dict[str, dict]:
    """The demo agencies and clients of deploy/auth/demo-agencies.toml, once: secrets are written
    to `credentials_file` (owner-only) and reused on later runs."""
    path = _path()
    known = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
    registry = registries.load(path)
    if known and all(client_id in registry.clients for client_id in known):
        return known
    for spec in tomllib.loads(DEMO.read_text())["agencies"]:
        spec = dict(spec)
        wanted = spec.pop("clients")
        if spec["agency_id"] not in registry.agencies:
            registry.add_agency(Agency(**spec))
        for client in wanted:
            if client["client_id"] not in registry.clients:
                secret = registry.add_client(client["client_id"], spec["agency_id"], [Role(r) for r in client["roles"]])
                known[client["client_id"]] = {"secret": secret, "agency": spec["agency_id"], "roles": client["roles"]}
    registries.save(registry, path)
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    credentials_file.write_text(json.dumps(known, indent=2))
    credentials_file.chmod(0o600)
    return known


def print_demo_clients(known: dict[str, dict], token_url: str) -> None:
    table = Table(title="Demo API clients (OAuth2 client credentials)")
    for column in ("client_id", "client_secret", "agency", "roles"):
        table.add_column(column)
    for client_id, entry in known.items():
        table.add_row(client_id, entry["secret"], entry["agency"], ", ".join(entry["roles"]))
    console.print(table)
    first = next(iter(known), "hq-intake")
    console.print(
        "Get a token (valid 15 minutes), then call any service with it:\n"
        f"  curl -s -u {first}:<client_secret> -d grant_type=client_credentials {token_url}\n"
        '  curl -s -H "Authorization: Bearer <access_token>" http://127.0.0.1:8001/v1/data-tiers',
        highlight=False,
    )


@clients.command("demo")
def demo(
    credentials: Path = typer.Option(Path("var/auth/demo-credentials.json"), help="where the demo secrets are kept"),
) -> None:
    """Create the demo agencies and clients (deploy/auth/demo-agencies.toml) and print their secrets."""
    print_demo_clients(create_demo_clients(credentials), "http://127.0.0.1:8001/oauth/token")
