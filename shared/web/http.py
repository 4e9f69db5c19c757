"""Request pieces every service's API uses the same way."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.orm import Session

from shared.auth.gate import Caller, CallerDep
from shared.commands.idempotency import Answer, IdempotencyKey, request_hash, run_idempotent, scoped_key
from shared.commands.pipeline import Decision
from shared.contracts.envelope import EventMetadata
from shared.contracts.moments import IsoDatetime
from shared.runtime.runtime import ServiceRuntime
from shared.web.deps import DbSession, Runtime

# A version number, quoted or not, optionally weak; `parse_if_match` answers 400 for anything else.
IF_MATCH = r'^\s*(?:W/)?"?(\d{1,9})"?\s*$'
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='the version the write is based on, e.g. "3"',
        json_schema_extra={"pattern": IF_MATCH},
    ),
]


# The times a request may name: nothing recorded here happened before 1900, and a time near the
# ends of the calendar could not be converted to UTC or have a deadline added to it.
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def within_the_calendar(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment


Moment = Annotated[IsoDatetime, AfterValidator(within_the_calendar)]


# Lists in requests are bounded (the OpenAPI documents state it), so no one request can make an
# event larger than the broker takes. Event contracts stay as they were (they must read old events).
MAX_EVIDENCE_REFS = 50


class When(BaseModel):
    occurred_at: Moment | None = Field(
        default=None, description="when it happened or takes effect (default: now); never in the future"
    )


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def parse_if_match(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    found = re.fullmatch(IF_MATCH, if_match)
    if not found:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f'If-Match must be a version number such as "3", not {if_match!r}'
        )
    return int(found.group(1))


def parse_as_of(value: str, name: str = "as_of") -> datetime:
    """A date (read as 00:00 UTC that day) or a datetime with a zone; anything else is a 422."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        problem = f"{value!r} is not a date (2025-02-01) or a datetime with a zone"
    else:
        try:
            return within_the_calendar(moment).astimezone(UTC)
        except ValueError as error:
            problem = f"{value!r} {error}"
    raise RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": problem}])


def not_in_future(moment: datetime, now: datetime, loc: tuple = ("body", "occurred_at")) -> None:
    if moment > now:
        raise RequestValidationError(
            [{"type": "value_error", "loc": loc, "msg": f"{iso(moment)} is in the future (recorded at {iso(now)})"}]
        )


@dataclass
class Command:
    """What every write endpoint needs besides its body: the request, the service, a database
    session, the Idempotency-Key, and the authenticated caller (who writes for which agency)."""

    request: Request
    runtime: ServiceRuntime
    session: Session
    idempotency_key: str | None
    caller: Caller

    @property
    def actor(self) -> str:
        return self.caller.actor

    @property
    def actor_id(self) -> str:
        return self.caller.actor_id

    def metadata(self, occurred_at: datetime | None = None) -> EventMetadata:
        """Who acted (as the verified token says) for which agency, and when the fact happened."""
        return self.caller.metadata(occurred_at)

    @property
    def agency(self) -> str:
        return self.caller.agency

    def run(
        self, body: BaseModel, write: Callable[[Session], Answer], *, retry_conflicts: bool = False
    ) -> JSONResponse:
        """Run `write` in one idempotent transaction, waking the relay after the commit."""
        path = self.request.url.path
        fingerprint = request_hash("POST", path, body.model_dump(mode="json"))
        return run_idempotent(
            self.session,
            self.runtime.definition.store_tables.idempotency_keys,
            scoped_key(self.caller.actor_id, "POST", path, self.idempotency_key),
            fingerprint,
            write,
            after_commit=self.runtime.relay.wake,
            retry_conflicts=retry_conflicts,
        )

    def handle(
        self, body: BaseModel, decide: Callable[[Session], Decision[Answer]], *, retry_conflicts: bool = True
    ) -> JSONResponse:
        """Carry out the command `decide` decides, through the service's pipeline
        (shared/commands/pipeline.py), in one idempotent transaction."""
        return self.run(body, self.runtime.pipeline.transaction(decide), retry_conflicts=retry_conflicts)


def command(
    request: Request,
    runtime: Runtime,
    session: DbSession,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Command:
    return Command(request, runtime, session, idempotency_key, caller)


Writer = Annotated[Command, Depends(command)]
