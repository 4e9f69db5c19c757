"""The contract documents under docs/ (shared/contracts/documents.py): the committed ones are what
the code generates, no committed event schema is changed in a way that refuses events written
under it, the compatibility check itself, and the AsyncAPI document's structure."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field
from referencing import Registry, Resource
from typer.testing import CliRunner

from services.disposition.app import definition as disposition
from services.intake.app import definition as intake
from services.status.app import definition as status
from shared.contracts import EventEnvelope, encode, registered_types
from shared.contracts import documents as docs
from shared.contracts.compatibility import incompatibilities
from shared.contracts.intake import CaptiveRegistered
from shared.contracts.withheld import Withheld
from tests.support import registration
from tools import contracts

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "Run `captives contracts write` (or `make contracts`) and commit the result."


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return contracts.current_documents()


@pytest.fixture(scope="module")
def asyncapi(generated) -> dict:
    return yaml.safe_load(generated[docs.ASYNCAPI_FILE])


def out_of_date(generated: dict[str, str], prefix: str) -> list[str]:
    return [path for path in docs.stale(DOCS, generated) if path.startswith(prefix)]


# --- (a) the committed documents are up to date -----------------------------------------------


def test_the_committed_asyncapi_document_is_what_the_code_generates(generated):
    assert not out_of_date(generated, docs.ASYNCAPI_FILE), f"docs/asyncapi.yaml is out of date. {REGENERATE}"


def test_the_committed_openapi_documents_are_what_the_services_serve(generated):
    stale = out_of_date(generated, "openapi/")
    assert not stale, f"out of date: {', '.join(f'docs/{path}' for path in stale)}. {REGENERATE}"


def test_the_committed_event_schemas_are_what_the_models_generate(generated):
    stale = out_of_date(generated, "schemas/")
    assert not stale, (
        f"out of date: {', '.join(f'docs/{path}' for path in stale)}. {REGENERATE} If the change to an event is "
        "not backward compatible (the next test says), keep that version's model as it was and register the "
        "change as a new schema version beside it."
    )


# --- (b) a committed event schema is a frozen contract -----------------------------------------


def test_every_committed_event_schema_still_accepts_the_events_written_under_it(generated):
    breaking = docs.breaking_changes(DOCS, generated)
    assert not breaking, "incompatible changes to committed event schemas (register a new version instead):\n" + (
        "\n".join(f"docs/{path}: {problem}" for path, problems in breaking.items() for problem in problems)
    )


def test_every_registered_event_version_has_a_committed_schema():
    for event_type, version in registered_types():
        assert (DOCS / docs.schema_file(event_type, version)).is_file(), f"{event_type} v{version}: {REGENERATE}"


def committed_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "docs"
    shutil.copytree(DOCS, copy)
    return copy


def test_write_refuses_an_incompatible_change_to_a_committed_schema(tmp_path, generated, monkeypatch):
    monkeypatch.setattr(contracts, "current_documents", lambda: generated)
    root = committed_copy(tmp_path)
    frozen = root / docs.schema_file("CustodyEnded", 1)
    # As if v1 had been committed with a field the current model no longer has.
    older = json.loads(frozen.read_text())
    older["properties"]["note"] = {"type": "string"}
    frozen.write_text(json.dumps(older))
    (root / docs.ASYNCAPI_FILE).write_text("stale")

    result = CliRunner().invoke(contracts.contracts, ["write", "--docs", str(root)])

    assert result.exit_code == 1
    assert "note: removed" in result.output and "new version" in result.output
    assert json.loads(frozen.read_text()) == older  # nothing was written, not even the other documents
    assert (root / docs.ASYNCAPI_FILE).read_text() == "stale"


def test_write_adds_a_new_version_and_check_then_passes(tmp_path, generated, monkeypatch):
    monkeypatch.setattr(contracts, "current_documents", lambda: generated)
    root = committed_copy(tmp_path)
    (root / docs.schema_file("CustodyEnded", 1)).unlink()  # as if v1 were new

    runner = CliRunner()
    assert runner.invoke(contracts.contracts, ["check", "--docs", str(root)]).exit_code == 1
    written = runner.invoke(contracts.contracts, ["write", "--docs", str(root)])
    checked = runner.invoke(contracts.contracts, ["check", "--docs", str(root)])

    assert written.exit_code == 0, written.output
    assert "CustodyEnded" in written.output
    assert checked.exit_code == 0, checked.output


def test_a_committed_version_whose_model_is_gone_is_reported(tmp_path, generated):
    root = committed_copy(tmp_path)
    shutil.copy(root / docs.schema_file("CustodyEnded", 1), root / docs.schema_file("CustodyEnded", 9))
    assert list(docs.breaking_changes(root, generated)) == [docs.schema_file("CustodyEnded", 9)]


# --- (c) the compatibility check ---------------------------------------------------------------


def object_schema(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": list(required)}


TEXT = {"type": "string"}
OLD = object_schema(
    {"captive_id": TEXT, "kind": {"enum": ["EXCHANGED", "RELEASED"], "type": "string"}}, ("captive_id",)
)


def test_an_identical_schema_is_compatible():
    assert incompatibilities(OLD, OLD) == []


def test_a_new_optional_field_is_compatible():
    new = object_schema({**OLD["properties"], "note": TEXT}, ("captive_id",))
    assert incompatibilities(OLD, new) == []


def test_a_new_required_field_is_reported():
    new = object_schema({**OLD["properties"], "note": TEXT}, ("captive_id", "note"))
    assert incompatibilities(OLD, new) == ["note: now required (events written before may lack it)"]


def test_making_an_optional_field_required_is_reported():
    assert incompatibilities(OLD, object_schema(OLD["properties"], ("captive_id", "kind"))) == [
        "kind: now required (events written before may lack it)"
    ]


def test_a_removed_field_is_reported_when_unknown_fields_are_refused():
    new = object_schema({"captive_id": TEXT}, ("captive_id",))
    assert incompatibilities(OLD, new) == ["kind: removed (events that carry it are refused)"]
    assert incompatibilities(OLD, {**new, "additionalProperties": True}) == []


def test_a_changed_type_is_reported():
    new = object_schema({**OLD["properties"], "captive_id": {"type": "integer"}}, ("captive_id",))
    assert incompatibilities(OLD, new) == ["captive_id: type string narrowed to integer"]


def test_integers_may_become_numbers_but_not_the_other_way():
    assert incompatibilities({"type": "integer"}, {"type": "number"}) == []
    assert incompatibilities({"type": "number"}, {"type": "integer"}) == ["<root>: type number narrowed to integer"]


def test_a_removed_enum_value_is_reported_and_an_added_one_is_not():
    def kinds(*values):
        return object_schema({**OLD["properties"], "kind": {"enum": list(values), "type": "string"}}, ("captive_id",))

    assert incompatibilities(OLD, kinds("EXCHANGED", "RELEASED", "TRANSFERRED")) == []
    assert incompatibilities(OLD, kinds("EXCHANGED")) == ["kind: value(s) 'RELEASED' no longer accepted"]


def test_tightened_constraints_are_reported_and_loosened_ones_are_not():
    old = {"type": "string", "maxLength": 200, "minLength": 1}
    assert incompatibilities(old, {"type": "string", "maxLength": 400}) == []
    assert incompatibilities(old, {**old, "maxLength": 100}) == ["<root>: maxLength tightened from 200 to 100"]
    assert incompatibilities(old, {**old, "pattern": "^[A-Z]+$"}) == [
        "<root>: pattern changed from 'none' to '^[A-Z]+$'"
    ]
    assert incompatibilities({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 0}) == []
    assert incompatibilities({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 2}) == [
        "<root>: minimum tightened from 1 to 2"
    ]


def test_null_may_be_allowed_but_not_taken_away():
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert incompatibilities(TEXT, nullable) == []
    assert incompatibilities(nullable, TEXT) == ["<root>: type null narrowed to string"]


def test_array_items_are_compared():
    old = {"type": "array", "items": {"type": "string", "maxLength": 64}}
    new = {"type": "array", "items": {"type": "string", "maxLength": 32}}
    assert incompatibilities(old, new) == ["[]: maxLength tightened from 64 to 32"]


def test_refs_into_defs_are_followed_and_recursion_ends():
    def tree(*kinds):
        return {
            "$defs": {
                "Node": object_schema({"kind": {"enum": list(kinds)}, "children": {"type": "array", "items": node}}),
            },
            **node,
        }

    node = {"$ref": "#/$defs/Node"}
    assert incompatibilities(tree("A", "B"), tree("A", "B", "C")) == []
    assert incompatibilities(tree("A", "B"), tree("A")) == ["kind: value(s) 'B' no longer accepted"]


class Before(BaseModel):
    model_config = ConfigDict(extra="forbid")
    place: str = Field(max_length=200)


class Sealable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    place: str | Withheld = Field(max_length=200)


def test_pydantic_models_letting_a_value_be_withheld_is_compatible_and_the_reverse_is_not():
    assert incompatibilities(Before.model_json_schema(), Sealable.model_json_schema()) == []
    assert incompatibilities(Sealable.model_json_schema(), Before.model_json_schema()) == [
        "place: type object narrowed to string"
    ]


# --- (d) the AsyncAPI document is well formed ---------------------------------------------------


def pointer(document: dict, ref: str):
    assert ref.startswith("#/"), ref
    target = document
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def refs(value):
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for inner in value.values():
            yield from refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from refs(inner)


def test_it_is_asyncapi_3_and_every_ref_resolves(asyncapi):
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["version"]
    found = set(refs(asyncapi))
    assert len(found) > 100
    for ref in found:
        pointer(asyncapi, ref)  # raises KeyError when a ref dangles


def test_every_operation_names_messages_of_its_own_channel(asyncapi):
    for name, operation in asyncapi["operations"].items():
        channel = operation["channel"]["$ref"]
        pointer(asyncapi, channel)
        assert operation["action"] in ("send", "receive"), name
        assert operation["messages"], name
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/"), (name, message)
            pointer(asyncapi, message["$ref"])


def test_every_registered_event_version_is_a_message_sent_on_a_topic(asyncapi):
    sent = {
        message["$ref"].rsplit("/", 1)[1]
        for operation in asyncapi["operations"].values()
        if operation["action"] == "send"
        for message in operation["messages"]
    }
    for event_type, version in registered_types():
        key = docs.message_id(event_type, version)
        assert key in asyncapi["components"]["messages"], key
        assert key in sent, f"no service sends {key}: name its contracts module after the producing service"


def test_each_service_sends_its_topic_and_receives_what_it_consumes(asyncapi):
    operations = asyncapi["operations"]
    for definition in (intake, status, disposition):
        address = pointer(asyncapi, operations[f"{definition.name}.send.{definition.topic}"]["channel"]["$ref"])
        assert address["address"] == definition.topic
        for topic in definition.consumes:
            assert operations[f"{definition.name}.receive.{topic}"]["action"] == "receive"
            assert operations[f"{definition.name}.send.{topic}.dlq"]["action"] == "send"


def test_the_record_trait_describes_the_key_and_the_headers(asyncapi):
    trait = asyncapi["components"]["messageTraits"]["KafkaRecord"]
    assert set(trait["headers"]["properties"]) == {"content-type", "traceparent", "tracestate"}
    assert trait["bindings"]["kafka"]["key"]["type"] == "string"


def captive_registered_record() -> dict:
    payload = CaptiveRegistered(captive_id="CAP-0000-0000-0001", **registration())
    envelope = EventEnvelope(
        id="4b8f7a52-8a9c-4f7e-9d0b-0a1c2e3f4a5b",
        source="/services/intake",
        type=payload.event_type,
        subject=payload.captive_id,
        occurred_at=datetime(2025, 1, 11, 9, tzinfo=UTC),
        recorded_at=datetime(2025, 1, 12, 10, tzinfo=UTC),
        stream_version=1,
        schema_version=payload.schema_version,
        correlation_id="corr-1",
        actor="officer-7",
        agency="UA-HQ",
        data=payload.model_dump(mode="json"),
    )
    return orjson.loads(encode(envelope))


def test_a_real_event_matches_its_message_and_its_schema_file(asyncapi, generated):
    record = captive_registered_record()
    withheld = {**record, "data": {**record["data"], "surname": {"withheld": "sealed"}}}
    registry = Registry().with_resource("urn:asyncapi", Resource.opaque(asyncapi))
    message = jsonschema.Draft7Validator(
        {"$ref": "urn:asyncapi#/components/messages/CaptiveRegistered.v1/payload"}, registry=registry
    )
    schema = json.loads(generated[docs.schema_file("CaptiveRegistered", 1)])
    for event in (record, withheld):
        message.validate(event)
        jsonschema.Draft202012Validator(schema).validate(event["data"])
    with pytest.raises(jsonschema.ValidationError):
        message.validate({**record, "type": "CustodyEnded"})


def test_every_schema_file_is_a_valid_json_schema(generated):
    for path, text in generated.items():
        if path.startswith("schemas/"):
            jsonschema.Draft202012Validator.check_schema(json.loads(text))


def test_each_openapi_document_parses_and_has_paths(generated):
    for definition in (intake, status, disposition):
        document = json.loads(generated[f"openapi/{definition.name}.json"])
        assert document["openapi"].startswith("3.")
        assert "/healthz" in document["paths"] and len(document["paths"]) > 3


def test_the_documents_do_not_depend_on_where_or_when_they_are_generated(generated):
    text = "".join(generated.values())
    assert "sqlite" not in text and "captives-contracts-" not in text and str(DOCS.parent) not in text
