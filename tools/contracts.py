"""`captives contracts ...`: the committed contract documents under docs/ (shared/contracts/documents.py).

captives contracts write     regenerate them; refuses an incompatible change to a committed event schema
captives contracts check     exit 1 naming the out-of-date documents and the incompatible changes (CI, tests)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from shared.contracts import documents

contracts = typer.Typer(
    help="Contract documents: AsyncAPI, OpenAPI and the JSON Schema of every event version.", no_args_is_help=True
)
console = Console(soft_wrap=True)  # paths and problems stay on one line, for copying and grep

DOCS = Path(__file__).resolve().parents[1] / "docs"


def service_contracts() -> list[documents.ServiceContract]:
    """The three services as the documents see them, each app built on a throwaway SQLite file
    (nothing is started: `app.openapi()` only reads the routes)."""
    from services.system import SYSTEM, app_module

    found = []
    with tempfile.TemporaryDirectory(prefix="captives-contracts-") as scratch:
        for service in SYSTEM.services:
            module = app_module(service)
            definition = module.definition
            app = module.build(
                definition.settings(database_url=f"sqlite:///{scratch}/{definition.name}.db"), start_background=False
            )
            found.append(documents.ServiceContract.of(definition, app.openapi()))
            app.state.runtime.engine.dispose()
    return found


def current_documents() -> dict[str, str]:
    return documents.documents(service_contracts())


def _shown(docs: Path, path: str) -> str:
    try:
        return str((docs / path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(docs / path)


def _report_breaking(docs: Path, breaking: dict[str, list[str]]) -> None:
    for path, problems in breaking.items():
        console.print(f"[red]incompatible[/] {escape(_shown(docs, path))}:")
        for problem in problems:
            console.print(f"  {escape(problem)}", highlight=False)


@contracts.command("write")
def write(docs: Path = typer.Option(DOCS, help="the folder the documents live in")) -> None:
    """Regenerate the documents from the code and print which changed. A committed event schema is
    a contract: an incompatible change to it is refused (register the next version instead)."""
    wanted = current_documents()
    breaking = documents.breaking_changes(docs, wanted)
    if breaking:
        _report_breaking(docs, breaking)
        console.print(
            "[red]Nothing written.[/] Events already in the log were written under the committed schemas, and "
            "consumers must go on reading them: keep that version's model compatible and register the change as "
            'a new version beside it (@event_type("<Type>", N + 1)).'
        )
        raise typer.Exit(1)
    changed = documents.write(docs, wanted)
    for path in changed:
        console.print(f"wrote {_shown(docs, path)}", markup=False, highlight=False)
    console.print(f"{len(changed)} of {len(wanted)} documents changed")


@contracts.command("check")
def check(docs: Path = typer.Option(DOCS, help="the folder the documents live in")) -> None:
    """Exit 1 if a committed document is out of date or an event schema changed incompatibly."""
    wanted = current_documents()
    stale = documents.stale(docs, wanted)
    breaking = documents.breaking_changes(docs, wanted)
    for path in stale:
        console.print(f"[yellow]out of date[/] {escape(_shown(docs, path))}", highlight=False)
    _report_breaking(docs, breaking)
    if breaking:
        console.print("Register each incompatible change as a new version of its event type.")
    if stale and not breaking:
        console.print("Run `captives contracts write` (or `make contracts`) and commit the result.")
    if stale or breaking:
        raise typer.Exit(1)
    console.print(f"{len(wanted)} documents up to date; every committed event schema still holds")
