"""`captives outbox`: the rows a service's relay parked because the broker refused them for good
(shared/eventstore/relay.py), and what an operator does about them (shared/eventstore/outbox.py).

captives outbox list <service>                 the parked rows, their errors, what waits behind each
captives outbox retry <service> ID|--all        unpark, once the cause is fixed: the relay publishes
                                                them (and what waited behind them) next
captives outbox discard <service> ID --reason   last resort: a PublicationWithheld stand-in takes the
                                                event's place (its stream's hash chain stays whole);
                                                the event is kept in outbox_discarded, with who and why
"""

from __future__ import annotations

import getpass

import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

log = structlog.get_logger(__name__)
console = Console()
outbox_commands = typer.Typer(help="Rows a service's outbox relay parked, and retrying them.", no_args_is_help=True)


def _open(service):
    from shared.platform.db import create_engine
    from tools.services import service_module, service_settings

    settings = service_settings(service)
    return create_engine(settings.database_url), service_module(service).definition.store_tables


@outbox_commands.command("list")
def list_parked(service: str = typer.Argument(help="intake, status or disposition")) -> None:
    """The parked rows of a service's outbox: the event, the broker's error, and how many later
    events of the same stream wait behind it (other streams are not held up)."""
    from shared.eventstore.outbox import parked_rows
    from shared.platform.db import session_factory

    engine, tables = _open(_service(service))
    try:
        with session_factory(engine)() as session:
            found = parked_rows(session, tables)
    finally:
        engine.dispose()
    if not found:
        console.print(f"{service}: no parked outbox rows")
        return
    table = Table(title=f"{service}: {len(found)} parked outbox rows")
    for column in ("outbox id", "event", "stream / version", "bytes", "parked at", "error", "waiting behind"):
        table.add_column(column)
    for row in found:
        table.add_row(
            str(row.outbox_id),
            f"{row.event_type}\n{row.event_id}",
            f"{escape(row.stream_id)} v{row.stream_version}",
            f"{row.size:,}",
            row.parked_at.isoformat(timespec="seconds"),
            escape(row.error or ""),
            str(row.waiting),
        )
    console.print(table)


@outbox_commands.command("retry")
def retry(
    service: str = typer.Argument(help="intake, status or disposition"),
    outbox_ids: list[int] = typer.Argument(None, help="the outbox ids `captives outbox list` shows"),
    all_rows: bool = typer.Option(False, "--all", help="every parked row of the service"),
    actor: str = typer.Option(None, envvar="CAPTIVES_ACTOR", help="who retries (default: the login name)"),
) -> None:
    """Unpark rows once their cause is fixed: the relay publishes them, then what waited behind
    them, in order. A row the broker still refuses is parked again with its new error."""
    from shared.platform.db import session_factory

    if not outbox_ids and not all_rows:
        console.print("[red]name the outbox ids to retry, or --all[/]")
        raise typer.Exit(2)
    from shared.eventstore.outbox import retry as unpark

    engine, tables = _open(_service(service))
    try:
        with session_factory(engine).begin() as session:
            unparked = unpark(session, tables, None if all_rows else list(outbox_ids))
    finally:
        engine.dispose()
    who = actor or getpass.getuser()
    log.info("outbox rows unparked", service=service, outbox_ids=sorted(unparked), actor=who)
    missing = sorted(set(outbox_ids or ()) - set(unparked))
    if unparked:
        console.print(
            f"{service}: {len(unparked)} rows unparked ({', '.join(map(str, sorted(unparked)))}) by {escape(who)}; "
            "the relay publishes them next"
        )
    if missing:
        console.print(f"[red]not parked (or not in the outbox)[/]: {', '.join(map(str, missing))}")
        raise typer.Exit(1)
    if not unparked:
        console.print(f"{service}: no parked outbox rows")


@outbox_commands.command("discard")
def discard(
    service: str = typer.Argument(help="intake, status or disposition"),
    outbox_id: int = typer.Argument(help="the outbox id `captives outbox list` shows"),
    reason: str = typer.Option(..., help="why it is discarded; recorded with it (name no one)"),
    actor: str = typer.Option(None, envvar="CAPTIVES_ACTOR", help="who discards (default: the login name)"),
    agency: str = typer.Option("operator", envvar="CAPTIVES_AGENCY", help="for which agency"),
) -> None:
    """Last resort, for a row that can never be published: a PublicationWithheld stand-in (same
    id, version and prevhash) takes its place in the events table and on the topic, the stream's
    later events are chained from it, and the event is kept in outbox_discarded with the error,
    who discarded it, when and why. The stream's later events then go out, in order."""
    from shared.contracts.envelope import utc_now
    from shared.eventstore.outbox import CannotDiscard
    from shared.eventstore.outbox import discard as replace
    from shared.platform.db import session_factory

    engine, tables = _open(_service(service))
    who = actor or getpass.getuser()
    try:
        with session_factory(engine).begin() as session:
            done = replace(session, tables, outbox_id, reason=reason, actor=who, agency=agency, at=utc_now())
    except CannotDiscard as error:
        console.print(f"[red]{escape(str(error))}[/]: nothing discarded")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(
        f"{service}: {done.event_type} {done.event_id} ({escape(done.stream_id)} v{done.stream_version}) discarded "
        f"by {escape(who)}; a PublicationWithheld stand-in takes its place, {done.rechained} later events of the "
        "stream chained from it; the relay publishes them next. The event is kept in outbox_discarded."
    )


def _service(name: str):
    from tools.services import Service

    try:
        return Service(name)
    except ValueError:
        console.print(f"[red]no service {escape(name)!r}[/]: intake, status or disposition")
        raise typer.Exit(2) from None
