"""`captives dlq`: a consuming service's dead letters, the records held behind them, and the
operator's two answers (shared/eventstore/consumer.py, shared/eventstore/dead_letters.py).

captives dlq list status                          each captive's head, and how many wait behind it
captives dlq redrive status CAP-... --reason ..   apply the head again, then the parked ones in order
captives dlq discard status CAP-... --reason ..   drop the head for good (recorded), release the rest
"""

from __future__ import annotations

import getpass
import time

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.eventstore.received import DISCARD, REDRIVE
from tools.services import Consuming

dlq = typer.Typer(
    help="Dead letters and the records parked behind them, per captive: list, redrive, discard.",
    no_args_is_help=True,
)
console = Console()


def _service(service):
    from tools.services import Service, service_module, service_settings

    service = Service(service.value)
    definition = service_module(service).definition
    if definition.store_tables.parked is None:
        console.print(f"{service.value} consumes no topic: it has no dead letters")
        raise typer.Exit(0)
    return definition, service_settings(service)


def _sessions(definition, settings, database_url: str | None):
    from shared.platform.db import create_engine, migrate, session_factory

    engine = create_engine(database_url or settings.database_url)
    migrate(engine, definition.migrations, definition.metadata)
    return engine, session_factory(engine)


def _where(row) -> str:
    return f"{row.topic}/{row.kafka_partition}@{row.kafka_offset}"


def _event(row) -> str:
    if row.event_type is None:
        return "(undecodable)"
    return f"{row.event_type} v{row.schema_version}\n{row.event_id}"


@dlq.command("list")
def list_held(
    service: Consuming,
    records: bool = typer.Option(False, "--records", help="every parked record, not only each captive's head"),
    decided: bool = typer.Option(False, "--decisions", help="also the redrives and discards recorded"),
    database_url: str = typer.Option(None, help="default: the service's DATABASE_URL"),
) -> None:
    """Each captive whose records are held: the head (a dead letter, or a record waiting for a
    build that knows its event type or version), why, and how many records are parked behind it."""
    from shared.eventstore import dead_letters

    definition, settings = _service(service)
    engine, sessions = _sessions(definition, settings, database_url)
    try:
        with sessions() as session:
            heads = dead_letters.held(session, definition.store_tables)
            table = Table(title=f"{service.value}: held records ({len(heads)} captives)")
            for column in ("captive", "state", "record", "event", "reason", "behind", "request"):
                table.add_column(column, overflow="fold")
            for item in heads:
                rows = (
                    dead_letters.records_of(session, definition.store_tables, item.head.captive)
                    if records
                    else [item.head]
                )
                for n, row in enumerate(rows):
                    table.add_row(
                        row.captive if n == 0 else "",
                        row.state,
                        _where(row),
                        _event(row),
                        escape(row.reason[:300]),
                        str(item.behind) if n == 0 else "",
                        f"{row.request} by {row.requested_by}" if row.request else "",
                    )
            if heads:
                console.print(table)
            else:
                console.print(f"{service.value}: nothing held (no dead letter, no waiting record)")
            console.print(_consumer_progress(service.value, settings))
            if decided:
                log = Table(title=f"{service.value}: dead-letter decisions")
                for column in ("when", "action", "captive", "record", "event", "by", "reason", "outcome"):
                    log.add_column(column, overflow="fold")
                for row in dead_letters.decisions(session, definition.store_tables):
                    log.add_row(
                        row.decided_at.isoformat(timespec="seconds"),
                        row.action,
                        row.captive,
                        _where(row),
                        f"{row.event_type}\n{row.event_id}" if row.event_type else "(undecodable)",
                        escape(row.decided_by),
                        escape(row.reason),
                        escape(row.outcome[:300]),
                    )
                console.print(log)
    finally:
        engine.dispose()


def _consumer_progress(service: str, settings) -> str:
    """What the running service's consumer says of itself (its /readyz): what a consumer is stuck
    on (a record it keeps retrying, the database or the broker away, a call that does not return)
    is in no table, since what holds it may be the database itself."""
    import httpx

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/readyz"
    try:
        answer = httpx.get(url, timeout=5).json()
    except (httpx.HTTPError, ValueError) as error:
        return f"{service}'s consumer: no answer from {url} ({type(error).__name__}); is {service} running?"
    stalled = answer.get("consumer_stalled")
    if stalled is None:
        return f"{service}'s consumer: making progress ({url})"
    return (
        f"[red]{service}'s consumer is stuck[/] for {stalled['for_s']} s at "
        f"{stalled['topic']}/{stalled['partition']}@{stalled['offset']}: {escape(str(stalled['reason']))}"
    )


def _ask(service: Consuming, captive: str, action: str, by: str | None, reason: str, wait: bool, timeout_s: float, url):
    from shared.eventstore import dead_letters

    definition, settings = _service(service)
    engine, sessions = _sessions(definition, settings, url)
    tables = definition.store_tables
    try:
        with sessions() as session:
            since = dead_letters.last_decision(session, tables)
        try:
            head = dead_letters.request(sessions, tables, captive, action, by=by or getpass.getuser(), reason=reason)
        except dead_letters.NothingHeld as error:
            console.print(f"[red]{escape(str(error))}[/]: nothing to {action}")
            raise typer.Exit(1) from None
        console.print(
            f"{action} of {captive}'s {head.state.replace('_', ' ')} {_where(head)} "
            f"({escape(_event(head).replace(chr(10), ' '))}) requested; {service.value}'s consumer carries it out"
        )
        if not wait:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with sessions() as session:
                decision = dead_letters.settled(session, tables, head, since)
                left = dead_letters.records_of(session, tables, captive)
            if decision is not None:
                console.print(f"{decision.action} by {escape(decision.decided_by)}: {escape(decision.outcome)}")
                if left:
                    console.print(
                        f"{captive}: {len(left)} records still held, head {left[0].state}: {escape(left[0].reason)}"
                    )
                    raise typer.Exit(1)
                console.print(f"{captive}: nothing held any more")
                return
            time.sleep(0.5)
        console.print(
            f"[yellow]not carried out within {timeout_s:.0f} s[/]: is {service.value} running? The request stays."
        )
        raise typer.Exit(2)
    finally:
        engine.dispose()


@dlq.command()
def redrive(
    service: Consuming,
    captive: str = typer.Argument(help="whose dead letter: the captive's case reference (the record's subject)"),
    reason: str = typer.Option("", help="why it may be applied now (recorded)"),
    by: str = typer.Option(None, envvar="CAPTIVES_ACTOR", help="who redrives (default: the login name)"),
    wait: bool = typer.Option(True, help="wait for the consumer to carry it out"),
    timeout_s: float = typer.Option(60.0, "--timeout", help="how long to wait"),
    database_url: str = typer.Option(None, help="default: the service's DATABASE_URL"),
) -> None:
    """Apply the captive's head again, then the records parked behind it, in order, stopping again
    at the first that fails."""
    _ask(service, captive, REDRIVE, by, reason, wait, timeout_s, database_url)


@dlq.command()
def discard(
    service: Consuming,
    captive: str = typer.Argument(help="whose dead letter: the captive's case reference (the record's subject)"),
    reason: str = typer.Option(..., help="why it is dropped for good (recorded)"),
    by: str = typer.Option(None, envvar="CAPTIVES_ACTOR", help="who discards (default: the login name)"),
    wait: bool = typer.Option(True, help="wait for the consumer to carry it out"),
    timeout_s: float = typer.Option(60.0, "--timeout", help="how long to wait"),
    database_url: str = typer.Option(None, help="default: the service's DATABASE_URL"),
) -> None:
    """Drop the captive's head for good (who and why recorded; replay skips it too), then apply the
    records parked behind it, in order."""
    _ask(service, captive, DISCARD, by, reason, wait, timeout_s, database_url)
