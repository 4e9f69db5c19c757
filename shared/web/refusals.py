"""What the services answer when they refuse a request, as their OpenAPI documents declare it:
one body shape for every refusal and one sentence per status code, so each endpoint lists the
codes it can really give (`responses=refusals(404, 409, 413)`) and clients can rely on them.

Every endpoint behind a token answers 400, 401, 403, 422 and 429 (`CALLER_REFUSALS`, declared
where shared/service.py puts the token check in front of the routers); what an endpoint adds to
that (a captive it does not know, a conflict with what is recorded, a body too large) it
declares itself."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Problem(BaseModel):
    """One thing wrong with the request: where (e.g. ["body", "surname", "value"]) and what."""

    type: str
    loc: list[str | int]
    msg: str


class Refusal(BaseModel):
    """Why the request was refused: a sentence, or for invalid input (422) the list of problems,
    each naming where it is. Some refusals add fields: a version conflict (409) names the
    stream and its current version."""

    model_config = ConfigDict(extra="allow")

    detail: str | list[Problem]


REASONS = {
    400: "a malformed header (If-Match, X-Purpose) or JSON nested too deeply",
    401: "no valid access token, or its client has been revoked",
    403: "the token lacks the scope this endpoint needs, or the caller may not do this",
    404: "no such captive, list or disposition (also what a partner state is told of a captive it may not see)",
    409: "the request contradicts what is recorded, or the record changed since the version it is based on",
    413: (
        "the request body is larger than the service accepts (AUTH_MAX_BODY_BYTES), or the event it would "
        "record is larger than the broker takes (the answer names its size and the limit; nothing is recorded)"
    ),
    422: "the input is invalid: the message names each field that is missing or wrong",
    428: "this write overwrites a value, so it must send If-Match with the version it is based on",
    429: "the caller's agency is over its rate of requests; Retry-After says when to try again",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may refuse with `codes`."""
    return {code: {"model": Refusal, "description": REASONS[code]} for code in codes}


CALLER_REFUSALS = refusals(400, 401, 403, 422, 429)
