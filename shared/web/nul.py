"""Text a service keeps may hold any Unicode character but U+0000: PostgreSQL's text columns
cannot store it. `RefuseNul`, an ASGI middleware, answers 422 naming the field, the query
parameter or the path that holds one, before the app reads the request, so such a request never
half-reaches the database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.limits import BODY_METHODS, is_json

# A JSON escape of U+0000 (`\u0000`), not preceded by an escaped backslash (`\\u0000` is text).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
MESSAGE = "text cannot contain the NUL character (U+0000)"


def nul_locations(value: Any, where: tuple = ()) -> Iterator[tuple]:
    """Where in a parsed JSON value a string (a value or a key) holds U+0000."""
    if isinstance(value, str):
        if "\x00" in value:
            yield where
    elif isinstance(value, dict):
        for key, inner in value.items():
            if "\x00" in key:
                yield (*where, key)  # a field no model has; what it holds does not matter
            else:
                yield from nul_locations(inner, (*where, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from nul_locations(inner, (*where, index))


def _body_problems(body: bytes) -> list[tuple]:
    if not _ESCAPED_NUL.search(body) and b"\x00" not in body:
        return []  # the usual case: nothing to parse
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return []  # not JSON after all: the app refuses it as such
    return [("body", *where) for where in nul_locations(parsed)]


def _url_problems(scope: Scope) -> list[tuple]:
    problems: list[tuple] = [("path",)] if "\x00" in scope.get("path", "") else []
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            problems.append(("query", name))
    return problems


class RefuseNul:
    """ASGI middleware: a request whose path, query or JSON body holds U+0000 is answered 422,
    one problem per place, in the same shape as every other invalid input."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = _url_problems(scope)
        body = None
        if scope["method"] in BODY_METHODS:
            body = await _read(receive)
            if body is None:
                return  # the client has gone
            if is_json(Headers(scope=scope).get("content-type"), body):
                problems += _body_problems(body)
        if problems:
            detail = [{"type": "value_error", "loc": list(where), "msg": MESSAGE} for where in problems]
            await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)
            return
        if body is None:
            await self.app(scope, receive, send)
            return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
