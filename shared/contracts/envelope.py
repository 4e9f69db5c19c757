"""The envelope every event travels in: CloudEvents 1.0 (structured mode, JSON) plus the
extension attributes this project needs. CloudEvents extension names must be lower-case letters
and digits, so the wire names are `streamversion`, `recordedat`, ...; Python code uses the
snake_case names. `time` is when the fact happened (occurred at); `recordedat` is when the system
learned it. The two differ whenever a fact is entered late, and audits need both."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from asgi_correlation_id.context import correlation_id as request_correlation_id
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.moments import IsoDatetime

ALIASES = ConfigDict(
    frozen=True,
    extra="forbid",
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class EventEnvelope(BaseModel):
    model_config = ALIASES

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=200, description="producing service, e.g. /services/intake")
    type: str = Field(min_length=1, max_length=100)
    subject: str = Field(
        min_length=1, max_length=64, description="the stream: a captive id, or a conflict-level subject"
    )
    datacontenttype: Literal["application/json"] = "application/json"
    occurred_at: IsoDatetime = Field(alias="time")
    recorded_at: IsoDatetime = Field(alias="recordedat")
    stream_version: int = Field(alias="streamversion", ge=1)
    schema_version: int = Field(alias="schemaversion", ge=1)
    correlation_id: str = Field(alias="correlationid", min_length=1, max_length=64)
    causation_id: str | None = Field(default=None, alias="causationid", max_length=64)
    actor: str = Field(min_length=1, max_length=200, description="who acted, as a person reads it")
    agency: str = Field(min_length=1, max_length=200)
    # Who acted, as the verified token says: `person:<subject>` or `client:<client id>` (absent on
    # events recorded before identities came from the identity provider, and on a service's own).
    actor_id: str | None = Field(default=None, alias="actorid", max_length=200)
    # The kind of agency the verified caller acted for (`icrc`, `tribunal`, `detaining_state`, ...:
    # shared/auth/roles.py AgencyKind), from the deployment's agency directory at that moment. With
    # `actorid` it is the author's standing, from which a fact takes its legal weight
    # (shared/contracts/standing.py). Absent on a service's own events and on older ones.
    agency_kind: str | None = Field(default=None, alias="agencykind", max_length=40)
    # SHA-256 of the exact bytes of the previous event in this stream (shared/evidence/chain.py).
    previous_hash: str | None = Field(default=None, alias="prevhash", pattern=r"^[0-9a-f]{64}$")
    data: dict[str, Any]


class EventMetadata(BaseModel):
    """Who caused an event and why, supplied by the command or the upstream event that led to it."""

    model_config = ConfigDict(frozen=True)

    actor: str
    agency: str
    actor_id: str | None = None  # `person:<subject>` or `client:<client id>` of the verified caller
    agency_kind: str | None = None  # the kind of the verified caller's agency (shared/auth/roles.py)
    occurred_at: datetime | None = None
    # The request's X-Correlation-ID when there is one, so the caller can find its events.
    correlation_id: str = Field(default_factory=lambda: request_correlation_id.get() or str(uuid.uuid4()))
    causation_id: str | None = None

    @classmethod
    def caused_by(
        cls, upstream: EventEnvelope, *, actor: str, agency: str, occurred_at: datetime | None = None
    ) -> EventMetadata:
        """Metadata for an event a service emits in reaction to `upstream`: same correlation,
        causation = the upstream event, and by default the same occurred-at (the decision
        holds from when the fact that caused it happened)."""
        return cls(
            actor=actor,
            agency=agency,
            occurred_at=occurred_at or upstream.occurred_at,
            correlation_id=upstream.correlation_id,
            causation_id=upstream.id,
        )


# What led to events a service emits about several captives: one upstream event for all of them,
# or each captive's own (a consumer applying a poll's events together).
Causes = EventEnvelope | Mapping[str, EventEnvelope]


def cause_of(causes: Causes, captive_id: str) -> EventEnvelope:
    return causes if isinstance(causes, EventEnvelope) else causes[captive_id]


def utc_now() -> datetime:
    """The recording clock. Only the event store reads it (recorded_at); decision logic never does."""
    return datetime.now(UTC)
