"""Intake's HTTP API (v1)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, HTTPException, Path, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.intake.projections import project
from services.intake.tables import captives
from shared.contracts import EventMetadata
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN, new_captive_id
from shared.contracts.intake import (
    Art17Date,
    Art17Field,
    Art17Text,
    CaptiveRegistered,
    Capture,
    ClaimedAffiliation,
    IdentityAmended,
)
from shared.service import DbSession, NotFound, Runtime

router = APIRouter(prefix="/v1", tags=["captives"])

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]
# Until agencies authenticate with tokens, the caller names itself in headers.
Actor = Annotated[str, Header(alias="X-Actor", min_length=1, max_length=200)]
Agency = Annotated[str, Header(alias="X-Agency", min_length=1, max_length=200)]


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    surname: Art17Text
    first_names: Art17Text
    rank: Art17Text
    date_of_birth: Art17Date
    service_number: Art17Text
    nationality: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    claimed_affiliation: ClaimedAffiliation
    capture: Capture
    occurred_at: AwareDatetime | None = Field(
        default=None, description="when the registration interview took place; default now"
    )


class Amendment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Art17Field
    current: Art17Text | Art17Date
    reason: str = Field(min_length=1, max_length=2000)
    occurred_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _value_fits_field(self):
        wants_date = self.field == "date_of_birth"
        if wants_date != isinstance(self.current, Art17Date):
            raise ValueError(f"{self.field} takes a {'date' if wants_date else 'text'} value")
        return self


class Written(BaseModel):
    captive_id: str
    stream_version: int
    event_id: str


def expected_version(if_match: str | None) -> int:
    """Writes to an existing captive name the version they were based on (If-Match: "3"),
    so a stale write is refused with 409 instead of overwriting a newer one."""
    if if_match is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            'If-Match is required: send the captive\'s current version, e.g. If-Match: "3"',
        )
    found = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', if_match)
    if not found:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f'If-Match must be a version number such as "3", not {if_match!r}'
        )
    return int(found.group(1))


@router.post("/captives", status_code=201, response_model=Written)
def register_captive(
    body: Registration,
    runtime: Runtime,
    session: DbSession,
    response: Response,
    actor: Actor = "unauthenticated",
    agency: Agency = "unspecified",
) -> Written:
    captive_id = new_captive_id()
    event = CaptiveRegistered(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
    with session.begin():
        [envelope] = runtime.store.append(
            session, captive_id, 0, [event], EventMetadata(actor=actor, agency=agency, occurred_at=body.occurred_at)
        )
        project(session, envelope, event)
    runtime.relay.wake()
    response.headers["Location"] = f"/v1/captives/{captive_id}"
    response.headers["ETag"] = f'"{envelope.stream_version}"'
    return Written(captive_id=captive_id, stream_version=envelope.stream_version, event_id=envelope.id)


@router.get("/captives/{captive_id}")
def get_captive(captive_id: CaptiveId, session: DbSession, response: Response) -> dict[str, Any]:
    row = session.execute(sa.select(captives).where(captives.c.captive_id == captive_id)).mappings().first()
    if row is None:
        raise NotFound(f"no captive {captive_id}")
    response.headers["ETag"] = f'"{row["stream_version"]}"'
    return dict(row)


@router.post("/captives/{captive_id}/identity-amendments", status_code=201, response_model=Written)
def amend_identity(
    captive_id: CaptiveId,
    body: Amendment,
    runtime: Runtime,
    session: DbSession,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    actor: Actor = "unauthenticated",
    agency: Agency = "unspecified",
) -> Written:
    version = expected_version(if_match)
    with session.begin():
        identity = session.execute(
            sa.select(captives.c.identity).where(captives.c.captive_id == captive_id)
        ).scalar_one_or_none()
        if identity is None:
            raise NotFound(f"no captive {captive_id}")
        previous_model = Art17Date if body.field == "date_of_birth" else Art17Text
        event = IdentityAmended(
            captive_id=captive_id,
            field=body.field,
            previous=previous_model.model_validate(identity[body.field]),
            current=body.current,
            reason=body.reason,
        )
        [envelope] = runtime.store.append(
            session,
            captive_id,
            version,
            [event],
            EventMetadata(actor=actor, agency=agency, occurred_at=body.occurred_at),
        )
        project(session, envelope, event)
    runtime.relay.wake()
    response.headers["ETag"] = f'"{envelope.stream_version}"'
    return Written(captive_id=captive_id, stream_version=envelope.stream_version, event_id=envelope.id)
