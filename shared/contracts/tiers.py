"""Data tiers (ICRC data-protection practice): every field of every event belongs to one, and an
agency sees only the tiers its role grants. The tier is part of the contract: it travels in the
JSON Schema of each field as `x-data-tier`, and `field_tiers` reads it back."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

TIER_KEY = "x-data-tier"


class DataTier(StrEnum):
    REFERENCE = "reference"  # pseudonymous case reference and status: the least sensitive
    IDENTITY = "identity"  # who the person is, where he was taken and is held
    MEDICAL = "medical"
    WISHES_AND_RISK = "wishes_and_risk"  # what he wants and what he risks: the most dangerous


def tiered(tier: DataTier, default: Any = ..., **constraints: Any) -> Any:
    """`Field(...)` that also records the field's data tier."""
    if "default_factory" in constraints:
        return Field(json_schema_extra={TIER_KEY: tier.value}, **constraints)
    return Field(default, json_schema_extra={TIER_KEY: tier.value}, **constraints)


def field_tiers(model: type[BaseModel]) -> dict[str, DataTier]:
    """The tier of each top-level field of `model`; a field without one is a contract bug."""
    tiers = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if TIER_KEY not in extra:
            raise LookupError(f"{model.__name__}.{name} has no data tier")
        tiers[name] = DataTier(extra[TIER_KEY])
    return tiers
