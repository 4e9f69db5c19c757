"""Endpoints that record one fact about a captive, declared in a table instead of one function each.

Each row says the endpoint's path, who may call it, the body it takes, its name and its description
(FastAPI derives the operationId from the name and the description from the docstring, so the
published OpenAPI document is what one function per endpoint would give), and how the fact is
made from the body, with any guard that may refuse it (409, 422). The service's
`record` carries it out through its command pipeline."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.auth.roles import Scope
from shared.web.http import IfMatch, Writer
from shared.web.routes import Routes

# record(command, captive_id, body, fact, if_match): the service's way of recording a fact, where
# fact(aggregate, occurred_at) makes the event (or refuses).
Record = Callable[..., Any]


@dataclass(frozen=True)
class Fact:
    """One row of the table."""

    name: str  # the endpoint function's name: the OpenAPI operationId is made from it
    path: str
    scope: Scope  # what the caller's token must carry
    request: type[BaseModel]
    doc: str
    # (captive_id, body) -> fact(aggregate, occurred_at) -> the event, or a refusal (the service's
    # commands give the plain case and the guarded ones, e.g. services/intake/commands.py `plain`).
    make: Callable[[str, BaseModel], Callable[..., Any]]
    refusals: tuple[int, ...] = (404, 409, 413)


def add_fact_routes(
    routes: Routes, facts: Iterable[Fact], record: Record, *, captive_id: Any, response_model: type[BaseModel]
) -> None:
    """Add each fact's POST route, in order. `captive_id`: the path parameter's annotation."""
    for fact in facts:
        write = routes.write(fact.path, fact.scope, *fact.refusals, response_model=response_model)
        write(_endpoint(fact, record, captive_id))


def _endpoint(fact: Fact, record: Record, captive_id_type: Any) -> Callable[..., Any]:
    def endpoint(captive_id: str, body: BaseModel, command, if_match: str | None = None):
        return record(command, captive_id, body, fact.make(captive_id, body), if_match)

    endpoint.__name__ = endpoint.__qualname__ = fact.name
    endpoint.__doc__ = fact.doc
    parameter = inspect.Parameter
    endpoint.__signature__ = inspect.Signature(
        [
            parameter("captive_id", parameter.POSITIONAL_OR_KEYWORD, annotation=captive_id_type),
            parameter("body", parameter.POSITIONAL_OR_KEYWORD, annotation=fact.request),
            parameter("command", parameter.POSITIONAL_OR_KEYWORD, annotation=Writer),
            parameter("if_match", parameter.POSITIONAL_OR_KEYWORD, annotation=IfMatch, default=None),
        ]
    )
    return endpoint
