"""`captives kafka`: the broker's principals (SASL/SCRAM-SHA-512): their secrets, and the users and
ACLs provisioned from them (shared/broker/acls.py)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from shared.broker.access import KafkaCredentialsMissing

kafka = typer.Typer(help="The broker's principals (SASL/SCRAM-SHA-512) and their ACLs.", no_args_is_help=True)
console = Console()


@kafka.command("credentials")
def generate_kafka_credentials(
    directory: Path = typer.Argument(Path("var/kafka/credentials"), help="where to write one file per principal"),
    for_containers: bool = typer.Option(
        False,
        help="let the containers' users read the files (0644): docker compose mounts each as a secret with "
        "the host's owner and mode; the directory stays 0700, so on the host only its owner reads them",
    ),
) -> None:
    """Generate a password for each principal that has none yet (files 0600 in a 0700 directory;
    existing ones are kept). docker-compose reads them as secrets: `make compose-secrets` runs this."""
    from shared.broker.access import PRINCIPALS, ensure_credentials

    written = ensure_credentials(directory)
    if for_containers:
        for principal in PRINCIPALS:
            (written / principal).chmod(0o644)
    console.print(f"Kafka credentials of {', '.join(PRINCIPALS)} in {written}/<principal>")


@kafka.command("provision")
def kafka_provision(
    wait_s: float = typer.Option(120.0, help="how long to wait for the broker to answer"),
) -> None:
    """Create the SCRAM users of the services and the auditor (passwords from
    KAFKA_CREDENTIALS_DIR) and the ACLs of the deployment's topic prefix, as `admin`. Idempotent:
    docker-compose runs it before the services start; `captives up` does it itself."""
    from shared.broker import clients as kafka_clients
    from shared.broker.access import ADMIN
    from shared.broker.settings import KafkaSettings
    from tools.broker import provision

    kafka = KafkaSettings()
    try:
        admin = kafka.access(ADMIN)
        deadline = time.monotonic() + wait_s
        while not kafka_clients.check_credentials(admin):
            if time.monotonic() > deadline:
                console.print(f"[red]Kafka at {kafka.bootstrap_servers} did not answer within {wait_s:.0f} s[/]")
                raise typer.Exit(1)
            time.sleep(1)
        bindings = provision(admin, kafka.topic_prefix, kafka.credentials_dir)
    except (KafkaCredentialsMissing, kafka_clients.KafkaAuthenticationFailed) as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(2) from None
    console.print(
        f"provisioned {kafka.bootstrap_servers}: users intake, status, disposition, auditor; "
        f"{bindings} ACL bindings for topic prefix {kafka.topic_prefix!r}"
    )
