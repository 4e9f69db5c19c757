"""Schemathesis against each service's OpenAPI document: the real apps in-process (their
relays and consumers running), real PostgreSQL and Kafka, the operator's token.

Every request schemathesis makes, valid or deliberately invalid (its coverage and fuzzing
phases, positive and negative data), must get an answer the document declares: no 5xx, a status
code it lists, the content type and body schema it gives for that status, and a 4xx for data the
schema forbids. A refused request must not append an event. Path parameters are now and then
replaced by ids that exist, so requests reach past "no such captive" into the writes.

Short by default (`make test`); `CHAOS_FULL=1` runs many more examples per operation (`make chaos`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.python import asgi

from deploy.postgres.cluster import create_database, drop_database
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from tests.support import CHAOS_FULL, HEADERS, build_app, registration, settings_for, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(3600 if CHAOS_FULL else 300),
    # Schemathesis' own strategies draw from `random` (its concern, not this test's).
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

SERVICES = ("intake", "status", "disposition")
DOCS = Path(__file__).resolve().parents[2] / "docs"
BASE_URL = f"http://{asgi.HOST}"
# Examples per operation in the fuzzing phase (the coverage phase adds its own, a fixed set).
# 100 keeps `make chaos`'s fuzz within about half an hour on two cores (59 operations; at 300 it
# ran past an hour): the coverage phase's fixed cases come on top, every run with a fresh seed.
EXAMPLES = 100 if CHAOS_FULL else 6

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)


def config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            # The token only: X-Purpose is a declared parameter, so it is fuzzed too.
            "headers": {"Authorization": HEADERS["Authorization"]},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "generation": {"max-examples": EXAMPLES},
            # The same requests on every `make test`; a fresh seed each time for `make chaos`.
            **({} if CHAOS_FULL else {"seed": 20250428}),
        }
    )


@dataclass
class Stack:
    apps: dict[str, FastAPI]
    # Each app reached in-process through schemathesis' requests adapter; the TestClient that
    # runs the app's lifespan (migrations, relay, consumer) is entered by the fixture.
    sessions: dict[str, asgi.ASGIClient]


# Path parameter -> values that name something stored (registered captives, an exchange list).
KNOWN: dict[str, list[str]] = {}


def _seed(clients: dict[str, TestClient]) -> dict[str, list[str]]:
    captive_ids = []
    for surname, romanised in (("리", "Ri"), ("김", "Kim")):
        answer = clients["intake"].post("/v1/captives", json=registration(surname, romanised), headers=HEADERS)
        assert answer.status_code == 201, answer.text
        captive_ids.append(answer.json()["captive_id"])
    for service in ("status", "disposition"):
        for captive_id in captive_ids:
            wait_until(
                lambda c=clients[service], i=captive_id: c.get(f"/v1/captives/{i}", headers=HEADERS).status_code == 200,
                what=f"{service} to learn of {captive_id}",
            )
    exchange = {"counterpart_state": "RU", "agreement": "fuzzing", "captive_ids": captive_ids}
    answer = clients["disposition"].post("/v1/exchange-lists", json=exchange, headers=HEADERS)
    assert answer.status_code == 201, answer.text
    return {"captive_id": captive_ids, "list_id": [answer.json()["list_id"]]}


@pytest.fixture(scope="module")
def stack(postgres_server, kafka_bootstrap) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    databases: list[str] = []
    clients: dict[str, TestClient] = {}
    try:
        for service in SERVICES:
            databases.append(f"apifuzz_{service}_{suffix}")
            url = create_database(postgres_server, databases[-1])
            settings = settings_for(service, database_url=url, bootstrap=kafka_bootstrap, prefix=f"apifuzz{suffix}.")
            clients[service] = TestClient(build_app(service, settings)).__enter__()
        KNOWN.update(_seed(clients))
        yield Stack(
            apps={service: client.app for service, client in clients.items()},
            sessions={service: asgi.ASGIClient(client.app) for service, client in clients.items()},
        )
    finally:
        KNOWN.clear()
        for client in clients.values():
            client.__exit__(None, None, None)
        for name in databases:
            drop_database(postgres_server, name)


def contract(service: str) -> schemathesis.BaseSchema:
    """The committed OpenAPI document (tests/unit/test_contract_documents.py: what the app serves)."""
    schema = schemathesis.openapi.from_path(DOCS / f"openapi/{service}.json", config=config())

    @schema.hook
    def flatmap_path_parameters(_context, parameters):
        return _now_and_then_known(parameters)

    return schema


def _now_and_then_known(parameters: dict | None) -> st.SearchStrategy[dict | None]:
    """The generated path parameters, or the same with ids that exist in place of valid ones
    (invalid ones stay, so a request meant to be refused for its path still is)."""
    if not parameters:
        return st.just(parameters)
    replaceable = {
        name: st.sampled_from(values)
        for name, values in KNOWN.items()
        if isinstance(parameters.get(name), str)
        and (name != "captive_id" or re.fullmatch(CAPTIVE_ID_PATTERN, parameters[name]))
    }
    if not replaceable:
        return st.just(parameters)
    return st.just(parameters) | st.fixed_dictionaries(replaceable).map(lambda known: {**parameters, **known})


def _known_in_coverage(case) -> None:
    """The coverage phase takes no hook: its path ids are made up (CAP-0000-0000-0000), so every
    write about a captive would stop at 404 before its body is read. There, a well-formed id is
    replaced by one that exists (the fuzzing phase mixes both through the hook above)."""
    if getattr(getattr(case.meta, "phase", None), "name", None) != "coverage" or not case.path_parameters:
        return
    for name, values in KNOWN.items():
        value = case.path_parameters.get(name)
        if not isinstance(value, str) or value in values:
            continue
        if name == "captive_id" and not re.fullmatch(CAPTIVE_ID_PATTERN, value):
            continue  # a malformed id must still be refused for what it is
        case.path_parameters[name] = values[sum(map(ord, value)) % len(values)]


def call_and_check(case, stack: Stack, service: str) -> None:
    """One request through every check; a refusal must leave the event store as it was."""
    _known_in_coverage(case)
    app = stack.apps[service]
    correlation_id = f"fuzz-{uuid.uuid4().hex}"
    before = _last_position(app)
    response = case.call_and_validate(
        session=stack.sessions[service], base_url=BASE_URL, headers={"X-Correlation-ID": correlation_id}
    )
    if response.status_code >= 400:
        assert not _appended_by(app, correlation_id, after=before), (
            f"{case.method} {case.formatted_path} was refused ({response.status_code}) but appended an event"
        )


def _last_position(app: FastAPI) -> int:
    runtime = app.state.runtime
    events = runtime.definition.store_tables.events
    with runtime.sessions() as session:
        return session.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0))).scalar_one()


def _appended_by(app: FastAPI, correlation_id: str, *, after: int) -> list[str]:
    runtime = app.state.runtime
    events = runtime.definition.store_tables.events
    with runtime.sessions() as session:
        envelopes = session.execute(sa.select(events.c.envelope).where(events.c.position > after)).scalars()
        return [envelope for envelope in envelopes if f'"correlationid":"{correlation_id}"' in envelope]


intake = contract("intake")
status = contract("status")
disposition = contract("disposition")


@intake.parametrize()
def test_intake_answers_every_request_as_its_openapi_document_says(case, stack):
    call_and_check(case, stack, "intake")


@status.parametrize()
def test_status_answers_every_request_as_its_openapi_document_says(case, stack):
    call_and_check(case, stack, "status")


@disposition.parametrize()
def test_disposition_answers_every_request_as_its_openapi_document_says(case, stack):
    call_and_check(case, stack, "disposition")
