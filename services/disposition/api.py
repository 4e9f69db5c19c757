"""The disposition service's HTTP API (v1)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path

from services.disposition.tables import captives
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.service import DbSession, NotFound

router = APIRouter(prefix="/v1", tags=["disposition"])

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]


@router.get("/captives/{captive_id}")
def get_captive(captive_id: CaptiveId, session: DbSession) -> dict[str, Any]:
    """What disposition knows of the captive: registration and current legal status."""
    row = session.execute(sa.select(captives).where(captives.c.captive_id == captive_id)).mappings().first()
    if row is None:
        raise NotFound(f"no captive {captive_id} known to disposition")
    return {
        "captive_id": captive_id,
        "registered": row["registration_event_id"] is not None,
        "nationality": row["nationality"],
        "captured_at": row["captured_at"],
        "status": None
        if row["status"] is None
        else {
            "status": row["status"],
            "rulebook_version": row["status_rulebook_version"],
            "rules": row["status_rules"],
            "event_id": row["status_event_id"],
            "effective_from": row["status_effective_from"],
        },
        # Continued internment (Art. 21) is the default until a disposition is decided.
        "custody": "INTERNED",
    }
