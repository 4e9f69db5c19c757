"""`captives`: the operators' command line.

captives up               Kafka + the three services on SQLite, until Ctrl-C (what `make up` runs)
captives serve intake     one service in the foreground (what the container image runs)
captives token <person>   a demo person's access token (Keycloak, started by `captives up`)
captives code <person>    a demo person's one-time code (his second factor)
captives access           the demo persons, their passwords and how to get a token
captives kafka ...        the broker's principals: generate their secrets, provision users and ACLs
captives outbox ...       rows a service's relay parked (the broker refused them for good): list, retry
captives dlq ...          a consumer's dead letters and what they hold back: list, redrive, discard
captives keys ...         signing keys and pins, rotation, docker compose's secrets (tools/keys.py)
captives audit ...        reproduce, verify, timeline (tools/audit.py); `captives checkpoint` signs one
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.broker.access import AUDITOR, KafkaCredentialsMissing
from shared.platform.logs import configure_logging
from shared.platform.private_files import private_directory
from tools import access
from tools.audit import audit, checkpoint
from tools.contracts import contracts
from tools.dlq import dlq
from tools.kafka import kafka
from tools.keys import keys
from tools.outbox import outbox_commands
from tools.services import Service, service_module, service_settings

app = typer.Typer(help="Captives: records, legal status and disposition of captured soldiers.", no_args_is_help=True)
console = Console()
app.command()(access.token)
app.command()(access.code)
app.command()(access.access)
app.add_typer(contracts, name="contracts")
app.add_typer(dlq, name="dlq")
app.add_typer(kafka, name="kafka")
app.add_typer(keys, name="keys")
app.add_typer(outbox_commands, name="outbox")
app.add_typer(audit, name="audit")
app.command()(checkpoint)


@app.command()
def serve(service: Service) -> None:
    """Run one service in the foreground (HTTP API, outbox relay and consumers)."""
    from shared.broker import clients as kafka_clients

    settings = service_settings(service)
    configure_logging(service.value, level=settings.log_level, json=settings.log_json)
    # `kill -USR1 <pid>` writes every thread's stack to stderr: how an operator (or the chaos
    # suite) sees where a relay or a consumer is stuck without stopping the process.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # A missing or refused secret will not fix itself: say so and stop, rather than retry forever.
    # An unreachable broker is different: the service starts, and its relay retries.
    try:
        kafka_clients.check_credentials(settings.kafka.access(service.value))
    except (KafkaCredentialsMissing, kafka_clients.KafkaAuthenticationFailed) as error:
        console.print(f"[red]{service.value} cannot start[/]: {escape(str(error))}")
        raise typer.Exit(2) from None
    uvicorn.run(
        service_module(service).build(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=True,
    )


@app.command()
def up(
    var: Path = typer.Option(Path("var"), help="where the SQLite files, Kafka's data and the logs live"),
    kafka_port: int = typer.Option(9092, envvar="CAPTIVES_KAFKA_PORT"),
    controller_port: int = typer.Option(9093, envvar="CAPTIVES_KAFKA_CONTROLLER_PORT"),
    keycloak_port: int = typer.Option(access.KEYCLOAK_PORT, envvar="CAPTIVES_KEYCLOAK_PORT"),
) -> None:
    """Start Keycloak, Kafka and the three services on SQLite; Ctrl-C stops everything."""
    # The launchers are imported here, not at the top: `captives serve`, which the image runs,
    # needs nothing of deploy/.
    from deploy.kafka.node import KafkaNode, fetch
    from deploy.private import NotPrivate, make_private
    from deploy.processes import launch, wait_ready
    from tools.broker import provision

    var = var.resolve()
    try:
        make_private(var)  # umask 077 for us and every child; a var/ others can read is refused
    except NotPrivate as error:
        console.print(f"[bold red]Refusing to start[/]: {escape(str(error))}")
        raise typer.Exit(2) from None
    logs = var / "log"
    private_directory(logs)
    # Each Kafka principal's generated password (shared/broker/access.py).
    kafka_credentials = Path(os.environ.get("KAFKA_CREDENTIALS_DIR") or var / "kafka" / "credentials").resolve()
    broker: KafkaNode | None = None
    identity = None  # the Keycloak this command started, if any
    children: dict[Service, subprocess.Popen] = {}
    stopping = False

    def stop(*_signal) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        console.print("\n[bold]Stopping[/] the services, then Kafka...")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for service, child in children.items():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                console.print(f"{service} did not stop in 20 s: killing it")
                child.kill()
        if broker is not None:
            broker.stop()
        if identity is not None:
            identity.stop()
        console.print("Stopped. Nothing is left running.")

    # Ctrl-C and SIGTERM both end in the orderly stop below (SIGINT is set explicitly because a
    # shell that starts us in the background leaves it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap:
            console.print(f"Using the Kafka broker at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
        else:
            with console.status("Fetching Apache Kafka from Maven Central (cached after the first run)..."):
                fetch()
            with console.status(f"Starting Kafka on 127.0.0.1:{kafka_port}..."):
                broker = KafkaNode(
                    var / "kafka", port=kafka_port, controller_port=controller_port, credentials_dir=kafka_credentials
                ).start()
            with console.status("Provisioning the services' principals and ACLs..."):
                provision(broker.access(), os.environ.get("KAFKA_TOPIC_PREFIX", ""), kafka_credentials)
            bootstrap = broker.bootstrap_servers
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_CREDENTIALS_DIR": str(kafka_credentials)}
        # The services verify the tokens of one issuer and hold no signing key: Keycloak here,
        # or the issuer AUTH_OIDC_ISSUER names (then nothing is provisioned).
        credentials = None
        if not env.get("AUTH_OIDC_ISSUER"):
            identity, credentials = access.start_identity_provider(var, keycloak_port)
            env["AUTH_OIDC_ISSUER"] = credentials.issuer
        urls = {}
        for service in Service:
            settings = service_settings(service)
            env.setdefault(f"{service.value.upper()}_DATABASE_URL", f"sqlite:///{var / service.value}.db")
            # The key-encryption key that wraps its captive keys: beside the databases, never in them.
            if not env.get(f"{service.value.upper()}_KEK"):
                env.setdefault(f"{service.value.upper()}_KEK_FILE", str(var / "keys" / f"{service.value}.kek"))
            urls[service] = f"http://{settings.host}:{settings.port}"
            command = [sys.executable, "-m", "tools.cli", "serve", service.value]
            children[service] = launch(command, logs / f"{service.value}.log", env=env)
        with console.status("Waiting for the services to be ready..."):
            for service, url in urls.items():
                wait_ready(
                    children[service],
                    lambda url=url: _ready(url),
                    what=service.value,
                    waiting_for="answer /readyz",
                    log_path=logs / f"{service.value}.log",
                    timeout_s=60,
                    error=typer.BadParameter,
                    interval_s=0.3,
                )
        table = Table(title="Captives stack is up", show_lines=False)
        table.add_column("service")
        table.add_column("API")
        table.add_column("docs")
        for service, url in urls.items():
            table.add_row(service.value, url, f"{url}/docs")
        table.add_row("kafka", f"{bootstrap} (SASL_PLAINTEXT, SCRAM-SHA-512)", "")
        console.print(table)
        if credentials is not None:
            access.print_access(credentials, var / "keycloak" / "credentials.json", urls[Service.intake])
        console.print(
            f"Kafka principals' secrets: {kafka_credentials}/<principal> (admin, intake, status, disposition, auditor)"
        )
        console.print(f"Logs: {logs}/<service>.log   Data: {var}   [bold]Ctrl-C[/] stops everything.")
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        dead = [service.value for service, child in children.items() if child.poll() is not None]
        console.print(f"[red]{', '.join(dead)} exited[/]; see {logs}")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop()


@app.command()
def demo(
    credentials: Path = typer.Option(Path("var/keycloak/credentials.json"), help="the demo realm's passwords"),
    intake_url: str = typer.Option(None, help="default: from intake's settings (INTAKE_PORT)"),
    status_url: str = typer.Option(None, help="default: from status's settings (STATUS_PORT)"),
    disposition_url: str = typer.Option(None, help="default: from disposition's settings (DISPOSITION_PORT)"),
) -> None:
    """Load the demo scenario (fictional captives on the real 2025 timeline) into the running
    stack, each step by the person who takes it, and show what changed at each step. Safe to repeat."""
    from tools.demo.client import DemoFailed
    from tools.demo.run import load_credentials, run_demo, service_urls

    urls = service_urls(intake=intake_url, status=status_url, disposition=disposition_url)
    try:
        run_demo(urls, load_credentials(credentials), console=console)
    except DemoFailed as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(1) from None


@app.command()
def reconcile(
    service: Service,
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what the topic is missing"),
) -> None:
    """Compare the service's events table with its topic and queue again, in the table's order,
    every event the topic lacks, for the service's relay to publish (shared/eventstore/reconcile.py).
    Idempotent: what is on the topic or still queued is left alone. Exits 1 if anything is
    missing and not queued (a dry run that finds a gap)."""
    from shared.eventstore import reconcile as reconciling
    from shared.platform.db import create_engine, session_factory

    settings = service_settings(service)
    definition = service_module(service).definition
    topic = settings.kafka.topic(definition.topic)
    engine = create_engine(settings.database_url)
    try:
        with console.status(f"reading {service.value}'s events table and {topic} to its end"):
            done = reconciling.reconcile(
                session_factory(engine),
                definition.store_tables,
                settings.kafka.access(service.value),
                topic,
                dry_run=dry_run,
            )
    finally:
        engine.dispose()
    table = Table(title=f"{service.value}: events table against {topic}")
    table.add_column("")
    table.add_column("events", justify="right")
    for label, count in (
        ("in the events table", done.stored),
        ("on the topic", done.on_topic),
        ("not on the topic, still in the outbox", done.already_queued),
        ("missing from the topic", len(done.missing)),
        ("queued again now", done.queued),
        ("on the topic but not in the table", done.unknown_on_topic),
    ):
        table.add_row(label, f"{count:,}")
    console.print(table)
    if done.missing:
        shown = ", ".join(done.missing[:5]) + (" ..." if len(done.missing) > 5 else "")
        console.print(f"missing: {shown}")
    if done.missing and not done.queued:
        console.print("[red]the topic is missing events[/]: run without --dry-run to queue them for the relay")
        raise typer.Exit(1)
    if done.queued:
        console.print(f"{done.queued:,} events queued; {service.value}'s relay publishes them (a running service: now)")
    if done.out_of_position:
        console.print(
            f"replay will see {done.out_of_position:,} of them after later events of their own streams "
            f"({done.streams_out_of_position:,} streams): `captives replay` and `captives audit verify` take each "
            "stream in version order, so they rebuild and verify as before; the running consumers, which applied "
            "them before they were lost, find them already applied"
        )
    if done.unknown_on_topic:
        console.print(
            f"[yellow]{done.unknown_on_topic:,} records on {topic} are not in {service.value}'s events table[/]: "
            "records the service never stored (the consumers' hash-chain check dead-letters forged ones)"
        )


@app.command()
def replay(
    service: Service,
    verify: bool = typer.Option(False, help="compare the rebuilt read models with the live ones, row by row"),
    into: str = typer.Option(None, help="database URL to rebuild into (default: a new SQLite file)"),
    held_from: str = typer.Option(
        None,
        help="the database whose consumer's dead letters, parked and discarded records replay skips as live did "
        "(default: the service's DATABASE_URL)",
    ),
) -> None:
    """Rebuild a service's read models from offset 0 of the topics it consumes and its own, skipping
    the records its live consumer holds back or discarded (captives dlq)."""
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shared.broker import clients as kafka_clients
    from shared.eventstore import replay as replaying
    from shared.evidence.signing import NoPins
    from shared.platform.db import create_engine
    from shared.runtime.runtime import pinned_keys

    settings = service_settings(service)
    definition = service_module(service).definition
    kafka = settings.kafka
    topics = [kafka.topic(definition.topic), *(kafka.topic(name) for name in definition.consumes)]
    pins = pinned_keys(settings, service.value, (definition.topic, *definition.consumes))
    target = into or f"sqlite:///{tempfile.mkdtemp(prefix=f'replay-{service.value}-')}/rebuilt.db"
    held = replaying.held_by(held_from or settings.database_url, definition.store_tables)
    records = kafka_clients.read_log(kafka.access(AUDITOR), topics)
    with Progress(
        TextColumn("replaying {task.fields[service]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:,.0f} events/s"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("replay", total=None, service=service.value, rate=0.0)
        started = time.perf_counter()

        def advanced(events: int) -> None:
            progress.update(task, completed=events, rate=events / max(time.perf_counter() - started, 1e-9))

        try:
            result = replaying.rebuild(
                target,
                definition.migrations,
                definition.metadata,
                definition.projector,
                records,
                on_progress=advanced,
                held=held,
                pins=pins,
            )
        except NoPins as error:
            console.print(f"[red]{escape(str(error))}[/]: replay checks every record's signature; nothing replayed")
            raise typer.Exit(2) from None
    console.print(
        f"{service.value}: {result.events:,} events from {', '.join(topics)} in {result.seconds:.2f} s "
        f"({result.rate:,.0f} events/s): {result.applied:,} applied, {result.duplicates:,} duplicates, "
        f"{result.undecodable:,} undecodable, {result.forged:,} not signed by their publisher's key (not applied), "
        f"{result.chain_breaks:,} breaking their hash chain (not applied), "
        f"{result.held:,} held back or discarded by the live consumer (captives dlq; not applied); "
        f"rebuilt into {target}"
    )
    if not verify:
        return
    live, rebuilt = create_engine(settings.database_url), create_engine(target)
    digests, found = replaying.differences(live, rebuilt, list(definition.all_projection_tables()))
    for line in found[:200]:
        console.print(line, markup=False, highlight=False)
    if found:
        console.print(f"[red]MISMATCH[/]: {len(found)} rows differ between the live and the rebuilt read models")
        raise typer.Exit(1)
    rows = {
        name: len(replaying.table_rows(live, table))
        for name, table in ((table.name, table) for table in definition.all_projection_tables())
    }
    console.print(
        f"[green]match[/]: {sum(rows.values()):,} rows in {len(rows)} tables are the same "
        f"({', '.join(f'{name} {count}' for name, count in rows.items())})"
    )


@app.command()
def erase(
    captive_id: str = typer.Argument(help="the captive's case reference, e.g. CAP-P147-MZWW-QRJC"),
    reason: str = typer.Option(None, help="why; recorded in clear in IdentityErased, so name no one"),
    actor: str = typer.Option(None, envvar="CAPTIVES_ACTOR", help="who erases (default: the login name)"),
    agency: str = typer.Option("operator", envvar="CAPTIVES_AGENCY", help="for which agency"),
) -> None:
    """Crypto-shred a captive's identity: destroy his key in intake's database, so the identity
    data sealed with it (in intake's events, on the topic, in backups) can never be read again,
    and record IdentityErased. His case, status and decisions remain."""
    import getpass

    from services.intake import keys
    from shared.commands.pipeline import Pipeline
    from shared.platform.db import create_engine, session_factory
    from shared.runtime.runtime import keyring_of

    settings = service_settings(Service.intake)
    definition = service_module(Service.intake).definition
    engine = create_engine(settings.database_url)
    keyring = keyring_of(definition, settings)
    store = definition.event_store(settings.kafka.topic(definition.topic), keyring)
    # The key is destroyed by the privacy wing's policy as IdentityErased is appended; this
    # command scrubs the keys table itself afterwards, and says how.
    pipeline = Pipeline(store, keyring.key_destruction(engine=None))
    try:
        try:
            done = keys.erase(
                session_factory(engine),
                pipeline,
                captive_id,
                reason=reason,
                actor=actor or getpass.getuser(),
                agency=agency,
            )
        except keys.UnknownCaptive as error:
            console.print(f"[red]{escape(str(error))}[/]: nothing erased")
            raise typer.Exit(1) from None
        event = done.event
        if done.already:
            console.print(
                f"{captive_id} was already erased on {event.recorded_at.isoformat(timespec='seconds')} by "
                f"{escape(event.actor)} (event {event.id}): nothing to do"
            )
        else:
            scrubbed = keys.scrub_deleted_keys(keyring, engine)
            console.print(
                f"erased {captive_id}: key destroyed ({scrubbed}); IdentityErased appended as event {event.id} "
                f"(stream version {event.stream_version}); intake's relay publishes it from the outbox, and "
                "status and disposition destroy their own keys for him when they consume it"
            )
        if done.clear_events:
            console.print(
                f"[yellow]warning[/]: {done.clear_events} of his events were recorded before sealing began "
                "(intake_0003) and keep their identity data in clear"
            )
    finally:
        engine.dispose()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    app()
