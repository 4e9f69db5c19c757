"""The disposition service's HTTP API (v1), its exchange lists: created, checked, proposed,
approved by another person and executed (a list of 1,000 for 1,000). Routes only: what each step
decides is in exchange_lists.py. Its routes follow those of api.py in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.disposition import exchange_lists, queries
from services.disposition.requests import (
    LateStep,
    ListRequest,
)
from shared.auth.gate import CallerDep, allow
from shared.auth.roles import Scope
from shared.web.deps import DbSession
from shared.web.http import Writer
from shared.web.refusals import refusals

router = APIRouter(prefix="/v1", tags=["disposition"])


@router.get("/exchange-lists/{list_id}", dependencies=[allow(Scope.DISPOSITION_OVERVIEW)], responses=refusals(404))
def get_list(list_id: str, session: DbSession, request: Request, caller: CallerDep) -> dict[str, Any]:
    return queries.get_list(list_id, session, request, caller)


@router.post(
    "/exchange-lists", dependencies=[allow(Scope.DISPOSITION_PROPOSE)], status_code=201, responses=refusals(409, 413)
)
def create_list(
    body: ListRequest,
    command: Writer,
):
    """A list of captives for an exchange with a counterpart state (e.g. 1,000 for 1,000)."""
    return exchange_lists.create_list(body, command)


@router.post(
    "/exchange-lists/{list_id}/check",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def check_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Check the list as a whole: one result per entry, the blocked ones with their reasons."""
    return exchange_lists.check_list(list_id, command, body)


@router.post(
    "/exchange-lists/{list_id}/proposal",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def propose_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Propose the entries the last check found eligible (the blocked ones stay off)."""
    return exchange_lists.propose_list(list_id, command, body)


@router.post(
    "/exchange-lists/{list_id}/approval",
    dependencies=[allow(Scope.DISPOSITION_APPROVE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def approve_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Approve by a person other than the proposer. Every proposed entry is checked again now: if
    any has become ineligible, the approval is refused (409, recorded), naming those entries and
    why; the list is then checked and proposed again."""
    return exchange_lists.approve_list(list_id, command, body)


@router.post(
    "/exchange-lists/{list_id}/execution",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def execute_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Record that the approved exchange took place, for the entries that are eligible at this
    moment: custody ends for each of them. The others stay in custody and are reported with their
    reasons. If none is eligible, the execution is refused (409, recorded)."""
    return exchange_lists.execute_list(list_id, command, body)
