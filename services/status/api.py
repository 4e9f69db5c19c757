"""The status service's HTTP API (v1)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Response

from services.status.tables import statuses
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.service import DbSession, NotFound

router = APIRouter(prefix="/v1", tags=["status"])

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]


@router.get("/captives/{captive_id}")
def get_status(captive_id: CaptiveId, session: DbSession, response: Response) -> dict[str, Any]:
    """The captive's current legal status, the rulebook version, and the rules and facts behind it."""
    row = session.execute(sa.select(statuses).where(statuses.c.captive_id == captive_id)).mappings().first()
    if row is None:
        raise NotFound(f"no status for captive {captive_id} (unknown, or its registration is still on its way)")
    response.headers["ETag"] = f'"{row["stream_version"]}"'
    return {"captive_id": captive_id, **{k: v for k, v in row.items() if k != "captive_id"}}
