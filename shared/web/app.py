"""The FastAPI app of a service, wired once: health, readiness, metrics, the credential screen and
request limits, correlation ids and the error mapping all three share."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager

import sqlalchemy as sa
import structlog
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.auth import access_log
from shared.auth.gate import authenticate
from shared.auth.screen import CredentialScreen
from shared.eventstore import ConcurrencyConflict, EventTooLarge
from shared.platform import tracing
from shared.platform.errors import DomainConflict
from shared.runtime.definition import ServiceDefinition
from shared.runtime.runtime import ServiceRuntime
from shared.runtime.settings import ServiceSettings
from shared.web import feed, metrics
from shared.web.deps import NotFound
from shared.web.limits import RequestLimits
from shared.web.nul import RefuseNul
from shared.web.refusals import CALLER_REFUSALS

log = structlog.get_logger(__name__)

# What a caller may send as X-Correlation-ID (the envelope holds 64 characters); anything else
# is replaced by a fresh id, which the response returns.
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def create_app(definition: ServiceDefinition, settings: ServiceSettings, *, start_background: bool = True) -> FastAPI:
    runtime = ServiceRuntime(definition, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start_background:
            runtime.start()
        else:
            runtime.migrate()
        yield
        runtime.stop()

    app = FastAPI(title=definition.title or f"{definition.name} service", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.metrics = metrics.expose(app, runtime)
    tracing.instrument_http(app, definition.name)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict:
        """The process is up (liveness)."""
        return {"status": "ok", "service": definition.name}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Ready to serve: the database and the broker both answer, the topics are as the
        settings say, and the consumer of upstream topics is making progress (if stuck, where)."""
        stalled = runtime.consumer.stalled() if runtime.consumer else None
        checks = {
            "database": runtime.database_ok(),
            "broker": runtime.broker_ok(),
            "topics": not runtime.topic_differences,
            "consumer": stalled is None,
        }
        ready = all(checks.values())
        answer = {
            "ready": ready,
            "checks": checks,
            "outbox_backlog": runtime.relay.backlog() if checks["database"] else None,
        }
        if stalled is not None:
            answer["consumer_stalled"] = stalled
        if runtime.topic_differences:
            answer["topic_differences"] = runtime.topic_differences
        return JSONResponse(answer, status_code=200 if ready else 503)

    @app.exception_handler(ConcurrencyConflict)
    def conflict(_request: Request, error: ConcurrencyConflict) -> JSONResponse:
        return JSONResponse(
            {
                "detail": str(error),
                "stream": error.stream_id,
                "expected_version": error.expected,
                "current_version": error.actual,
            },
            status_code=409,
        )

    @app.exception_handler(RequestValidationError)
    def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        # Where and what, without echoing the input back: it may be identity data, and it may
        # not even be representable in JSON (a body of `Infinity` parses to a float).
        problems = [
            {"type": e.get("type", "value_error"), "loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))}
            for e in error.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(EventTooLarge)
    def too_large(_request: Request, error: EventTooLarge) -> JSONResponse:
        # Raised before the transaction commits: nothing of the request is stored.
        return JSONResponse(
            {"detail": str(error), "event_type": error.event_type, "size": error.size, "limit": error.limit},
            status_code=413,
        )

    @app.exception_handler(DomainConflict)
    def domain_conflict(_request: Request, error: DomainConflict) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(NotFound)
    def not_found(_request: Request, error: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    def database_unavailable(_request: Request, error: sa.exc.DBAPIError) -> JSONResponse:
        # The database went away mid-request (restarted, failed over): nothing was recorded that
        # was not committed, and a retry with the same Idempotency-Key is answered once.
        log.warning("database unavailable", error=type(error.orig).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; try again"}, status_code=503, headers={"Retry-After": "1"}
        )

    # Inside the limits: text with U+0000, which PostgreSQL cannot store, is refused naming where it is.
    app.add_middleware(RefuseNul)
    # Outermost: refuse oversized or too deeply nested bodies before anything parses them.
    app.add_middleware(
        RequestLimits, max_body_bytes=settings.auth.max_body_bytes, max_json_depth=settings.auth.max_json_depth
    )
    # Outside that: bad credentials are refused before any of the work above, and an address that
    # keeps sending them is throttled (shared/auth/screen.py).
    app.add_middleware(
        CredentialScreen,
        failures_per_minute=settings.auth.failed_credentials_per_minute,
        storage_uri=settings.auth.rate_limit_storage,
    )
    # Outside that: every answer, refusals included, names the correlation id its events and logs carry.
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Correlation-ID",
        validator=lambda value: bool(CORRELATION_ID.fullmatch(value)),
    )
    for router in (*definition.routers, feed.router, access_log.router):
        app.include_router(router, dependencies=[Depends(authenticate)], responses=CALLER_REFUSALS)
    return app
