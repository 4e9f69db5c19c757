"""Every list a request may carry is bounded, and its OpenAPI document says so: no single request
can make an event larger than the broker takes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.disposition.requests import RiskRequest
from services.intake.requests import NotificationRequest
from services.status.requests import FindingRequest, HearingRequest
from shared.web.http import MAX_EVIDENCE_REFS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"


def request_schemas(document: dict) -> dict[str, dict]:
    """The component schemas request bodies use, directly or through others."""
    schemas = document["components"]["schemas"]
    text = json.dumps([op.get("requestBody", {}) for ops in document["paths"].values() for op in ops.values()])
    wanted, seen = [name.split("/")[-1] for name in _refs(text)], {}
    while wanted:
        name = wanted.pop()
        if name in seen or name not in schemas:
            continue
        seen[name] = schemas[name]
        wanted += [ref.split("/")[-1] for ref in _refs(json.dumps(schemas[name]))]
    return seen


def _refs(text: str) -> list[str]:
    return [part.split('"')[0] for part in text.split('"$ref": "')[1:]]


def _unbounded_arrays(node, path: str) -> list[str]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "array" and "maxItems" not in node:
            found.append(path)
        for key, value in node.items():
            found += _unbounded_arrays(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _unbounded_arrays(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("service", ["intake", "status", "disposition"])
def test_every_list_in_a_request_body_has_a_maximum_in_the_openapi_document(service):
    document = json.loads((DOCS / f"{service}.json").read_text())
    unbounded = [path for name, schema in request_schemas(document).items() for path in _unbounded_arrays(schema, name)]
    assert unbounded == []


def test_too_many_evidence_references_are_refused_naming_the_field():
    too_many = [f"exhibit {n}" for n in range(MAX_EVIDENCE_REFS + 1)]
    for model, body in (
        (FindingRequest, {"kind": "CARRIED_ARMS_OPENLY", "holds": True, "basis": "b"}),
        (HearingRequest, {"tribunal_id": "T-1", "held_at": "2025-02-01T09:00:00Z"}),
        (RiskRequest, {"destination": "KP", "outcome": "REAL_RISK", "assessor": "A", "basis": "b"}),
    ):
        with pytest.raises(ValidationError, match="evidence_refs"):
            model.model_validate({**body, "evidence_refs": too_many})


def test_a_notification_lists_each_field_it_sent_at_most_once_over():
    with pytest.raises(ValidationError, match="fields_sent"):
        NotificationRequest.model_validate({"fields_sent": ["surname"] * 100})


# A pattern whose every repetition has an upper bound, anchored at both ends, bounds the length.
BOUNDED_PATTERN = re.compile(r"\^(?:[^*+{}]|\{\d+(?:,\d+)?\})*\$")


def _unbounded_strings(node, path: str) -> list[str]:
    """Strings with no maximum: not a maxLength, an enum or const, a pattern of bounded length, or
    a date or date-time (parsed, and recorded as the time it names, never as the text sent)."""
    found = []
    if isinstance(node, dict):
        bounded = (
            "maxLength" in node
            or "enum" in node
            or "const" in node
            or node.get("format") in ("date", "date-time")
            or BOUNDED_PATTERN.fullmatch(node.get("pattern", ""))
        )
        if node.get("type") == "string" and not bounded:
            found.append(path)
        for key, value in node.items():
            found += _unbounded_strings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _unbounded_strings(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("service", ["intake", "status", "disposition"])
def test_every_text_in_a_request_body_has_a_maximum_in_the_openapi_document(service):
    document = json.loads((DOCS / f"{service}.json").read_text())
    unbounded = [
        path for name, schema in request_schemas(document).items() for path in _unbounded_strings(schema, name)
    ]
    assert unbounded == []


def test_the_text_check_flags_a_string_without_a_maximum():
    schema = {
        "properties": {
            "free": {"type": "string"},
            "open_pattern": {"type": "string", "pattern": "^[a-z]+$"},
            "unanchored": {"type": "string", "pattern": "[a-z]{2}"},
            "short": {"type": "string", "maxLength": 10},
            "code": {"type": "string", "pattern": "^[A-Z]{2}$"},
        }
    }
    assert _unbounded_strings(schema, "S") == [
        "S/properties/free",
        "S/properties/open_pattern",
        "S/properties/unanchored",
    ]
