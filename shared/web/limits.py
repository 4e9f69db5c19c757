"""Limits on what one client may ask of a service: how large a request body may be and how deeply
its JSON may nest (`RequestLimits`, an ASGI middleware), and how many requests one key, such as an
agency, may make per minute (`RateLimiter`)."""

from __future__ import annotations

import json
import math
import re
import time
from array import array
from itertools import accumulate

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Methods whose body the middleware checks; the others pass through unread.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Once escaped backslashes and escaped quotes are gone, a JSON string literal is a quote, anything
# but a quote, and a quote. Without its closing quote a string runs to the end of the text, as it
# does for the parser, which reads nothing after it.
_STRING = re.compile(rb'"[^"]*"?')
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in _BRACKETS)
# Opening brackets become 1 and closing ones -1 once read as signed bytes.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in the JSON text `body` (0 for a scalar), without parsing it.

    String literals are removed first, so brackets and escaped quotes inside them do not count;
    the depth is then the highest running total of the brackets that remain. Every step runs in
    C: about 6 ms per megabyte of ordinary JSON, at worst about 0.1 s per megabyte for a body of
    nothing but tiny strings or brackets. For valid JSON the answer is exact. For invalid JSON it
    is never lower than the depth a parser reaches before it gives up: until the first error the
    scan and the parser read the same strings and the same brackets.
    """
    # Escapes pair up from the left, as a JSON lexer reads them: first every escaped backslash,
    # after which a backslash before a quote can only escape it. Outside strings a backslash is
    # already an error, where the parser stops.
    text = _as_utf8(body).replace(b"\\\\", b"").replace(b'\\"', b"")
    steps = _STRING.sub(b"", text).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps), initial=0))


def _as_utf8(body: bytes) -> bytes:
    """`body` as UTF-8, decoded as `json.loads` decodes bytes. JSON may come as UTF-16 or UTF-32,
    where one byte of a character can equal a quote or a bracket; in UTF-8 it never can."""
    encoding = json.detect_encoding(body)
    if encoding.startswith("utf-8"):
        return body
    try:
        return body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeError:  # the parser cannot decode it either, so it reads no brackets at all
        return body


def is_json(content_type: str | None, body: bytes) -> bool:
    """Whether a parser may read `body` as JSON: it says it is, or it says nothing."""
    if not content_type:
        return bool(body)
    subtype = content_type.split(";", 1)[0].strip().lower().rpartition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


class RequestLimits:
    """ASGI middleware that refuses a request body larger than `max_body_bytes` (413) or JSON that
    nests arrays and objects deeper than `max_json_depth` (400), before the app reads either.

    The size is checked against Content-Length when there is one, and in any case by counting the
    bytes as they arrive, so a chunked body is stopped at the chunk that passes the limit and no
    more than `max_body_bytes` is kept. A body within the limit is read whole, its JSON depth
    checked, and handed to the app unchanged. Python's parser recurses once per level of nesting
    and gives up with a RecursionError near 1,000 levels (which FastAPI answers with a bare 400),
    having built every level up to there; the scan refuses such a body before the parser runs,
    and says which limit it passed.

    Only POST, PUT, PATCH and DELETE are checked; other methods, websockets and lifespan events
    pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        if max_body_bytes < 0 or max_json_depth < 0:
            raise ValueError("limits cannot be negative")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _declared_length(headers) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client has gone; nobody is left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        body = b"".join(chunks)

        if is_json(headers.get("content-type"), body) and json_depth(body) > self.max_json_depth:
            detail = f"JSON nesting is deeper than {self.max_json_depth} levels"
            await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
            return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:  # later calls wait for the disconnect, as the app would have without us
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The rest of the body stays unread, so the connection cannot carry another request.
        response = JSONResponse(
            {"detail": f"request body is larger than {self.max_body_bytes} bytes"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _declared_length(headers: Headers) -> int:
    """The Content-Length, or 0 when absent or unreadable (the bytes are counted anyway)."""
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


class RateLimiter:
    """How many requests each key (an agency) may make per minute, over a moving window: a
    request is allowed when fewer than `per_minute` of that key's requests were allowed in the
    60 seconds before it. Keys are counted separately.

    The counts live in this process (`limits`' memory storage), which is right for one instance
    of a service. Several instances behind one address each count on their own, so a key could
    make `per_minute` requests to each; they need a shared storage instead, such as Redis, which
    `limits` supports: `RateLimiter("redis://host:6379")` (with the `redis` package installed).
    """

    def __init__(self, storage_uri: str = "memory://") -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def hit(self, key: str, per_minute: int) -> float | None:
        """Count one request by `key`. None when it is allowed; when it is refused, the seconds
        until `key` may make its next request (whole seconds, at least 1: a Retry-After value).

        A refused request is not counted. The limit is part of what is counted against, so a key
        whose `per_minute` changes starts a fresh window.
        """
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        item = RateLimitItemPerMinute(per_minute)
        if self._limiter.hit(item, key):
            return None
        reset_at, _remaining = self._limiter.get_window_stats(item, key)
        return float(max(1, math.ceil(reset_at - time.time())))
