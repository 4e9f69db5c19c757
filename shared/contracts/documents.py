"""The published contracts, generated from the code that enforces them: the JSON Schema of every
event type and version, the envelope's, one AsyncAPI 3.0 document for the topics, and each
service's OpenAPI document. They are committed under docs/, so a change to a contract shows up
in review as a change to a document, and tests fail when a document is out of date.

Pure: the caller passes the services (their definitions and FastAPI apps); nothing here reads
the environment, the clock or the file system except `write`. Every document is rendered with
sorted keys, so the same code always gives the same bytes on any machine."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from shared.contracts.compatibility import incompatibilities
from shared.contracts.envelope import EventEnvelope
from shared.contracts.registry import EventPayload, declared_in, registered_types
from shared.contracts.topics import dead_letter
from shared.contracts.withheld import identity_paths

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CLOUDEVENTS_JSON = "application/cloudevents+json; charset=UTF-8"  # shared/broker/clients.py sends this header
ACCESS_LOG_MODULE = "shared.contracts.access"  # DataAccessed: every service writes it on its own topic
# PublicationWithheld: any service's outbox discard writes it on its own topic (shared/eventstore/outbox.py)
OUTBOX_MODULE = "shared.contracts.outbox"

ASYNCAPI_FILE = "asyncapi.yaml"
ENVELOPE_FILE = "schemas/envelope.json"


@dataclass(frozen=True)
class ServiceContract:
    """What the documents need of one service: its name, the topic it produces, the topics it
    consumes (unprefixed), its OpenAPI document (`app.openapi()`) and whether it seals the
    identity-tier values of its events on the topic (intake does)."""

    name: str
    topic: str
    consumes: tuple[str, ...]
    openapi: Mapping[str, Any]
    seals_identity: bool = False

    @classmethod
    def of(cls, definition, openapi: Mapping[str, Any]) -> ServiceContract:
        """From a service's definition (shared/runtime/definition.py): its topics come from the system."""
        return cls(definition.name, definition.topic, definition.consumes, openapi, definition.key_tables is not None)


# --- JSON Schemas ------------------------------------------------------------------------------


def schema_id(event_type: str, version: int) -> str:
    return f"urn:captives:event:{event_type}:v{version}"


def schema_file(event_type: str, version: int) -> str:
    """Where an event version's schema lives under docs/ (one folder per type, one file per version)."""
    return f"schemas/{event_type}/v{version}.json"


def event_schema(model: type[EventPayload]) -> dict[str, Any]:
    """The JSON Schema a reader of this event version validates `data` against (pydantic's
    validation mode: a field with a default is not required)."""
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(model.event_type, model.schema_version),
        **schema,
        "title": f"{model.event_type} v{model.schema_version}",
    }


def event_schemas() -> dict[tuple[str, int], dict[str, Any]]:
    """(event type, version) -> its JSON Schema, for every registered version."""
    return {key: event_schema(model) for key, model in sorted(registered_types().items())}


def envelope_schema() -> dict[str, Any]:
    """The CloudEvents envelope as it is on the wire (the aliases: `time`, `recordedat`, ...)."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": "urn:captives:event-envelope",
        **EventEnvelope.model_json_schema(mode="validation", by_alias=True),
        "title": "CloudEvents 1.0 envelope of every captives event",
    }


# --- AsyncAPI ----------------------------------------------------------------------------------


def produced_types(service: str) -> list[tuple[str, int]]:
    """The event versions a service writes on its topic: those of its own contracts module
    (shared/contracts/<service>.py), the access log, which every service keeps, and the stand-in
    of an event discarded from its outbox."""
    modules = {f"shared.contracts.{service}", ACCESS_LOG_MODULE, OUTBOX_MODULE}
    return sorted(
        key for key, model in registered_types().items() if any(declared_in(model, module) for module in modules)
    )


def message_id(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def channel_id(topic: str) -> str:
    """`intake.events.v1` -> `intake-events-v1` (a readable id; the address keeps the dots)."""
    return topic.replace(".", "-")


def asyncapi(services: Sequence[ServiceContract], *, version: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the three topics: one message per event type and version,
    sent by the service that produces the topic, received by each service that consumes it."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"EventEnvelope": _embedded(envelope_schema(), "#/components/schemas/EventEnvelope")}
    for service in services:
        channel = channel_id(service.topic)
        produced = produced_types(service.name)
        channels[channel] = {
            "address": service.topic,
            "title": service.topic,
            "description": (
                f"The log of record of the {service.name} service: every event it appends, in stream order "
                "within a partition (the record key is the stream). Retained forever: audits and replays read "
                "it from offset 0. A deployment's KAFKA_TOPIC_PREFIX is prepended to the address."
            ),
            "messages": {message_id(*key): {"$ref": f"#/components/messages/{message_id(*key)}"} for key in produced},
            "bindings": {"kafka": _topic_binding(service.topic)},
        }
        channels[f"{channel}-dlq"] = {
            "address": dead_letter(service.topic),
            "title": dead_letter(service.topic),
            "description": (
                f"Records of {service.topic} that a consumer could not decode or apply, written by that consumer "
                "with the original key and value unchanged and where they came from in `dlq.*` headers."
            ),
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            "bindings": {"kafka": _topic_binding(dead_letter(service.topic))},
        }
        operations[f"{service.name}.send.{service.topic}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"{service.name} publishes its events (the outbox relay, after the database commit)",
            "messages": [{"$ref": f"#/channels/{channel}/messages/{message_id(*key)}"} for key in produced],
        }
        for key, model in registered_types().items():
            if key in produced:
                messages[message_id(*key)] = _message(model, sealed=service.seals_identity)
                schemas[message_id(*key)] = _embedded(event_schema(model), f"#/components/schemas/{message_id(*key)}")
    by_topic = {service.topic: service for service in services}
    for consumer in services:
        for topic in consumer.consumes:
            channel = channel_id(topic)
            operations[f"{consumer.name}.receive.{topic}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": (
                    f"{consumer.name} reads every record of {topic} (consumer group `{consumer.name}`), "
                    "applies the events it handles and commits after its database transaction"
                ),
                "messages": [
                    {"$ref": f"#/channels/{channel}/messages/{message_id(*key)}"}
                    for key in produced_types(by_topic[topic].name)
                ],
            }
            operations[f"{consumer.name}.send.{dead_letter(topic)}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}-dlq"},
                "summary": f"{consumer.name} sets aside the records of {topic} it cannot decode or apply",
                "messages": [{"$ref": f"#/channels/{channel}-dlq/messages/DeadLetter"}],
            }
    messages["DeadLetter"] = _dead_letter_message()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Captives events",
            "version": version or _project_version(),
            "description": (
                "The events of the captives backend: every fact and decision about a captured soldier, "
                "appended by the service that owns it and published on that service's topic as a CloudEvents "
                "1.0 JSON record. Each message is one event type at one schema version (`schemaversion`); a "
                "new field or any incompatible change is a new version registered beside the old, and "
                "consumers keep reading the old ones. Generated by `captives contracts write`; see "
                "docs/contracts.md."
            ),
        },
        "defaultContentType": CLOUDEVENTS_JSON,
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker `captives up` starts; elsewhere KAFKA_BOOTSTRAP_SERVERS names it.",
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "messageTraits": {"KafkaRecord": _record_trait()},
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": (
                        "SASL/SCRAM-SHA-512 (SASL_PLAINTEXT on loopback; SASL_SSL across machines), one "
                        "principal per service: each may write only its own topic (with its .dlq and "
                        ".checkpoints topics) and read only the topics it consumes; the auditor reads "
                        "every topic and writes none; a client that does not authenticate gets nothing."
                    ),
                }
            },
        },
    }


def _message(model: type[EventPayload], *, sealed: bool) -> dict[str, Any]:
    key = message_id(model.event_type, model.schema_version)
    description = inspect.cleandoc(model.__doc__ or "")
    paths = identity_paths(model) if sealed else ()
    if paths:
        # On the topic, identity-tier values and free text about the captive are not in clear:
        # they are removed from `data` and carried encrypted in its `sealed` member; a reader
        # without the captive's key gets {"withheld": "sealed"} in their place, which the schema admits.
        description += (
            "\n\nIdentity-tier values and free text about the captive travel sealed: on the topic, "
            + ", ".join(f"`{path}`" for path in paths)
            + " are absent from `data`, which carries them encrypted in a `sealed` object instead; "
            'a reader without the captive\'s key decodes each as {"withheld": "sealed"}.'
        )
    return {
        "name": model.event_type,
        "title": f"{model.event_type} v{model.schema_version}",
        "description": description,
        "contentType": CLOUDEVENTS_JSON,
        "traits": [{"$ref": "#/components/messageTraits/KafkaRecord"}],
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/EventEnvelope"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": model.event_type},
                        "schemaversion": {"const": model.schema_version},
                        "data": {"$ref": f"#/components/schemas/{key}"},
                    },
                },
            ]
        },
    }


def _record_trait() -> dict[str, Any]:
    return {
        "headers": {
            "type": "object",
            "required": ["content-type"],
            "properties": {
                "content-type": {"type": "string", "const": CLOUDEVENTS_JSON},
                "traceparent": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                    "description": (
                        "W3C Trace Context of the request or event that caused this one; consumers continue "
                        "the trace from it. Records written before tracing have none."
                    ),
                },
                "tracestate": {
                    "type": "string",
                    "description": "W3C Trace Context vendor state, when the trace carries any.",
                },
            },
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "description": (
                        "The stream id, equal to the envelope's `subject` (a captive id, or a conflict-level "
                        "stream): all events of a stream go to one partition, in order."
                    ),
                },
                "bindingVersion": "0.5.0",
            }
        },
    }


def _dead_letter_message() -> dict[str, Any]:
    header = {"type": "string"}
    return {
        "name": "DeadLetter",
        "title": "A record set aside",
        "description": (
            "The original record's key, value and headers, unchanged (the value may not even be JSON), "
            "plus where it came from and why it was refused. A copy that would not fit the broker's limit goes "
            "by reference: an empty value, `dlq.value` saying so, and the original's SHA-256 and size; the "
            "original stays at its topic, partition and offset (shared/eventstore/dead_letter_copy.py)."
        ),
        "contentType": "application/octet-stream",
        "payload": {"description": "the original record's value, byte for byte, or empty when sent by reference"},
        "headers": {
            "type": "object",
            "required": [
                "dlq.original.topic",
                "dlq.original.partition",
                "dlq.original.offset",
                "dlq.consumer.group",
                "dlq.error",
            ],
            "properties": {
                "dlq.original.topic": header,
                "dlq.original.partition": {**header, "pattern": "^[0-9]+$"},
                "dlq.original.offset": {**header, "pattern": "^[0-9]+$"},
                "dlq.consumer.group": header,
                "dlq.error": {**header, "maxLength": 2000},
                "dlq.value": header,
                "dlq.original.sha256": {**header, "pattern": "^[0-9a-f]{64}$"},
                "dlq.original.bytes": {**header, "pattern": "^[0-9]+$"},
                "dlq.original.key.sha256": {**header, "pattern": "^[0-9a-f]{64}$"},
            },
        },
    }


def _topic_binding(topic: str) -> dict[str, Any]:
    # shared/broker/clients.py LOG_OF_RECORD: nothing is ever deleted by age or size.
    return {
        "topic": topic,
        "topicConfiguration": {"cleanup.policy": ["delete"], "retention.ms": -1, "retention.bytes": -1},
        "bindingVersion": "0.5.0",
    }


def _embedded(schema: dict[str, Any], at: str) -> dict[str, Any]:
    """A standalone schema placed inside the AsyncAPI document: its local `#/$defs/...` refs are
    rewritten to point at `at`, so they resolve against the document without `$id` rebasing
    (which AsyncAPI tools do not all honour); `$schema` and `$id` stay in the standalone files."""

    def rebase(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: (
                    at + inner[1:]
                    if key == "$ref" and isinstance(inner, str) and inner.startswith("#/")
                    else rebase(inner)
                )
                for key, inner in value.items()
            }
        if isinstance(value, list):
            return [rebase(inner) for inner in value]
        return value

    return rebase({key: value for key, value in schema.items() if key not in ("$schema", "$id")})


def _project_version() -> str:
    try:
        return metadata.version("captives")
    except metadata.PackageNotFoundError:
        return "0.0.0"


# --- Rendering and writing ---------------------------------------------------------------------


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (descriptions) as literal blocks, so the YAML reads like the docstrings."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def render_yaml(document: Mapping[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=110)


def documents(services: Sequence[ServiceContract], *, version: str | None = None) -> dict[str, str]:
    """Every committed document: its path under docs/ -> its exact text."""
    rendered = {
        ASYNCAPI_FILE: render_yaml(asyncapi(services, version=version)),
        ENVELOPE_FILE: render_json(envelope_schema()),
    }
    for service in services:
        rendered[f"openapi/{service.name}.json"] = render_json(service.openapi)
    for (name, number), schema in event_schemas().items():
        rendered[schema_file(name, number)] = render_json(schema)
    return dict(sorted(rendered.items()))


def stale(root: Path, wanted: Mapping[str, str]) -> list[str]:
    """The documents under `root` that are missing or differ from `wanted` (paths relative to root)."""
    return [
        path
        for path, text in wanted.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]


def write(root: Path, wanted: Mapping[str, str]) -> list[str]:
    """Write the documents that changed; returns their paths. Files nobody generates any more are
    left alone (a committed event schema is a contract: removing one is a deliberate act)."""
    changed = stale(root, wanted)
    for path in changed:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted[path], encoding="utf-8")
    return changed


def breaking_changes(root: Path, wanted: Mapping[str, str]) -> dict[str, list[str]]:
    """Each committed event schema (and the envelope's) that the current code would change in a
    way that refuses events valid under it -> why. The committed file is the frozen contract of
    its version: events in the log were written under it."""
    committed = sorted((root / "schemas").glob("*/v*.json"))
    if (root / ENVELOPE_FILE).is_file():
        committed.append(root / ENVELOPE_FILE)
    found = {}
    for file in committed:
        path = file.relative_to(root).as_posix()
        if path not in wanted:
            found[path] = ["no model is registered for this version any more: events written under it cannot be read"]
        elif problems := incompatibilities(json.loads(file.read_text(encoding="utf-8")), json.loads(wanted[path])):
            found[path] = problems
    return found
