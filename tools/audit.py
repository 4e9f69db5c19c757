"""`captives audit`: questions auditors and courts ask of the record (reproduce, verify, timeline),
and `captives checkpoint`, which signs what `audit verify` later checks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.broker import clients as kafka_clients
from shared.broker.access import AUDITOR
from tools.services import Service, service_module, service_settings

audit = typer.Typer(help="Questions auditors and courts ask of the record.")
console = Console()


@audit.command("reproduce")
def audit_reproduce() -> None:
    """Re-run every recorded status decision from its own trace under its own rulebook version,
    and list any that comes out differently."""
    from services.status.reproduce import reproduce
    from shared.contracts import InvalidEvent, decode
    from shared.contracts.status import StatusDetermined

    kafka = service_settings(Service.status).kafka
    checked, different = 0, []
    for record in kafka_clients.read_log(kafka.access(AUDITOR), [kafka.topic("status.events.v1")]):
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
    from shared.contracts import InvalidEvent, decode

    kafka = service_settings(Service.disposition).kafka
    topics = [kafka.topic(name) for name in ("intake.events.v1", "status.events.v1", "disposition.events.v1")]
    events = []
    for record in kafka_clients.read_log(kafka.access(AUDITOR), topics):
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


@audit.command("verify")
def audit_verify() -> None:
    """Check every record's signature, every stream's hash chain and every signed checkpoint of
    the three topics; name each record its publisher's key did not sign, the first bad event of
    each broken chain and each checkpoint that no longer holds."""
    from shared.evidence import chain, checkpoints, signing
    from shared.runtime.runtime import pinned_keys

    problems = 0
    records_by_topic = {}
    for service in Service:
        settings = service_settings(service)
        definition = service_module(service).definition
        topic = settings.kafka.topic(definition.topic)
        records = list(kafka_clients.read_log(settings.kafka.access(AUDITOR), [topic]))
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
        signed = kafka_clients.read_log(settings.kafka.access(AUDITOR), [checkpoints.checkpoint_topic(topic)])
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

    from shared.platform.db import create_engine, session_factory
    from tools.timeline import render_html, timeline, with_identity

    intake_settings = service_settings(Service.intake)
    kafka = intake_settings.kafka
    topics = [kafka.topic(name) for name in ("intake.events.v1", "status.events.v1", "disposition.events.v1")]
    entries = timeline(kafka_clients.read_log(kafka.access(AUDITOR), topics), captive_id)
    from shared.privacy.kek import KekError
    from shared.runtime.runtime import keyring_of

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


def checkpoint(service: Service) -> None:
    """Sign and publish a checkpoint of the service's topic now (the services also do it periodically)."""
    from shared.evidence import checkpoints
    from shared.runtime.runtime import signer_of

    settings = service_settings(service)
    topic = settings.kafka.topic(service_module(service).definition.topic)
    signer = signer_of(settings, service.value)
    sizes = checkpoints.publish(settings.kafka.access(service.value), topic, signer.key)
    console.print(
        f"checkpoint of {topic}: {sum(sizes.values()):,} records in {len(sizes)} partitions, signed by "
        f"key {signer.key_id}"
    )
