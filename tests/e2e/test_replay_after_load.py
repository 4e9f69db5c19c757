"""Replay reproduces the live read models after a realistic load (issue 18, item 2): the three
services as real processes on real Kafka and PostgreSQL, `captives demo`, a short schemathesis
fuzz of every service's API (the requests of tests/integration/test_api_fuzz.py, with the
demo's captives and exchange lists as known ids), then `captives replay <service> --verify` for
all three, each of which must report a match: whatever the consumers applied, held back behind a
dead letter or discarded, replay treats the same way."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import strategies as st
from rich.console import Console

from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from tests.support import HEADERS, settled, wait_until
from tools.demo.run import run_demo

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(1800),
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

SERVICES = ("intake", "status", "disposition")
DOCS = Path(__file__).resolve().parents[2] / "docs"
# As tests/integration/test_api_fuzz.py checks every answer (importing it would sign in at collection).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)
EXAMPLES = 4  # per operation in the fuzzing phase: short (the coverage phase adds its fixed set)

# Path parameter -> ids the demo stored (its captives, its exchange lists).
KNOWN: dict[str, list[str]] = {}
STACK: dict = {}


def config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "generation": {"max-examples": EXAMPLES},
            "seed": 20251201,
        }
    )


def contract(service: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_path(DOCS / f"openapi/{service}.json", config=config())

    @schema.hook
    def flatmap_path_parameters(_context, parameters):
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

    return schema


def known_in_coverage(case) -> None:
    """The coverage phase's made-up ids replaced by the demo's (as tests/integration/test_api_fuzz.py does)."""
    if getattr(getattr(case.meta, "phase", None), "name", None) != "coverage" or not case.path_parameters:
        return
    for name, values in KNOWN.items():
        value = case.path_parameters.get(name)
        if not isinstance(value, str) or value in values:
            continue
        if name == "captive_id" and not re.fullmatch(CAPTIVE_ID_PATTERN, value):
            continue
        case.path_parameters[name] = values[sum(map(ord, value)) % len(values)]


def fuzz(case, service: str) -> None:
    assert STACK, "the demo did not load (test_the_demo_loads runs first)"
    known_in_coverage(case)
    case.call_and_validate(
        base_url=str(STACK[service].base_url), headers={"Authorization": HEADERS["Authorization"]}, timeout=30
    )


def test_the_demo_loads(stack, keycloak):
    STACK.update(stack)
    output = io.StringIO()
    loaded = run_demo(
        {service: str(stack[service].base_url) for service in SERVICES},
        keycloak.credentials,
        console=Console(file=output, width=160, color_system=None),
    )
    assert len(loaded.captives) == 8 and loaded.lists, output.getvalue()[-3000:]
    KNOWN["captive_id"] = sorted(loaded.captives.values())
    KNOWN["list_id"] = sorted(loaded.lists.values())
    KNOWN["disposition_id"] = sorted(loaded.transfers.values())


intake = contract("intake")
status = contract("status")
disposition = contract("disposition")


@intake.parametrize()
def test_intake_fuzzed_after_the_demo(case):
    fuzz(case, "intake")


@status.parametrize()
def test_status_fuzzed_after_the_demo(case):
    fuzz(case, "status")


@disposition.parametrize()
def test_disposition_fuzzed_after_the_demo(case):
    fuzz(case, "disposition")


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_replay_verify_matches_live_on_every_service_after_the_demo_and_the_fuzz(stack):
    assert KNOWN, "the demo did not load"
    wait_until(
        lambda: settled(stack), timeout_s=300, interval_s=1.0, what="every outbox drained, every consumer caught up"
    )
    for service in ("status", "disposition"):
        listed = cli(stack, "dlq", "list", service)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        print(listed.stdout)
    for service in SERVICES:
        replayed = cli(stack, "replay", service, "--verify")
        assert replayed.returncode == 0 and "match:" in replayed.stdout, (
            f"{service}:\n" + replayed.stdout[-6000:] + replayed.stderr[-3000:]
        )
