"""The disposition service's HTTP API (v1), its exchange lists: created, checked, proposed,
approved by another person and executed (a list of 1,000 for 1,000). Routes only: what each step
decides is in exchange_lists.py. Its routes follow those of api.py in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.disposition import exchange_lists, queries
from services.disposition.requests import (
    LateStep,
    ListRequest,
)
from shared.auth.gate import CallerDep
from shared.auth.roles import Scope
from shared.web.deps import DbSession
from shared.web.http import Writer
from shared.web.routes import Routes

routes = Routes("disposition")
router = routes.router


@routes.read("/exchange-lists/{list_id}", Scope.DISPOSITION_OVERVIEW, 404)
def get_list(list_id: str, session: DbSession, request: Request, caller: CallerDep) -> dict[str, Any]:
    return queries.get_list(list_id, session, request, caller)


@routes.write("/exchange-lists", Scope.DISPOSITION_PROPOSE, 409, 413)
def create_list(
    body: ListRequest,
    command: Writer,
):
    """A list of captives for an exchange with a counterpart state (e.g. 1,000 for 1,000)."""
    return exchange_lists.create_list(body, command)


@routes.write("/exchange-lists/{list_id}/check", Scope.DISPOSITION_PROPOSE, 404, 409, 413)
def check_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Check the list as a whole: one result per entry, the blocked ones with their reasons."""
    return exchange_lists.check_list(list_id, command, body)


@routes.write("/exchange-lists/{list_id}/proposal", Scope.DISPOSITION_PROPOSE, 404, 409, 413)
def propose_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Propose the entries the last check found eligible (the blocked ones stay off)."""
    return exchange_lists.propose_list(list_id, command, body)


@routes.write("/exchange-lists/{list_id}/approval", Scope.DISPOSITION_APPROVE, 404, 409, 413)
def approve_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Approve by a person other than the proposer. Every proposed entry is checked again now: if
    any has become ineligible, the approval is refused (409, recorded), naming those entries and
    why; the list is then checked and proposed again."""
    return exchange_lists.approve_list(list_id, command, body)


@routes.write("/exchange-lists/{list_id}/execution", Scope.DISPOSITION_PROPOSE, 404, 409, 413)
def execute_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Record that the approved exchange took place, for the entries that are eligible at this
    moment: custody ends for each of them. The others stay in custody and are reported with their
    reasons. If none is eligible, the execution is refused (409, recorded)."""
    return exchange_lists.execute_list(list_id, command, body)
