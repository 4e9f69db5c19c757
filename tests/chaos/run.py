"""One chaos run: start the stack, write under faults, heal, wait until everything has flowed
through, then check the history. Bounded: the writers stop at their count or their deadline,
every wait has a timeout, and the stack is killed at the end whatever happened.

`problems(report)` is what a run must satisfy, asserted alike by the test (`make test`) and by
`python -m tests.chaos` (`make chaos`)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlalchemy as sa
import structlog
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
    time_limit_s: float  # a bound on the run, not a target: every fault must be injected within it
    pause_s: float = 1.0  # between faults, so load flows between them
    brokers: int = 1  # Kafka brokers: 1, or a cluster of 3
    every_fault: bool = True  # False: only the faults of what a cluster changes (faults.schedule)

    @property
    def writes(self) -> int:
        return self.writers * self.captives_per_writer * (1 + self.follow_ups)


QUICK = Plan(writers=4, captives_per_writer=40, follow_ups=4, rounds=1, time_limit_s=900)  # 800+ writes, 17 faults
FULL = Plan(writers=8, captives_per_writer=250, follow_ups=4, rounds=2, time_limit_s=2400)  # 10,000+ writes, 34 faults
# The short three-broker run `make test` does (7 faults), and the full one `make chaos` does.
QUICK_CLUSTER = replace(QUICK, captives_per_writer=20, brokers=3, every_fault=False)
FULL_CLUSTER = replace(FULL, brokers=3)


log = structlog.get_logger(__name__)


@dataclass
class Report:
    plan: Plan
    findings: Findings
    scheduled: int = 0  # faults in the schedule; every one must be injected
    conflicts_scheduled: int = 0  # rounds of 100 conflicting writes in it
    injected: list[faults.Injected] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # faults that did not fire or did not hold
    server_errors: dict = field(default_factory=dict)
    unavailable: int = 0  # 503s while PostgreSQL was down, retried
    durability: dict[str, str] = field(default_factory=dict)  # PostgreSQL's, as it reports them
    conflicts: list[dict] = field(default_factory=list)
    under_load: int = 0  # faults injected while writers were writing
    stalls: int = 0  # rounds of a relay its watchdog found stuck (and replaced), from the logs
    seconds: float = 0.0

    @property
    def five_xx(self) -> int:
        return sum(self.server_errors.values())

    def rows(self) -> list[tuple[str, str]]:
        summary = self.findings.summary()
        events = ", ".join(f"{service} {count:,}" for service, count in self.findings.events.items())
        return [
            ("brokers", str(self.plan.brokers)),
            ("faults injected", f"{len(self.injected)} of {self.scheduled}"),
            ("  of them while writing", str(self.under_load)),
            ("  failed or did not fire", str(len(self.failed))),
            ("writes acknowledged", f"{summary['acknowledged']:,}"),
            ("  each one event by its marker", f"{self.findings.markers:,}"),
            ("events stored (each on its topic)", events or "-"),
            ("lost", str(summary["lost"])),
            ("duplicated", str(summary["duplicated"])),
            ("out of order", str(summary["reordered"])),
            ("version gaps", str(summary["gaps"])),
            ("on a topic, in no store", str(summary["strays"])),
            ("poison records (dead-lettered, discarded)", str(self.findings.injected)),
            ("5xx responses (not 503)", str(self.five_xx)),
            ("503, database down (retried)", str(self.unavailable)),
            ("records republished (absorbed)", str(summary["republished"])),
            ("relay rounds stuck, replaced by the watchdog", str(self.stalls)),
            ("conflicting writes (answers)", "; ".join(str(dict(sorted(c.items()))) for c in self.conflicts) or "-"),
            ("PostgreSQL " + ", ".join(self.durability), ", ".join(self.durability.values()) or "-"),
            ("seconds", f"{self.seconds:.0f}"),
        ]


def problems(report: Report) -> list[str]:
    """Everything a chaos run must not show (empty: it passed)."""
    found = [f"fault failed: {failure}" for failure in report.failed]
    if set(report.durability.values()) != {"on"}:
        found.append(f"PostgreSQL without production durability: {report.durability}")
    if len(report.injected) != report.scheduled:
        found.append(f"{len(report.injected)} faults injected of {report.scheduled} scheduled")
    if report.under_load != len(report.injected):
        found.append(f"only {report.under_load} of {len(report.injected)} faults injected while writing")
    acknowledged = report.findings.acknowledged
    if acknowledged < report.plan.writes * 0.9:
        found.append(f"{acknowledged} writes acknowledged, fewer than 90% of {report.plan.writes}")
    if report.findings.markers != acknowledged:
        found.append(f"{report.findings.markers} of {acknowledged} acknowledged writes found once by their marker")
    found.extend(report.findings.problems())
    found.extend(f"{count} x {status} on {kind}" for (status, kind), count in report.server_errors.items())
    # 100 writers at one version, each round: exactly one wins, every other one is told it lost.
    if report.conflicts != [{201: 1, 409: 99}] * report.conflicts_scheduled:
        found.append(f"conflicting writes answered {report.conflicts}")
    return found


def run(plan: Plan, workdir: Path, *, seed: int = 2025, show_progress: bool = True) -> Report:
    started = time.monotonic()
    rng = random.Random(seed)
    stack = Stack(workdir, brokers=plan.brokers)
    history = History()
    report = Report(plan, Findings())
    stop, faults_done = threading.Event(), threading.Event()
    try:
        stack.start()
        report.durability = stack.durability
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
        schedule = faults.schedule(plan.brokers, every=plan.every_fault) * plan.rounds
        report.scheduled = len(schedule)
        report.conflicts_scheduled = schedule.count(faults.conflicting)
        with _progress(show_progress) as progress:
            writes = progress.add_task("acknowledged writes", total=plan.writes)
            injected = progress.add_task("faults", total=len(schedule))
            for fault in schedule:
                if time.monotonic() > deadline:
                    break
                began = time.monotonic()
                under_load = any(writer.is_alive() for writer in writers)
                try:
                    detail = fault(stack, rng, history)
                except AssertionError as failure:  # FaultFailed, or a bounded wait that ran out
                    log.error("fault failed", fault=fault.__name__, error=str(failure))
                    report.failed.append(f"{fault.__name__}: {failure}")
                    stack.heal()
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
        report.unavailable = sum(history.unavailable.values())
        report.conflicts = stack.conflict_statuses
    finally:
        stop.set()
        stack.stop()
        report.stalls = _stalls(workdir / "logs")
        report.seconds = time.monotonic() - started
    return report


def _stalls(logs: Path) -> int:
    """How often a relay's watchdog replaced a stuck round (shared/eventstore/relay.py), in any
    instance's log."""
    return sum(log.read_text(errors="replace").count('"relay stalled:') for log in logs.glob("*.log"))


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
