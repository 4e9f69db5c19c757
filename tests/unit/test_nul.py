"""U+0000 in request text (shared/web/nul.py): refused with 422 naming each place, in any JSON
encoding; the six characters `\\u0000` written as text, and every other body, reach the app
byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import Body, FastAPI, Request, Response
from fastapi.testclient import TestClient

from shared.web.nul import RefuseNul, nul_locations


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.get("/echo")
    def echo_query(q: str = "") -> dict:
        return {"q": q}

    @app.post("/parsed")
    def parsed(payload: Any = Body()) -> Any:
        return payload

    app.add_middleware(RefuseNul)
    return TestClient(app)


def test_every_place_holding_nul_is_found():
    value = {"a": "x\x00", "b": [{"c": "ok"}, {"d\x00": "\x00"}, ["\x00"]], "e": 0}
    assert list(nul_locations(value)) == [("a",), ("b", 1, "d\x00"), ("b", 2, 0)]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "utf-32"])
def test_a_nul_in_a_json_body_is_refused_naming_the_field(client, encoding):
    body = json.dumps({"surname": {"value": "김\x00철"}}, ensure_ascii=False).encode(encoding)
    answer = client.post("/echo", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "surname", "value"] and "U+0000" in problem["msg"]


def test_an_escaped_backslash_before_u0000_is_text_and_passes(client):
    body = json.dumps({"note": "C:\\u0000"}).encode()  # the characters \, u, 0, 0, 0, 0
    assert b"\\\\u0000" in body
    answer = client.post("/parsed", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json() == {"note": "C:\\u0000"}


def test_other_bodies_reach_the_app_unchanged(client):
    body = json.dumps({"name": "محمد 김 Ким 🙂"}, ensure_ascii=False).encode()
    assert client.post("/echo", content=body, headers={"content-type": "application/json"}).content == body
    text = b"not json \x00 at all"
    assert client.post("/echo", content=text, headers={"content-type": "text/plain"}).content == text


def test_a_nul_in_the_query_or_the_path_is_refused(client):
    answer = client.get("/echo?q=a%00b")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "q"]
    answer = client.get("/ec%00ho")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["path"]
    assert client.get("/echo?q=%E2%80%8F").json() == {"q": "\u200f"}
