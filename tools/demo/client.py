"""How the demo talks to the running services (each write by the person whose work it is) and what
it reads back of a captive to show what changed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from rich.markup import escape

from deploy.keycloak.provision import Credentials
from shared.auth.tokens import NoToken, TokenSource
from tools.demo.steps import Expect, Officer
from tools.demo.story import READER

# -- talking to the services --------------------------------------------------------------------


class DemoFailed(Exception):
    """The demo cannot go on; the message says why and what to do."""


PURPOSE = "captives demo: loading the synthetic scenario"


class Services:
    """The three services over HTTP, each step with the token of the person who takes it
    (Keycloak's password grant, with the realm's generated passwords)."""

    def __init__(self, urls: Mapping[str, str], credentials: Credentials):
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.credentials = credentials
        self.http = {name: httpx.Client(base_url=url, timeout=30) for name, url in self.urls.items()}
        self.sources: dict[str, TokenSource] = {}

    def close(self) -> None:
        for client in self.http.values():
            client.close()

    def send(self, service: str, method: str, path: str, **request) -> httpx.Response:
        for _ in range(6):
            try:
                answer = self.http[service].request(method, path, **request)
            except httpx.TransportError as error:
                raise DemoFailed(
                    f"cannot reach {service} at {self.urls[service]} ({type(error).__name__}): is the stack up "
                    "(`make up`)? Other ports: --intake-url, --status-url, --disposition-url"
                ) from None
            if answer.status_code != 429:  # over the agency's rate: wait as told
                return answer
            time.sleep(min(float(answer.headers.get("Retry-After", "1")), 10))
        return answer

    def token(self, who: Officer | str) -> str:
        """A person's token (an Officer) or a system's (a client id)."""
        name = who.username if isinstance(who, Officer) else who
        if name not in self.sources:
            try:
                self.sources[name] = (
                    self.credentials.person(name) if isinstance(who, Officer) else self.credentials.client(name)
                )
            except KeyError as error:
                raise DemoFailed(f"{error.args[0]}: is this the credentials file of this stack's realm?") from None
        try:
            return self.sources[name].token()
        except NoToken as error:
            raise DemoFailed(
                f"{error}: are these the credentials of this stack's Keycloak? `captives up --var DIR` writes "
                "them to DIR/keycloak/credentials.json"
            ) from None

    def headers(self, who: Officer | str, key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token(who)}",
            "X-Purpose": PURPOSE,  # the access log records why each sensitive read was made
        }
        return headers | ({"Idempotency-Key": key} if key else {})

    def write(self, service: str, path: str, body: dict | None, *, by: Officer, key: str) -> httpx.Response:
        answer = self.send(service, "POST", path, json=body or {}, headers=self.headers(by, key))
        if answer.status_code == 422 and "Idempotency-Key" in detail(answer):
            raise DemoFailed(
                "this stack holds an earlier version of the demo scenario (a step's key was used for "
                "another request): load it into a fresh stack, e.g. `captives up --var /tmp/demo-var`"
            )
        return answer

    def read(self, service: str, path: str, *, by: Officer | str = READER, params: dict | None = None) -> Any:
        """The JSON answer, or None for a 404."""
        answer = self.send(service, "GET", path, params=params, headers=self.headers(by))
        if answer.status_code == 404:
            return None
        return succeeded(answer, f"GET {service} {path}").json()


def detail(answer: httpx.Response) -> str:
    try:
        found = answer.json().get("detail", answer.text)
    except (ValueError, AttributeError):
        found = answer.text
    return found if isinstance(found, str) else json.dumps(found)


def succeeded(answer: httpx.Response, what: str) -> httpx.Response:
    if answer.status_code >= 300:
        raise DemoFailed(f"{what} was refused: {answer.status_code} {detail(answer)}")
    return answer


# -- what the services show of a captive ---------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """One captive as the disposition service shows him (it hears of everything last)."""

    status: str | None = None
    decided_by: str | None = None  # the decisive rule: id, article, finding
    custody: str | None = None
    wish: str | None = None
    verified: bool | None = None
    exchange: tuple[str, ...] | None = None  # rules blocking exchange with the counterpart; None: not yet asked
    exchange_why: tuple[str, ...] = ()

    def shows(self, expect: Expect) -> bool:
        wanted = {name: value for name, value in vars(expect).items() if value is not None}
        return all(getattr(self, name) == value for name, value in wanted.items())


EVENT_REFERENCE = re.compile(r" \(event [^)]*\)|; [a-z ]*event [0-9a-f-]{36}")
EVENT_ID = re.compile(r"event ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def plain(text: str) -> str:
    """A rule's finding as people read it: without the event ids (the API's answers have them)."""
    return EVENT_REFERENCE.sub("", text).removeprefix("BLOCKED: ").removeprefix("satisfied: ")


def finding(rule: Mapping[str, str]) -> str:
    return f"{rule['rule_id']} {plain(rule['finding'])}"


def picture_of(services: Services, captive_id: str, counterpart: str) -> Picture:
    captive = services.read("disposition", f"/v1/captives/{captive_id}")
    # His registration may not have reached disposition yet (his status may arrive first).
    if captive is None or not captive["registered"]:
        return Picture()
    eligibility = services.read("disposition", f"/v1/captives/{captive_id}/eligibility")
    if eligibility is None:
        return Picture()
    answers = eligibility["counterparts"]
    status = captive["status"] or {"rules": []}
    decisive = status["rules"][-1] if status["rules"] else None
    home = answers.get(captive["nationality"]) or next(iter(answers.values()), {"facts": []})
    facts = {fact["name"]: fact["value"] for fact in home["facts"]}
    said = facts.get("verified_wish") or facts.get("unverified_statement")
    towards = answers.get(counterpart)
    blocked = [rule for rule in towards["reasons"] if rule["finding"].startswith("BLOCKED")] if towards else []
    return Picture(
        status=status.get("status"),
        decided_by=f"{decisive['rule_id']} {decisive['article']}: {plain(decisive['finding'])}" if decisive else None,
        custody=captive["custody"],
        # His standing verified wish; failing one, the latest statement that verifies nothing.
        wish=said.replace(" to ", " ") if said else None,
        verified=bool(facts.get("verified_wish")) if said else None,
        exchange=tuple(rule["rule_id"] for rule in blocked) if towards else None,
        exchange_why=tuple(finding(rule) for rule in blocked),
    )


def changes(before: Picture, after: Picture, counterpart: str) -> list[str]:
    """What changed between two pictures of one captive, in the domain's words (rich markup)."""
    lines = []
    if (before.status, before.decided_by) != (after.status, after.decided_by):
        lines.append(
            f"status {before.status or '—'} → [bold]{after.status}[/]  [dim]{escape(after.decided_by or '')}[/]"
        )
    if (before.wish, before.verified) != (after.wish, after.verified):
        lines.append(f"wish {wish_text(before)} → [bold]{wish_text(after)}[/]")
    if (before.exchange, before.exchange_why) != (after.exchange, after.exchange_why):
        lines.append(f"exchange with {counterpart}: {exchange_text(before)} → [bold]{exchange_text(after)}[/]")
        lines += [f"  [dim]{escape(why)}[/]" for why in after.exchange_why if why not in before.exchange_why]
    if before.custody != after.custody and before.custody is not None:
        lines.append(f"custody {before.custody} → [bold]{after.custody}[/]")
    return lines


def wish_text(picture: Picture) -> str:
    if picture.wish is None:
        return "—"
    return f"{picture.wish} ({'verified' if picture.verified else 'not verified'})"


def exchange_text(picture: Picture) -> str:
    if picture.exchange is None:
        return "—"
    return "eligible" if not picture.exchange else "blocked by " + ", ".join(picture.exchange)
