"""`captives outbox`: the rows a service's relay parked because the broker refused them for good
(shared/eventstore/relay.py), and putting them back once the cause is fixed.

captives outbox list <service>            the parked rows, their errors, and what waits behind each
captives outbox retry <service> ID|--all   unpark: the relay publishes them (and what waited) next

There is no `discard`: every later event of a stream names the hash of the one before it
(shared/chain.py), and consumers set aside an event whose predecessor they never saw, so leaving
one event off the topic would lose every later event of that captive downstream. A parked row
is fixed where its cause is (raise the broker's limit, grant the ACL) and retried.
"""

from __future__ import annotations

import getpass

import sqlalchemy as sa
import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

log = structlog.get_logger(__name__)
console = Console()
outbox_commands = typer.Typer(help="Rows a service's outbox relay parked, and retrying them.", no_args_is_help=True)


def _open(service):
    from services.cli import service_module, service_settings
    from shared.db import create_engine

    settings = service_settings(service)
    return create_engine(settings.database_url), service_module(service).definition.store_tables


def parked_rows(session, tables) -> list[dict]:
    """Each parked row with its event, and how many later rows of its stream wait behind it."""
    outbox, events = tables.outbox, tables.events
    rows = session.execute(
        sa.select(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.topic,
            outbox.c.parked_at,
            outbox.c.parked_error,
            events.c.stream_id,
            events.c.stream_version,
            events.c.event_type,
            sa.func.length(events.c.envelope).label("size"),
        )
        .join(events, events.c.event_id == outbox.c.event_id)
        .where(outbox.c.parked_at.is_not(None))
        .order_by(outbox.c.id)
    ).all()
    found = []
    for row in rows:
        waiting = session.execute(
            sa.select(sa.func.count())
            .select_from(outbox.join(events, events.c.event_id == outbox.c.event_id))
            .where(events.c.stream_id == row.stream_id, outbox.c.id > row.id)
        ).scalar_one()
        found.append({**row._asdict(), "waiting": waiting})
    return found


@outbox_commands.command("list")
def list_parked(service: str = typer.Argument(help="intake, status or disposition")) -> None:
    """The parked rows of a service's outbox: the event, the broker's error, and how many later
    events of the same stream wait behind it (other streams are not held up)."""
    from shared.db import session_factory

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
            str(row["id"]),
            f"{row['event_type']}\n{row['event_id']}",
            f"{row['stream_id']} v{row['stream_version']}",
            f"{row['size']:,}",
            row["parked_at"].isoformat(timespec="seconds") if row["parked_at"] else "",
            escape(row["parked_error"] or ""),
            str(row["waiting"]),
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
    from shared.db import session_factory

    if not outbox_ids and not all_rows:
        console.print("[red]name the outbox ids to retry, or --all[/]")
        raise typer.Exit(2)
    engine, tables = _open(_service(service))
    outbox = tables.outbox
    try:
        with session_factory(engine).begin() as session:
            which = outbox.c.parked_at.is_not(None)
            if not all_rows:
                which = which & outbox.c.id.in_(outbox_ids)
            unparked = session.execute(
                sa.update(outbox).where(which).values(parked_at=None, parked_error=None).returning(outbox.c.id)
            ).scalars().all()
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


def _service(name: str):
    from services.cli import Service

    try:
        return Service(name)
    except ValueError:
        console.print(f"[red]no service {escape(name)!r}[/]: intake, status or disposition")
        raise typer.Exit(2) from None
