"""Type + schema version -> payload model, and the one encode/decode path used for Kafka.

Nothing here drops an event silently: bytes that are not JSON, an envelope that does not validate,
a type/version nobody registered, or a payload that does not match its model all raise
`InvalidEvent` with the reason, and the consumer sends the record to the dead-letter topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.contracts.envelope import EventEnvelope
from shared.contracts.withheld import SEALED, SEALED_KEY, withhold


class EventPayload(BaseModel):
    """Base of every event's `data`. Strict about unknown fields: a new field is a new version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int]


class InvalidEvent(ValueError):
    """A record that cannot be turned into a known, valid event."""


class UnknownEventType(InvalidEvent):
    pass


_MODELS: dict[tuple[str, int], type[EventPayload]] = {}

P = TypeVar("P", bound=type[EventPayload])


def event_type(name: str, version: int = 1):
    """Class decorator: register a payload model as event type `name`, schema `version`."""

    def register(model: P) -> P:
        key = (name, version)
        if key in _MODELS and _MODELS[key] is not model:
            raise RuntimeError(f"event type {name} v{version} is registered twice")
        model.event_type = name
        model.schema_version = version
        _MODELS[key] = model
        return model

    return register


def payload_model(name: str, version: int) -> type[EventPayload]:
    try:
        return _MODELS[(name, version)]
    except KeyError:
        raise UnknownEventType(f"unknown event type {name!r} version {version}") from None


def registered_types() -> dict[tuple[str, int], type[EventPayload]]:
    return dict(_MODELS)


def declared_in(model: type[EventPayload], module: str) -> bool:
    """Whether the event type is one of `module`'s contracts (a module, or a package such as
    shared.contracts.intake and its modules)."""
    return model.__module__ == module or model.__module__.startswith(module + ".")


@dataclass(frozen=True)
class DecodedEvent:
    envelope: EventEnvelope
    payload: EventPayload


def encode(envelope: EventEnvelope) -> bytes:
    """Canonical JSON (sorted keys), so the same event always has the same bytes."""
    return orjson.dumps(envelope.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def decode(raw: bytes | None) -> DecodedEvent:
    """Bytes -> a valid, typed event. Pure: sealed values come back as `Withheld("sealed")`."""
    if raw is None:
        raise InvalidEvent("record has no value")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent(f"not JSON: {error}") from None
    try:
        envelope = EventEnvelope.model_validate(document)
    except ValidationError as error:
        raise InvalidEvent(f"invalid envelope: {_summary(error)}") from None
    model = payload_model(envelope.type, envelope.schema_version)
    data = envelope.data
    if SEALED_KEY in data and SEALED_KEY not in model.model_fields:
        # Identity-tier values sealed with the captive's key: a reader without it (every reader
        # but intake, which opens them) gets `Withheld("sealed")` in their place.
        try:
            data = withhold(data, SEALED)
        except ValueError as error:
            raise InvalidEvent(f"invalid {envelope.type} v{envelope.schema_version} payload: {error}") from None
    try:
        payload = model.model_validate(data)
    except ValidationError as error:
        raise InvalidEvent(f"invalid {envelope.type} v{envelope.schema_version} payload: {_summary(error)}") from None
    return DecodedEvent(envelope, payload)


def _summary(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in error.errors()[:5])


# Contracts every service publishes on its own topic besides its own: the reads of its data, and
# what its relay withheld.
EVERY_PUBLISHERS = ("shared.contracts.access", "shared.contracts.outbox")


def published_by(service: str) -> set[str]:
    """The event types a service's topic carries: its own contracts (shared.contracts.<service>)
    and those every service publishes."""
    modules = (f"shared.contracts.{service}", *EVERY_PUBLISHERS)
    return {name for (name, _), model in _MODELS.items() if any(declared_in(model, module) for module in modules)}
