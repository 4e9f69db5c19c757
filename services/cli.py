"""`captives`: the operators' command line.

captives up               Kafka + the three services on SQLite, until Ctrl-C (what `make up` runs)
captives serve intake     one service in the foreground (what the container image runs)
captives token <person>   a demo person's access token (Keycloak, started by `captives up`)
captives access           the demo persons, their passwords and how to get a token
captives kafka ...        the broker's principals: generate their secrets, provision users and ACLs
captives outbox ...       rows a service's relay parked (the broker refused them for good): list, retry
captives dlq ...          a consumer's dead letters and what they hold back: list, redrive, discard
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.kafka.node import KafkaNode, fetch
from deploy.private import NotPrivate, make_private
from deploy.processes import die_with_parent, tail
from services import cli_access
from services.cli_contracts import contracts
from services.cli_dlq import dlq
from services.cli_outbox import outbox_commands
from shared.kafka_access import AUDITOR, KafkaCredentialsMissing
from shared.logs import configure_logging

app = typer.Typer(help="Captives: records, legal status and disposition of captured soldiers.", no_args_is_help=True)
console = Console()
app.command()(cli_access.token)
app.command()(cli_access.access)
app.add_typer(contracts, name="contracts")
app.add_typer(dlq, name="dlq")
kafka_commands = typer.Typer(help="The broker's principals (SASL/SCRAM-SHA-512) and their ACLs.", no_args_is_help=True)
app.add_typer(kafka_commands, name="kafka")
keys_commands = typer.Typer(
    help="The services' key-encryption keys (shared/sealing.py) and signing keys (shared/signing.py).",
    no_args_is_help=True,
)
app.add_typer(keys_commands, name="keys")
app.add_typer(outbox_commands, name="outbox")


class Service(StrEnum):
    intake = "intake"
    status = "status"
    disposition = "disposition"


def service_module(service: Service):
    if service is Service.intake:
        from services.intake import app as module
    elif service is Service.status:
        from services.status import app as module
    else:
        from services.disposition import app as module
    return module


def service_settings(service: Service):
    module = service_module(service)
    return {
        "intake": module.__dict__.get("IntakeSettings"),
        "status": module.__dict__.get("StatusSettings"),
        "disposition": module.__dict__.get("DispositionSettings"),
    }[service.value]()


@app.command()
def serve(service: Service) -> None:
    """Run one service in the foreground (HTTP API, outbox relay and consumers)."""
    from shared import kafka as kafka_clients

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
    keycloak_port: int = typer.Option(cli_access.KEYCLOAK_PORT, envvar="CAPTIVES_KEYCLOAK_PORT"),
) -> None:
    """Start Keycloak, Kafka and the three services on SQLite; Ctrl-C stops everything."""
    from services.broker import provision

    var = var.resolve()
    try:
        make_private(var)  # umask 077 for us and every child; a var/ others can read is refused
    except NotPrivate as error:
        console.print(f"[bold red]Refusing to start[/]: {escape(str(error))}")
        raise typer.Exit(2) from None
    logs = var / "log"
    logs.mkdir(parents=True, exist_ok=True)
    # Each Kafka principal's generated password (shared/kafka_access.py).
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
            identity, credentials = cli_access.start_identity_provider(var, keycloak_port)
            env["AUTH_OIDC_ISSUER"] = credentials.issuer
        urls = {}
        for service in Service:
            settings = service_settings(service)
            env.setdefault(f"{service.value.upper()}_DATABASE_URL", f"sqlite:///{var / service.value}.db")
            # The key-encryption key that wraps its captive keys: beside the databases, never in them.
            if not env.get(f"{service.value.upper()}_KEK"):
                env.setdefault(f"{service.value.upper()}_KEK_FILE", str(var / "keys" / f"{service.value}.kek"))
            urls[service] = f"http://{settings.host}:{settings.port}"
            log_file = (logs / f"{service.value}.log").open("ab")
            children[service] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", service.value],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            log_file.close()
        with console.status("Waiting for the services to be ready..."):
            for service, url in urls.items():
                wait_ready(service, url, children[service], logs / f"{service.value}.log")
        table = Table(title="Captives stack is up", show_lines=False)
        table.add_column("service")
        table.add_column("API")
        table.add_column("docs")
        for service, url in urls.items():
            table.add_row(service.value, url, f"{url}/docs")
        table.add_row("kafka", f"{bootstrap} (SASL_PLAINTEXT, SCRAM-SHA-512)", "")
        console.print(table)
        if credentials is not None:
            cli_access.print_access(credentials, var / "keycloak" / "credentials.json", urls[Service.intake])
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
    from services import demo as scenario

    urls = scenario.service_urls(intake=intake_url, status=status_url, disposition=disposition_url)
    try:
        scenario.run_demo(urls, scenario.load_credentials(credentials), console=console)
    except scenario.DemoFailed as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(1) from None


@app.command()
def reconcile(
    service: Service,
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what the topic is missing"),
) -> None:
    """Compare the service's events table with its topic and queue again, in the table's order,
    every event the topic lacks, for the service's relay to publish (shared/reconcile.py).
    Idempotent: what is on the topic or still queued is left alone. Exits 1 if anything is
    missing and not queued (a dry run that finds a gap)."""
    from shared import reconcile as reconciling
    from shared.db import create_engine, session_factory

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

    from shared import replay as replaying
    from shared.db import create_engine
    from shared.service import pinned_keys
    from shared.signing import NoPins

    settings = service_settings(service)
    definition = service_module(service).definition
    kafka = settings.kafka
    topics = [kafka.topic(definition.topic), *(kafka.topic(name) for name in definition.consumes)]
    pins = pinned_keys(settings, service.value, (definition.topic, *definition.consumes))
    target = into or f"sqlite:///{tempfile.mkdtemp(prefix=f'replay-{service.value}-')}/rebuilt.db"
    held = replaying.held_by(held_from or settings.database_url, definition.store_tables)
    records = replaying.read_log(kafka.access(AUDITOR), topics)
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
                definition.all_replay_appliers(),
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


audit = typer.Typer(help="Questions auditors and courts ask of the record.")
app.add_typer(audit, name="audit")


@audit.command("reproduce")
def audit_reproduce() -> None:
    """Re-run every recorded status decision from its own trace under its own rulebook version,
    and list any that comes out differently."""
    from services.status.rulebook import reproduce
    from shared import replay as replaying
    from shared.contracts import InvalidEvent, decode
    from shared.contracts.status import StatusDetermined

    kafka = service_settings(Service.status).kafka
    checked, different = 0, []
    for record in replaying.read_log(kafka.access(AUDITOR), [kafka.topic("status.events.v1")]):
        try:
            event = decode(record.value)
        except InvalidEvent:
            continue
        if not isinstance(event.payload, StatusDetermined):
            continue
        checked += 1
        again = reproduce(event.payload)
        if (again.status, list(again.rules)) != (event.payload.status, event.payload.rules):
            different.append(
                f"{event.envelope.id} ({event.envelope.subject}): recorded {event.payload.status}, "
                f"reproduced {again.status} under {event.payload.rulebook_version}"
            )
    console.print(f"{checked:,} status decisions reproduced; {len(different)} came out differently")
    different += reproduce_dispositions()
    for line in different:
        console.print(line, markup=False)
    if different:
        raise typer.Exit(1)


def reproduce_dispositions() -> list[str]:
    """Disposition's decisions (eligibility answers, approvals, hand-overs, refusals, stops), each
    folded again from the events it names and decided again at the moment it stood for."""
    from services.disposition.reproduce import reproduce_all
    from shared import replay as replaying
    from shared.contracts import InvalidEvent, decode

    kafka = service_settings(Service.disposition).kafka
    topics = [kafka.topic(name) for name in ("intake.events.v1", "status.events.v1", "disposition.events.v1")]
    events = []
    for record in replaying.read_log(kafka.access(AUDITOR), topics):
        try:
            events.append(decode(record.value))
        except InvalidEvent:
            continue
    outcomes = reproduce_all(events)
    different = [
        f"{outcome.event_id} ({outcome.captive_id}): {outcome.kind} recorded "
        f"{[r.rule_id + ' ' + r.finding for r in outcome.recorded]}, reproduced "
        f"{[r.rule_id + ' ' + r.finding for r in outcome.reproduced]}"
        for outcome in outcomes
        if not outcome.same
    ]
    refusals = sum(outcome.kind == "DispositionStepRefused" for outcome in outcomes)
    console.print(
        f"{len(outcomes):,} disposition decisions reproduced ({refusals:,} refusals among them); "
        f"{len(different)} came out differently"
    )
    return different


@app.command()
def checkpoint(service: Service) -> None:
    """Sign and publish a checkpoint of the service's topic now (the services also do it periodically)."""
    from shared import checkpoints
    from shared.service import signer_of

    settings = service_settings(service)
    topic = settings.kafka.topic(service_module(service).definition.topic)
    signer = signer_of(settings, service.value)
    sizes = checkpoints.publish(settings.kafka.access(service.value), topic, signer.key)
    console.print(
        f"checkpoint of {topic}: {sum(sizes.values()):,} records in {len(sizes)} partitions, signed by "
        f"key {signer.key_id}"
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
    from shared.db import create_engine, session_factory
    from shared.eventstore import EventStore
    from shared.service import keyring_of

    settings = service_settings(Service.intake)
    definition = service_module(Service.intake).definition
    engine = create_engine(settings.database_url)
    keyring = keyring_of(definition, settings)
    store = EventStore(
        definition.store_tables,
        source=f"/services/{definition.name}",
        topic=settings.kafka.topic(definition.topic),
        sealer=keyring,
    )
    try:
        try:
            done = keys.erase(
                session_factory(engine),
                store,
                keyring,
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


@audit.command("verify")
def audit_verify() -> None:
    """Check every record's signature, every stream's hash chain and every signed checkpoint of
    the three topics; name each record its publisher's key did not sign, the first bad event of
    each broken chain and each checkpoint that no longer holds."""
    from shared import chain, checkpoints, signing
    from shared import replay as replaying
    from shared.service import pinned_keys

    problems = 0
    records_by_topic = {}
    for service in Service:
        settings = service_settings(service)
        definition = service_module(service).definition
        topic = settings.kafka.topic(definition.topic)
        records = list(replaying.read_log(settings.kafka.access(AUDITOR), [topic]))
        pins = pinned_keys(settings, service.value, [definition.topic])
        try:
            pinned = pins.keys_of(service.value)
        except signing.NoPins as error:
            console.print(f"BROKEN {error}", markup=False, highlight=False)
            problems += 1
            continue
        judged = [(record, pins.refusal(topic, record.value, record.headers)) for record in records]
        for record, refusal in judged:
            if refusal is not None:
                line = f"FORGED {topic} {record.partition}/{record.offset}: {refusal}"
                console.print(line, markup=False, highlight=False)
        records_by_topic[topic] = [record for record, refusal in judged if refusal is None]
        forged = len(records) - len(records_by_topic[topic])
        signed = replaying.read_log(settings.kafka.access(AUDITOR), [checkpoints.checkpoint_topic(topic)])
        checked, found = checkpoints.verify_checkpoints(topic, checkpoints.partition_leaves(records), signed, pinned)
        for problem in found:
            console.print(f"BROKEN {topic} {problem}", markup=False, highlight=False)
        console.print(
            f"{topic}: {len(records):,} records, {forged} not signed by {service.value}'s pinned keys "
            f"({len(pinned)} pinned); {checked} checkpoints checked, {len(found)} no longer hold"
        )
        problems += len(found) + forged
    # The chains are judged over what the publishers signed: a forgery takes no place in a chain.
    result = chain.verify(record for records in records_by_topic.values() for record in records)
    for problem in result.problems:
        console.print(f"BROKEN {problem}", markup=False, highlight=False)
    console.print(
        f"{result.events:,} events in {result.streams:,} streams checked; {result.unchained:,} recorded "
        f"before chaining; {len(result.problems)} broken chains"
        + (
            f"; {result.out_of_position:,} stood before an earlier version of their stream (republished by "
            "captives reconcile, or moved) and were judged in version order"
            if result.out_of_position
            else ""
        )
    )
    if problems or not result.ok:
        raise typer.Exit(1)


@audit.command("timeline")
def audit_timeline(
    captive_id: str,
    html_file: Path = typer.Option(None, "--html", help="also write a self-contained HTML report to this file"),
) -> None:
    """Everything recorded about one captive, across the three services, in recorded order."""
    from sqlalchemy import exc as sa_errors

    from services.audit import render_html, timeline, with_identity
    from shared import replay as replaying
    from shared.db import create_engine, session_factory

    intake_settings = service_settings(Service.intake)
    kafka = intake_settings.kafka
    topics = [kafka.topic(name) for name in ("intake.events.v1", "status.events.v1", "disposition.events.v1")]
    entries = timeline(replaying.read_log(kafka.access(AUDITOR), topics), captive_id)
    from shared.sealing import KekError
    from shared.service import keyring_of

    for service in Service:  # each service opens what it sealed, with its own keys
        settings = service_settings(service)
        keyring = keyring_of(service_module(service).definition, settings)
        engine = create_engine(settings.database_url)
        try:
            with session_factory(engine)() as session:
                entries = with_identity(entries, session, keyring)
        except (sa_errors.SQLAlchemyError, KekError) as error:  # an auditor without the keys sees it sealed
            console.print(
                f"{service.value}'s data stays sealed: its database or key-encryption key is not reachable "
                f"({type(error).__name__})"
            )
        finally:
            engine.dispose()
    if not entries:
        console.print(f"no events about {captive_id}")
        raise typer.Exit(1)
    table = Table(title=f"Audit timeline of {captive_id}: {len(entries)} events")
    for column in ("recorded", "happened", "service", "event", "who / agency"):
        table.add_column(column)
    for entry in entries:
        envelope = entry.event.envelope
        detail = "\n".join([f"[bold]{envelope.type}[/] {escape(entry.summary())}", *map(escape, entry.reasons())])
        table.add_row(
            envelope.recorded_at.isoformat(timespec="seconds"),
            envelope.occurred_at.date().isoformat(),
            entry.service,
            detail,
            f"{envelope.actor}\n{envelope.agency}",
        )
    console.print(table)
    if html_file:
        html_file.write_text(render_html(captive_id, entries), encoding="utf-8")
        console.print(f"HTML report: {html_file}")


@kafka_commands.command("credentials")
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
    from shared.kafka_access import PRINCIPALS, ensure_credentials

    written = ensure_credentials(directory)
    if for_containers:
        for principal in PRINCIPALS:
            (written / principal).chmod(0o644)
    console.print(f"Kafka credentials of {', '.join(PRINCIPALS)} in {written}/<principal>")


@keys_commands.command("compose-env")
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

    from shared import signing
    from shared.sealing import ensure_kek_env_file, load_kek

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


@keys_commands.command("compose-database")
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


@keys_commands.command("rotate")
def rotate_signing_key(service: Service) -> None:
    """Give a service a new signing key. The new key is pinned first, then replaces the old one,
    which stays pinned: every record and checkpoint it signed still verifies. Restart the service
    to sign with the new key (until then it signs with the old one, which still holds)."""
    from shared import signing
    from shared.service import kek_of, pins_dir, signing_key_path

    settings = service_settings(service)
    path, pins = signing_key_path(settings, service.value), pins_dir(settings, service.value)
    old, new = signing.rotate(path, kek_of(settings, service.value), pins, service.value)
    console.print(
        f"{service.value}: new signing key {new} in {path}, pinned in {signing.pin_path(pins, service.value)}; "
        f"the old key {old} stays pinned (what it signed still verifies). Restart {service.value} to sign with it."
    )


@keys_commands.command("pins")
def list_pins() -> None:
    """The keys pinned for each service: what readers accept its records signed with, oldest first."""
    from shared import signing
    from shared.service import pins_dir

    for service in Service:
        pins = pins_dir(service_settings(service), service.value)
        pinned = signing.read_pins(pins, service.value)
        listed = ", ".join(pinned) if pinned else "none (its records cannot be verified until it starts once)"
        console.print(f"{service.value}: {listed}  ({signing.pin_path(pins, service.value)})")


@kafka_commands.command("provision")
def kafka_provision(
    wait_s: float = typer.Option(120.0, help="how long to wait for the broker to answer"),
) -> None:
    """Create the SCRAM users of the services and the auditor (passwords from
    KAFKA_CREDENTIALS_DIR) and the ACLs of the deployment's topic prefix, as `admin`. Idempotent:
    docker-compose runs it before the services start; `captives up` does it itself."""
    from services.broker import provision
    from shared import kafka as kafka_clients
    from shared.kafka_access import ADMIN
    from shared.settings import KafkaSettings

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


def wait_ready(service: Service, url: str, child: subprocess.Popen, log_file: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise typer.BadParameter(f"{service} exited during start-up:\n{tail(log_file)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise typer.BadParameter(f"{service} was not ready within {timeout_s}s:\n{tail(log_file)}")


if __name__ == "__main__":
    app()
