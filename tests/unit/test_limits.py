"""Request limits: a body over the byte limit is refused with 413 whether or not it declares its
length, JSON nested deeper than allowed is refused with 400 before the app parses it, everything
else reaches the app byte for byte; and the per-key rate limiter refuses the request after the
allowed number, with a Retry-After, without touching other keys."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import Body, FastAPI, Request, Response, WebSocket
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from shared.web.limits import RateLimiter, RequestLimits, json_depth

MAX_BYTES = 1024
MAX_DEPTH = 4


def reference_depth(value: Any) -> int:
    """Nesting depth by the definition, from the parsed value."""
    if isinstance(value, list):
        return 1 + max(map(reference_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(reference_depth, value.values()), default=0)
    return 0


# Strings drawn from the characters that could fool a scanner.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\,:ab\u2200\u5b22\n'), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=30,
)


@given(json_values, st.booleans())
def test_depth_scan_agrees_with_the_parsed_value(value, ensure_ascii):
    assert json_depth(json.dumps(value, ensure_ascii=ensure_ascii).encode()) == reference_depth(value)


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"42", 0),
        (b'"[[[["', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (rb'{"a": "[[[[\"]]]"}', 1),  # an escaped quote does not end the string
        (rb'["\\", [[]]]', 3),  # an escaped backslash does not escape the quote after it
        (rb'["\\\"[[[[", [[]]]', 3),  # backslash, then escaped quote: still inside the string
        (rb'["\\\\\\\\", {"[": "]"}]', 2),
        (b'["}}}}{{{{", ["]]]]"]]', 2),
        (b"  [ [ 1 , 2 ] ,\n [ ] ]  ", 2),
    ],
)
def test_depth_scan_ignores_brackets_inside_strings(body, depth):
    assert json_depth(body) == depth
    if body:  # the expected depth is the parser's too
        assert reference_depth(json.loads(body)) == depth


def test_depth_scan_counts_what_a_parser_reads_of_invalid_json():
    assert json_depth(b"[[[[[[") == 6  # unclosed: the parser recurses all the same
    assert json_depth(b'[[[ "unterminated [[[[') == 3
    assert json_depth(b"]]][[") == 0  # the parser stops at the first ]


def test_depth_scan_reads_utf16_json_as_the_parser_does():
    # U+2200 is 00 22 in UTF-16-LE: read as bytes, it would close the string early and hide the
    # nesting that follows inside what looked like another string.
    deep = ("[" * 50) + ("]" * 50)
    body = f'["\u2200", {deep}]'.encode("utf-16")
    assert json.loads(body)[0] == "\u2200"
    assert json_depth(body) == 51


def test_depth_scan_of_a_batch_of_registrations():
    registration = {"surname": {"answer": "GIVEN", "value": "리", "romanised": "Ri [sic] {x}"}, "nationality": "KP"}
    body = json.dumps({"captives": [registration] * 1000}, ensure_ascii=False).encode()
    assert json_depth(body) == 4  # object, captives array, registration, surname


# The middleware, in front of a small app.


def limited_app(received: list[bytes] | None = None, started: list[str] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app):
        if started is not None:
            started.append("started")
        yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        if received is not None:
            received.append(body)
        return Response(body, headers={"x-content-length": request.headers.get("content-length", "absent")})

    @app.get("/echo")
    async def echo_get(request: Request) -> Response:
        return Response(await request.body())

    @app.post("/parsed")
    def parsed(payload: Any = Body()) -> Any:
        if received is not None:
            received.append(b"parsed")
        return payload

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app.add_middleware(RequestLimits, max_body_bytes=MAX_BYTES, max_json_depth=MAX_DEPTH)
    return app


@pytest.fixture
def received() -> list[bytes]:
    return []


@pytest.fixture
def client(received) -> TestClient:
    return TestClient(limited_app(received), raise_server_exceptions=False)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_body_over_the_declared_limit_is_refused_unread(client, received):
    response = client.post("/echo", content=b"x" * (MAX_BYTES + 1))
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body is larger than {MAX_BYTES} bytes"}
    assert response.headers["connection"] == "close"
    assert received == []


def test_a_streamed_body_over_the_limit_is_refused(client, received):
    def chunks():
        for _ in range(3):
            yield b"y" * 512

    response = client.post("/echo", content=chunks())
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body is larger than {MAX_BYTES} bytes"}
    assert received == []


def test_a_streamed_body_within_the_limit_reaches_the_app(client):
    def chunks():
        yield b'{"a": '
        yield b'"b"}'

    response = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.content == b'{"a": "b"}'
    assert response.headers["x-content-length"] == "absent"  # it really came without a length


def test_a_body_exactly_at_the_limit_passes(client):
    body = b"z" * MAX_BYTES
    response = client.post("/echo", content=body)
    assert response.status_code == 200
    assert response.content == body


def test_json_nested_one_level_too_deep_is_refused_before_the_app_parses_it(client, received):
    response = client.post("/parsed", content=nested(MAX_DEPTH + 1), headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"detail": f"JSON nesting is deeper than {MAX_DEPTH} levels"}
    assert received == []


def test_json_nested_exactly_to_the_limit_is_parsed(client, received):
    response = client.post("/parsed", content=nested(MAX_DEPTH), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json() == json.loads(nested(MAX_DEPTH))
    assert received == [b"parsed"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/problem+json", None])
def test_deep_nesting_is_refused_for_every_body_read_as_json(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/echo", content=nested(MAX_DEPTH + 1), headers=headers)
    assert response.status_code == 400


def test_deep_nesting_in_a_body_that_is_not_json_is_left_alone(client):
    response = client.post("/echo", content=nested(MAX_DEPTH + 1), headers={"content-type": "text/plain"})
    assert response.status_code == 200
    assert response.content == nested(MAX_DEPTH + 1)


def test_a_json_body_reaches_the_app_intact(client):
    body = json.dumps({"surname": "리", "note": 'brackets [{"in": "text"}] \\ and "quotes"'}, ensure_ascii=False)
    response = client.post("/echo", content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.content == body.encode()
    assert response.headers["x-content-length"] == str(len(body.encode()))


@pytest.mark.parametrize("body", [b'{"a": "\xff\xfe"}', b'{"a": "\x00"}', b"\x00\x00\x00", b"\xff" * 10])
def test_invalid_utf8_and_nul_bytes_are_answered_without_a_server_error(client, body):
    parsed = client.post("/parsed", content=body, headers={"content-type": "application/json"})
    assert 400 <= parsed.status_code < 500
    echoed = client.post("/echo", content=body, headers={"content-type": "application/json"})
    assert echoed.status_code == 200
    assert echoed.content == body


def test_methods_without_a_body_pass_through_unchecked(client):
    response = client.request("GET", "/echo", content=b"q" * (MAX_BYTES * 2))
    assert response.status_code == 200
    assert len(response.content) == MAX_BYTES * 2


def test_lifespan_and_websockets_pass_through():
    started: list[str] = []
    with TestClient(limited_app(started=started)) as client:
        assert started == ["started"]
        with client.websocket_connect("/ws") as websocket:
            websocket.send_text("[" * 50)
            assert websocket.receive_text() == "[" * 50


# The middleware as a server calls it, to see exactly what it reads.


async def echo_app(scope, receive, send) -> None:
    """Echoes the body, and names the message that follows it (a server sends the disconnect)."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    after = (await receive())["type"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-after-body", after)]})
    await send({"type": "http.response.body", "body": body})


def serve(chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[dict, bytes, int]:
    """Runs one POST through the middleware as a server would; returns the response start, the
    response body and how many messages of the request the middleware and the app asked for."""
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        if pulled > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    middleware = RequestLimits(echo_app, max_body_bytes=MAX_BYTES, max_json_depth=MAX_DEPTH)
    asyncio.run(middleware(scope, receive, send))
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return sent[0], body, pulled


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    start, _body, pulled = serve([b"c" * 512] * 100, [(b"content-length", b"1000000000")])
    assert start["status"] == 413
    assert pulled == 0


def test_a_long_body_is_read_only_until_it_passes_the_limit():
    start, _body, pulled = serve([b"c" * 512] * 100, [(b"content-type", b"application/octet-stream")])
    assert start["status"] == 413
    assert pulled == MAX_BYTES // 512 + 1


def test_a_body_in_many_chunks_reaches_the_app_whole_and_then_the_disconnect():
    chunks = [b'{"a": [', b"1, 2", b"", b", 3]}"]
    start, body, _pulled = serve(chunks, [(b"content-type", b"application/json")])
    assert start["status"] == 200
    assert body == b"".join(chunks)
    assert dict(start["headers"])[b"x-after-body"] == b"http.disconnect"


# The rate limiter.


def test_a_key_is_refused_after_its_limit_with_a_retry_after():
    limiter = RateLimiter()
    assert [limiter.hit("UA-coordination-HQ", per_minute=3) for _ in range(3)] == [None, None, None]
    retry_after = limiter.hit("UA-coordination-HQ", per_minute=3)
    assert retry_after is not None
    assert retry_after == int(retry_after)
    assert 59 <= retry_after <= 60  # the first of the three leaves the window a minute after it came
    assert limiter.hit("UA-coordination-HQ", per_minute=3) is not None  # refusals do not reopen it


def test_one_key_exhausting_its_limit_leaves_another_alone():
    limiter = RateLimiter()
    for _ in range(2):
        limiter.hit("agency-a", per_minute=2)
    assert limiter.hit("agency-a", per_minute=2) is not None
    assert limiter.hit("agency-b", per_minute=2) is None
    assert limiter.hit("agency-b", per_minute=2) is None
    assert limiter.hit("agency-b", per_minute=2) is not None


def test_limiters_do_not_share_counts():
    first, second = RateLimiter(), RateLimiter()
    assert first.hit("agency-a", per_minute=1) is None
    assert second.hit("agency-a", per_minute=1) is None


def test_a_limit_below_one_is_a_mistake():
    with pytest.raises(ValueError):
        RateLimiter().hit("agency-a", per_minute=0)
