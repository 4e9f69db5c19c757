"""Personal data an event carries but a reader is not given: *sealed* (encrypted inside the
event with the captive's key, which only the service that wrote the event holds) or *erased*
(that key was destroyed). What is sealed: every identity-tier value, and every free text about
the captive, marked `tiered(..., sealed=True)` whatever its tier (`identity_paths`).

Every service seals these values of its events when it appends them (shared/privacy/keyring.py):
the stored and published event keeps its other fields in clear, plus one `sealed` object (the
algorithm, nonce and ciphertext, and the paths of the values inside it). `decode` puts
`Withheld(withheld="sealed")` at those paths, so every identity-tier field of intake's events
accepts the marker in its type and a reader without the key still gets a valid event. Intake
opens its events with the key; where the key is gone the values become `Withheld("erased")`.

This module is pure (no keys, no cryptography): it only knows which values are identity-tier and
how the sealed form of an event's data is laid out. The marker is written by the system, never by
a client: request models mix in `ClientInput`, which refuses it (422 naming the field)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, ValidationInfo, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from shared.contracts.tiers import SEALED_KEY_MARK, TIER_KEY, DataTier, tiered_part

SEALED_KEY = "sealed"  # the member of an event's `data` that holds its sealed values


class Withheld(BaseModel):
    """In place of a sealed value (identity data, free text about the captive): sealed (the
    reader has no key) or erased (nobody has)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    withheld: Literal["sealed", "erased"]


SEALED = Withheld(withheld="sealed")
ERASED = Withheld(withheld="erased")


def _tier(info) -> DataTier | None:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return DataTier(extra[TIER_KEY]) if TIER_KEY in extra else None


def _marked_sealed(info) -> bool:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return bool(extra.get(SEALED_KEY_MARK))


@cache
def identity_paths(model: type[BaseModel]) -> tuple[str, ...]:
    """The dotted paths of what a service seals in `model` with the captive's key: every
    identity-tier value, and every free text about him marked `tiered(..., sealed=True)`
    (medical findings, ICRC notes, wish statements, risk bases...)."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        # A nested part whose own fields carry tiers (`Capture`, `ForceMembership`, also when
        # optional) is sealed field by field; any other identity-tier value is sealed whole.
        if (part := tiered_part(info.annotation)) is not None:
            paths.extend(f"{name}.{inner}" for inner in identity_paths(part))
        elif _tier(info) is DataTier.IDENTITY or _marked_sealed(info):
            paths.append(name)
    return tuple(paths)


sealed_value_paths = identity_paths  # the same paths, under the name that says what they are


def split(data: Mapping[str, Any], paths: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`data` without the values at `paths`, {path: value}); a path that is absent is skipped."""
    clear = _copy(data)
    values = {}
    for path in paths:
        *parents, last = path.split(".")
        holder = clear
        for name in parents:
            holder = holder.get(name) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and last in holder:
            values[path] = holder.pop(last)
    return clear, values


def put(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with each of `values` at its path, and no `sealed` member (ValueError if a path
    runs through a value that is not an object)."""
    result = {key: value for key, value in _copy(data).items() if key != SEALED_KEY}
    for path, value in values.items():
        *parents, last = path.split(".")
        holder = result
        for name in parents:
            holder = holder.setdefault(name, {})
            if not isinstance(holder, dict):
                raise ValueError(f"sealed path {path!r} runs through {name!r}, which is not an object")
        holder[last] = value
    return result


def sealed_paths(data: Mapping[str, Any]) -> list[str]:
    """The paths the `sealed` member of an event's data says it holds (ValueError if malformed)."""
    block = data.get(SEALED_KEY)
    paths = block.get("paths") if isinstance(block, dict) else None
    if not isinstance(paths, list) or not all(isinstance(path, str) and path for path in paths):
        raise ValueError(f"`{SEALED_KEY}` must be an object with the list of sealed `paths`")
    return paths


def withhold(data: Mapping[str, Any], marker: Withheld = SEALED) -> dict[str, Any]:
    """An event's data as a reader without the key sees it: `marker` at each sealed path."""
    shown = marker.model_dump()
    return put(data, {path: shown for path in sealed_paths(data)})


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_copy(inner) for inner in value]
    return value


def _is_withheld(schema: JsonSchemaValue, handler: GetJsonSchemaHandler) -> bool:
    return "$ref" in schema and handler.resolve_ref_schema(schema).get("title") == Withheld.__name__


def _withheld_at(value: Any) -> str | None:
    """Where in `value` a Withheld marker is ('' for the value itself), or None."""
    if isinstance(value, Withheld):
        return ""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if (inner := _withheld_at(getattr(value, name))) is not None:
                return f".{name}{inner}"
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if (inner := _withheld_at(item)) is not None:
                return f"[{index}]{inner}"
    return None


class ClientInput(BaseModel):
    """Mixed into request models built from the event parts: a client sends values, never the
    `withheld` marker that only the service writes for data it does not show. Their JSON Schema
    (what the OpenAPI document offers clients) leaves the marker out of each field's choices;
    a nested part that may hold one needs a request model of its own, e.g. intake's capture."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        for field in handler.resolve_ref_schema(schema).get("properties", {}).values():
            choices = [choice for choice in field.get("anyOf", ()) if not _is_withheld(choice, handler)]
            if "anyOf" in field and len(choices) == 1:
                del field["anyOf"]
                field.update(choices[0])
            elif "anyOf" in field:
                field["anyOf"] = choices
        return schema

    @field_validator("*")
    @classmethod
    def _no_withheld_marker(cls, value: Any, info: ValidationInfo) -> Any:
        if (where := _withheld_at(value)) is not None:
            raise ValueError(
                f"{info.field_name}{where}: `withheld` marks data the service does not show; "
                "a request must carry the value itself"
            )
        return value
