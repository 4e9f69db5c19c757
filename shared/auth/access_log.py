"""The access log: every read that returns identity, medical or wishes-and-risk data is recorded
as a DataAccessed event on the answering service's own topic (so it is replayable, checkpointed
and tamper-evident like any other event), and auditors query it here."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, HTTPException, Query, Request

from shared.auth.gate import Caller, allow
from shared.auth.roles import SENSITIVE_TIERS, Scope
from shared.commands.pipeline import Decision
from shared.contracts.access import DataAccessed, access_stream
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.tiers import DataTier
from shared.eventstore import StreamAppend

if TYPE_CHECKING:
    from shared.runtime.runtime import ServiceRuntime

log = structlog.get_logger(__name__)


def record_access(
    runtime: ServiceRuntime, request: Request, caller: Caller, tiers: set[DataTier], captive_ids: list[str]
) -> None:
    """Record a read that returns sensitive tiers, before the data leaves: if the record cannot
    be written, nothing is returned (503)."""
    sensitive = sorted(set(tiers) & SENSITIVE_TIERS)
    if not sensitive:
        return
    event = DataAccessed(
        client_id=caller.client_id,
        method=request.method,
        path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        purpose=caller.purpose,
        tiers=sensitive,
        captive_ids=sorted(set(captive_ids)),
    )
    append = StreamAppend(access_stream(uuid.uuid4().hex), 0, [event], caller.metadata())
    try:
        runtime.pipeline.run(runtime.sessions, lambda _session: Decision([append], lambda _e, _r: None))
    except Exception:
        log.exception("access not recorded; withholding the answer")
        raise HTTPException(503, "the access log could not record this read; nothing was returned") from None
    runtime.relay.wake()


router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/access-log", dependencies=[allow(Scope.AUDIT_READ)])
def get_access_log(
    request: Request,
    captive_id: Annotated[str | None, Query(pattern=CAPTIVE_ID_PATTERN)] = None,
    agency: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """Who read sensitive data from this service, newest first: client, person, agency, purpose,
    request, tiers returned, and about which captive."""
    runtime = request.app.state.runtime
    table = runtime.definition.access.access_log
    conditions = []
    if captive_id:
        conditions.append(table.c.captive_id == captive_id)
    if agency:
        conditions.append(table.c.agency == agency)
    with runtime.sessions() as session:
        rows = session.execute(
            sa.select(table).where(*conditions).order_by(table.c.accessed_at.desc(), table.c.event_id).limit(limit)
        ).mappings()
        entries = [
            {
                **row,
                "accessed_at": row["accessed_at"].isoformat().replace("+00:00", "Z"),
                "captive_id": row["captive_id"] or None,
                "tiers": row["tiers"].split(","),
            }
            for row in rows
        ]
    return {"service": runtime.definition.name, "count": len(entries), "entries": entries}
