"""The demo's runner: one pass through a scenario, each step's actions performed by the functions
it is given (tools/demo/actions.py), each consequence waited for, the difference shown."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tools.demo.client import EVENT_ID, DemoFailed, Picture, Services, changes, exchange_text, picture_of, succeeded
from tools.demo.steps import (
    AcknowledgeParty,
    Action,
    CarryOutExchange,
    ConflictBegins,
    DraftExchangeList,
    Expect,
    Officer,
    PartnerLooksUp,
    Register,
    Scenario,
    Soldier,
    StateAssures,
    Step,
)

# -- the runner ---------------------------------------------------------------------------------


@dataclass
class Loaded:
    """What a run loaded: the captives' case references, the exchange lists by name, the
    transfers, and what the rules refused at the moment of hand-over."""

    captives: dict[Soldier, str] = field(default_factory=dict)
    lists: dict[str, str] = field(default_factory=dict)
    transfers: dict[Soldier, str] = field(default_factory=dict)
    withheld: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by list: entries kept back at execution
    refusals: list[tuple[Soldier, str]] = field(default_factory=list)  # each refused step: whose, its event
    seconds: float = 0.0


class Run:
    """One pass through a scenario: performs its steps and keeps the last picture of each captive."""

    def __init__(
        self,
        scenario: Scenario,
        services: Services,
        console: Console,
        perform: Mapping[type, Callable[[Run, Step, Any], None]],
        *,
        wait_s: float = 60,
    ):
        self.scenario = scenario
        self.perform_action = perform
        self.services = services
        self.console = console
        self.wait_s = wait_s
        self.loaded = Loaded()
        self.pictures: dict[Soldier, Picture] = {}
        self.replays: list[bool] = []  # one per write of the current step
        self.unsaid_replay = False
        self.named: dict[str, str] = {}  # event id -> how the story calls the fact it records

    def words(self, text: str) -> str:
        """A finding with the events the scenario recorded called by what they are."""
        return EVENT_ID.sub(lambda found: self.named.get(found.group(1), found.group(0)), text)

    # writing, with a key that makes the step safe to repeat

    def write(self, service: str, path: str, body: dict | None, *, by: Officer, key: str, what: str) -> dict:
        return succeeded(self.send(service, path, body, by=by, key=key), what).json()

    def attempt(
        self, service: str, path: str, body: dict | None, *, by: Officer, key: str, what: str
    ) -> tuple[bool, dict]:
        """A step the rules may refuse at this moment: (True, answer), or (False, the refusal
        with `blocked_by` and `refusal_event_id`) for a 409 that recorded one."""
        answer = self.send(service, path, body, by=by, key=key)
        if answer.status_code == 409 and "refusal_event_id" in answer.json():
            return False, answer.json()
        return True, succeeded(answer, what).json()

    def send(self, service: str, path: str, body: dict | None, *, by: Officer, key: str) -> httpx.Response:
        answer = self.services.write(service, path, body, by=by, key=f"demo/{self.scenario.name}/{key}")
        replayed = answer.headers.get("Idempotent-Replayed") == "true"
        self.replays.append(replayed)
        self.unsaid_replay = self.unsaid_replay or replayed
        return answer

    def captive(self, soldier: Soldier) -> str:
        return self.loaded.captives[soldier]

    def name_of(self, captive_id: str) -> str:
        return next((soldier.name for soldier, cid in self.loaded.captives.items() if cid == captive_id), captive_id)

    @property
    def counterpart(self) -> str:
        return self.scenario.counterpart

    def say(self, what: str) -> None:
        """One line about what was just done; marked if the services replayed it from an earlier run."""
        replayed = " [dim](replayed)[/]" if self.unsaid_replay else ""
        self.unsaid_replay = False
        self.console.print(f" • {what}{replayed}", highlight=False)

    # the steps

    def perform(self) -> Loaded:
        started = time.perf_counter()
        self.preflight()
        for step in self.scenario.steps:
            self.step(step)
        self.loaded.seconds = time.perf_counter() - started
        self.summary()
        return self.loaded

    def preflight(self) -> None:
        """The story needs a conflict record holding only the scenario's own facts: a state
        acknowledged as a party by someone else would already be in force for its captives."""
        ours = {
            (getattr(action, "state", None), action.source)
            for step in self.scenario.steps
            for action in step.actions
            if isinstance(action, ConflictBegins | AcknowledgeParty)
        }
        foreign = [
            fact
            for fact in self.services.read("status", "/v1/conflict-facts")
            if (fact.get("state"), fact.get("source")) not in ours
        ]
        if foreign:
            found = "; ".join(
                f"{fact['kind']} {fact.get('state') or ''} from {fact['effective_at']}" for fact in foreign
            )
            raise DemoFailed(
                f"this stack already records conflict facts the demo did not ({found}); the scenario needs a "
                "stack of its own: `captives up --var /tmp/demo-var`, then "
                "`captives demo --credentials /tmp/demo-var/auth/demo-credentials.json`"
            )

    def step(self, step: Step) -> None:
        self.console.rule(f"[bold]{step.on.isoformat()}[/]  {escape(step.title)}", align="left")
        self.console.print(escape(step.story), style="italic")
        self.replays = []
        concerned: set[Soldier] = set()
        for action in step.actions:
            self.perform_action[type(action)](self, step, action)
            concerned |= set(soldiers_of(action, self))
        if self.replays and all(self.replays):
            self.console.print(
                " [dim]already recorded by an earlier run: the services replayed their first answers and "
                "recorded nothing twice[/]"
            )
            self.refresh(concerned)
            return
        before = {soldier: self.pictures.get(soldier, Picture()) for soldier in concerned}
        self.wait_for(step)
        self.refresh(concerned)
        self.show_changes(before)

    def wait_for(self, step: Step) -> None:
        """Until the services show what the step must change (a bounded wait, with a clear error)."""
        deadline = time.monotonic() + self.wait_s
        pending = dict(step.expect)
        while True:
            seen = {soldier: self.picture(soldier) for soldier in pending}
            pending = {soldier: expect for soldier, expect in pending.items() if not seen[soldier].shows(expect)}
            if not pending:
                return
            if time.monotonic() > deadline:
                soldier, expect = next(iter(pending.items()))
                raise DemoFailed(
                    f"step of {step.on} ({step.title}): after {self.wait_s:.0f} s the disposition service still "
                    f"shows {soldier.name} ({self.captive(soldier)}) with {described(seen[soldier])}; expected "
                    f"{described(expect)}. Are the three services running and connected to Kafka?"
                )
            time.sleep(0.4)

    def picture(self, soldier: Soldier) -> Picture:
        return picture_of(self.services, self.captive(soldier), self.scenario.counterpart)

    def refresh(self, soldiers: set[Soldier]) -> None:
        for soldier in soldiers:
            self.pictures[soldier] = self.picture(soldier)

    def show_changes(self, before: Mapping[Soldier, Picture]) -> None:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("captive", no_wrap=True)
        table.add_column("what changed")
        for soldier in self.scenario.soldiers:
            if soldier in before and (lines := changes(before[soldier], self.pictures[soldier], self.counterpart)):
                table.add_row(f"{soldier.name}\n[dim]{self.captive(soldier)}[/]", self.words("\n".join(lines)))
        if table.row_count:
            self.console.print(table)
        elif before:
            self.console.print(" [dim]no change in status, wishes, exchange eligibility or custody[/]")

    def summary(self) -> None:
        table = Table(title="Where everyone stands", box=box.SIMPLE_HEAD)
        for column in ("captive", "case reference", "status", "custody", f"exchange with {self.counterpart}"):
            table.add_column(column)
        for soldier in self.scenario.soldiers:
            seen = self.pictures[soldier]
            table.add_row(soldier.name, self.captive(soldier), seen.status or "—", seen.custody, exchange_text(seen))
        self.console.print(table)
        stopped = [
            f"{self.name_of(captive_id)} withheld from exchange list {self.loaded.lists[name]}"
            for name, captive_ids in self.loaded.withheld.items()
            for captive_id in captive_ids
        ]
        stopped += [f"{soldier.name}'s hand-over refused (event {event})" for soldier, event in self.loaded.refusals]
        if stopped:
            self.console.print(f"Stopped at the moment of hand-over, with the reasons recorded: {'; '.join(stopped)}.")
        self.console.print(
            f"Demo scenario loaded in {self.loaded.seconds:.1f} s. Ask why with e.g. "
            f"`captives audit timeline {self.captive(self.scenario.soldiers[0])}`.",
            highlight=False,
        )


def described(seen: Picture | Expect) -> str:
    return ", ".join(f"{name} {value}" for name, value in vars(seen).items() if value is not None) or "nothing yet"


def soldiers_of(action: Action, run: Run) -> tuple[Soldier, ...]:
    """The captives an action may change."""
    match action:
        case Register() | DraftExchangeList():
            return action.soldiers
        case ConflictBegins():
            return ()
        case AcknowledgeParty():
            return run.scenario.soldiers
        case CarryOutExchange():
            return next(
                a.soldiers
                for step in run.scenario.steps
                for a in step.actions
                if isinstance(a, DraftExchangeList) and a.name == action.name
            )
        case PartnerLooksUp() | StateAssures():
            return ()
        case _:
            return (action.soldier,)
