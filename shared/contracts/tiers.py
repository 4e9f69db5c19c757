"""Data tiers (ICRC data-protection practice): every field of every event belongs to one, and an
agency sees only the tiers its role grants. The tier is part of the contract: it travels in the
JSON Schema of each field as `x-data-tier`, and `field_tiers` reads it back."""

from __future__ import annotations

from enum import StrEnum
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, Field

TIER_KEY = "x-data-tier"
# Free text about the captive, sealed with his key whatever its tier: free text is where names
# travel (shared/privacy/keyring.py). Identity-tier values are sealed without this mark.
SEALED_KEY_MARK = "x-sealed"


class DataTier(StrEnum):
    REFERENCE = "reference"  # pseudonymous case reference and status: the least sensitive
    IDENTITY = "identity"  # who the person is, where he was taken and is held
    MEDICAL = "medical"
    WISHES_AND_RISK = "wishes_and_risk"  # what he wants and what he risks: the most dangerous


def tiered(tier: DataTier, default: Any = ..., *, sealed: bool = False, **constraints: Any) -> Any:
    """`Field(...)` that also records the field's data tier; `sealed`: free text about the
    captive, sealed with his key like identity-tier values (shared/contracts/withheld.py)."""
    extra: dict[str, Any] = {TIER_KEY: tier.value}
    if sealed:
        extra[SEALED_KEY_MARK] = True
    if "default_factory" in constraints:
        return Field(json_schema_extra=extra, **constraints)
    return Field(default, json_schema_extra=extra, **constraints)


def field_tiers(model: type[BaseModel]) -> dict[str, DataTier]:
    """The tier of each top-level field of `model`; a field without one is a contract bug."""
    tiers = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if TIER_KEY not in extra:
            raise LookupError(f"{model.__name__}.{name} has no data tier")
        tiers[name] = DataTier(extra[TIER_KEY])
    return tiers


def _tier_of(info) -> DataTier | None:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return DataTier(extra[TIER_KEY]) if TIER_KEY in extra else None


def tiered_part(annotation: Any) -> type[BaseModel] | None:
    """The nested part a field holds (`Part` or `Part | None`) when each of that part's own
    fields carries a tier (e.g. `Capture`: its time is reference, its place identity); None
    for any other value, which belongs to its field's tier whole."""
    if get_origin(annotation) in (Union, UnionType):
        choices = [choice for choice in get_args(annotation) if choice is not NoneType]
        if len(choices) != 1:
            return None
        annotation = choices[0]
    if (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and annotation.model_fields
        and all(_tier_of(info) is not None for info in annotation.model_fields.values())
    ):
        return annotation
    return None


def split_by_tier(model: type[BaseModel], values: dict[str, Any]) -> dict[DataTier, dict[str, Any]]:
    """`values` (a model_dump of `model`) cut into one part per tier. A nested tiered part stays
    in its field's tier, except its fields of another tier that is not the reference tier: those
    go to their own tier's part under the same name (e.g. `armed_force` is reference, but its
    `basis` is identity: reference gets the force, identity gets {"armed_force": {"basis": ...}})."""
    parts: dict[DataTier, dict[str, Any]] = {}
    tiers = field_tiers(model)
    for name, info in model.model_fields.items():
        tier = tiers[name]
        value = values.get(name)
        part = tiered_part(info.annotation)
        if part is None or not isinstance(value, dict):
            parts.setdefault(tier, {})[name] = value
            continue
        inner = split_by_tier(part, value)
        kept = {}
        for inner_tier, inner_values in inner.items():
            if inner_tier in (tier, DataTier.REFERENCE):
                kept.update(inner_values)
            else:
                parts.setdefault(inner_tier, {})[name] = inner_values
        parts.setdefault(tier, {})[name] = {key: value[key] for key in value if key in kept}
    return parts
