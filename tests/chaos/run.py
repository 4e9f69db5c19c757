"""One chaos run: start the stack, write under faults, heal, wait until everything has flowed
through, then check the history. Bounded: the writers stop at their count or their deadline,
every wait has a timeout, and the stack is killed at the end whatever happened."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.contracts.topics import INTAKE_EVENTS, STATUS_EVENTS
from tests.chaos import faults
from tests.chaos.checker import Findings, check
from tests.chaos.stack import Stack
from tests.chaos.workload import History, Writer
from tests.support import caught_up, wait_until


@dataclass(frozen=True)
class Plan:
    writers: int
    captives_per_writer: int
    follow_ups: int  # writes to each captive after its registration
    rounds: int  # of the fault schedule
    time_limit_s: float
    pause_s: float = 1.0  # between faults, so load flows between them

    @property
    def writes(self) -> int:
        return self.writers * self.captives_per_writer * (1 + self.follow_ups)


QUICK = Plan(writers=4, captives_per_writer=40, follow_ups=4, rounds=1, time_limit_s=240)  # 800+ writes, 14 faults
FULL = Plan(writers=8, captives_per_writer=250, follow_ups=4, rounds=2, time_limit_s=1500)  # 10,000+ writes, 28 faults


@dataclass
class Report:
    plan: Plan
    findings: Findings
    injected: list[faults.Injected] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    server_errors: dict = field(default_factory=dict)
    conflicts: list[dict] = field(default_factory=list)
    under_load: int = 0  # faults injected while writers were writing
    seconds: float = 0.0

    @property
    def five_xx(self) -> int:
        return sum(self.server_errors.values())

    def rows(self) -> list[tuple[str, str]]:
        summary = self.findings.summary()
        return [
            ("faults injected", str(len(self.injected))),
            ("  of them while writing", str(self.under_load)),
            ("writes acknowledged", f"{summary['acknowledged']:,}"),
            ("lost", str(summary["lost"])),
            ("duplicated", str(summary["duplicated"])),
            ("out of order", str(summary["reordered"])),
            ("version gaps", str(summary["gaps"])),
            ("5xx responses", str(self.five_xx)),
            ("records republished (absorbed)", str(summary["republished"])),
            ("conflicting writes (answers)", "; ".join(str(dict(sorted(c.items()))) for c in self.conflicts) or "-"),
            ("seconds", f"{self.seconds:.0f}"),
        ]


def run(plan: Plan, workdir: Path, postgres_url: str, *, seed: int = 2025, show_progress: bool = True) -> Report:
    started = time.monotonic()
    rng = random.Random(seed)
    stack = Stack(workdir, postgres_url)
    history = History()
    report = Report(plan, Findings())
    stop, faults_done = threading.Event(), threading.Event()
    try:
        stack.start()
        deadline = time.monotonic() + plan.time_limit_s
        writers = [
            Writer(
                stack.instances["intake-1"].url,
                history,
                captives=plan.captives_per_writer,
                follow_ups=plan.follow_ups,
                deadline=deadline,
                stop=stop,
                faults_done=faults_done,
            )
            for _ in range(plan.writers)
        ]
        for writer in writers:
            writer.start()
        schedule = faults.schedule() * plan.rounds
        with _progress(show_progress) as progress:
            writes = progress.add_task("acknowledged writes", total=plan.writes)
            injected = progress.add_task("faults", total=len(schedule))
            for fault in schedule:
                if time.monotonic() > deadline:
                    break
                began = time.monotonic()
                under_load = any(writer.is_alive() for writer in writers)
                detail = fault(stack, rng, history)
                if detail.startswith(faults.SKIPPED):
                    report.skipped.append(detail)
                else:
                    report.injected.append(faults.Injected(fault.__name__, detail, time.monotonic() - began))
                    report.under_load += under_load
                progress.update(injected, advance=1, description=f"faults: {fault.__name__}")
                progress.update(writes, completed=len(history.acknowledged()))
                _pause(plan.pause_s, progress, writes, history)
            faults_done.set()
            while any(writer.is_alive() for writer in writers) and time.monotonic() < deadline:
                _pause(1.0, progress, writes, history)
            stop.set()
            for writer in writers:
                writer.join(30)
            progress.update(writes, completed=len(history.acknowledged()))
        stack.heal()
        stack.wait_ready()
        _wait_quiet(stack)
        report.findings = check(history, stack.database_urls, stack.bootstrap, stack.prefix)
        report.server_errors = dict(history.server_errors)
        report.conflicts = stack.conflict_statuses
    finally:
        stop.set()
        stack.stop()
        report.seconds = time.monotonic() - started
    return report


def _pause(seconds: float, progress: Progress, task, history: History) -> None:
    time.sleep(seconds)
    progress.update(task, completed=len(history.acknowledged()))


def _wait_quiet(stack: Stack, timeout_s: float = 300) -> None:
    """Until every outbox is empty and every consumer group has caught up with its topics."""
    engines = {service: sa.create_engine(url) for service, url in stack.database_urls.items()}

    def outboxes_empty() -> bool:
        for engine in engines.values():
            with engine.connect() as connection:
                if connection.execute(sa.text("SELECT count(*) FROM outbox")).scalar():
                    return False
        return True

    groups = [("status", INTAKE_EVENTS), ("disposition", INTAKE_EVENTS), ("disposition", STATUS_EVENTS)]
    try:
        wait_until(outboxes_empty, timeout_s=timeout_s, interval_s=1, what="every outbox published")
        for service, topic in groups:
            wait_until(
                lambda s=service, t=topic: caught_up(stack.bootstrap, f"{stack.prefix}{s}", stack.topic(t)),
                timeout_s=timeout_s,
                interval_s=1,
                what=f"{service} caught up with {topic}",
            )
        # Status decisions the catch-up caused must reach disposition too.
        wait_until(outboxes_empty, timeout_s=timeout_s, interval_s=1, what="every outbox published")
        wait_until(
            lambda: caught_up(stack.bootstrap, f"{stack.prefix}disposition", stack.topic(STATUS_EVENTS)),
            timeout_s=timeout_s,
            interval_s=1,
            what="disposition caught up with status",
        )
    finally:
        for engine in engines.values():
            engine.dispose()


class _Silent:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass


def _progress(show: bool):
    if not show:
        return _Silent()
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    )
