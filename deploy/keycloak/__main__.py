"""`python -m deploy.keycloak`: start a Keycloak on 127.0.0.1, provision the demo realm, write the
credentials file (mode 0600) and show how to get a person's token; Ctrl-C stops it. (`captives up`
does this itself, on port 8180, before it starts the services.)

`python -m deploy.keycloak provision --url URL` provisions a running Keycloak instead (the admin
login from KEYCLOAK_ADMIN_USERNAME / KEYCLOAK_ADMIN_PASSWORD): what docker-compose.yml runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from pathlib import Path

from deploy.keycloak.provision import KeycloakAdmin, provision
from deploy.keycloak.server import KeycloakServer

ROOT = Path(__file__).resolve().parents[2]


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.keycloak", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", choices=["start", "provision"], default="start")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "keycloak")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--url", help="provision: the running Keycloak's URL")
    parser.add_argument("--credentials", type=Path, help="provision: where to write the generated credentials")
    arguments = parser.parse_args()
    if arguments.action == "provision":
        provision_running(arguments.url, arguments.credentials or arguments.data_dir / "credentials.json")
        return

    server = KeycloakServer(arguments.data_dir, **({"port": arguments.port} if arguments.port else {}))
    credentials_file = arguments.data_dir / "credentials.json"
    started = time.monotonic()
    print(f"starting Keycloak on {server.url} (data in {arguments.data_dir}) ...", flush=True)
    with server:
        print(f"Keycloak answered after {time.monotonic() - started:.0f} s; provisioning ...", flush=True)
        started = time.monotonic()
        # The bootstrap admin is new on every start; the realm and its secrets persist in the data dir.
        with KeycloakAdmin(server.url, server.admin_username, server.admin_password) as admin:
            credentials = provision(admin, credentials_file=credentials_file)
        print(f"realm provisioned in {time.monotonic() - started:.0f} s; credentials in {credentials_file} (0600)")
        print(f"issuer {credentials.issuer}")
        print(f"persons: {', '.join(credentials.persons)}")
        print(f"clients: {', '.join(credentials.clients)}")
        print("a person's token:")
        print(
            f"  curl -s {credentials.token_endpoint} -d grant_type=password -d client_id={credentials.cli_client_id}"
            f" -d client_secret=$(jq -r .cli_client_secret {credentials_file})"
            f" -d username=m.shevchenko -d password=$(jq -r '.persons[\"m.shevchenko\"].password' {credentials_file})"
            " -d totp=$(captives code m.shevchenko)"
        )
        print("Ctrl-C stops Keycloak.", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()


def provision_running(url: str | None, credentials_file: Path) -> None:
    if not url:
        raise SystemExit("provision needs --url of the running Keycloak")
    username = os.environ.get("KEYCLOAK_ADMIN_USERNAME", "captives-admin")
    password = os.environ.get("KEYCLOAK_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("provision needs KEYCLOAK_ADMIN_PASSWORD (the bootstrap admin's)")
    with KeycloakAdmin(url, username, password) as admin:
        credentials = provision(admin, credentials_file=credentials_file)
    print(f"realm provisioned: issuer {credentials.issuer}; credentials in {credentials_file} (0600)")


if __name__ == "__main__":
    main()
