"""The door of every service: the OAuth2 token endpoint, token verification, per-agency rate
limits, the scope each endpoint requires, the partner-state object check, and the access log.

Every route under /v1 declares the scope it needs (`dependencies=[Allow(Scope.X)]`); a route
without one is a bug that tests/unit/test_route_policy.py catches. A partner state's token opens
only the captives it may see (shared/auth/projections.py); for any other it is a 404, the same
answer as for a captive that does not exist, so a partner cannot probe for who is held.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Form, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared.auth import registry as registries
from shared.auth import tokens
from shared.auth.roles import Scope, tiers_of
from shared.contracts.intake import UNSAFE_IN_NAMES
from shared.contracts.tiers import DataTier
from shared.limits import RateLimiter
from shared.refusals import refusals
from shared.settings import AuthSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the authenticated client and agency, the person operating it (asserted
    by the client in X-Actor), and the purpose given for the request (X-Purpose)."""

    grant: tokens.Grant
    person: str | None
    purpose: str | None

    @property
    def client_id(self) -> str:
        return self.grant.client_id

    @property
    def agency(self) -> str:
        return self.grant.agency_id

    @property
    def actor(self) -> str:
        """What events record as their actor: the person and the client he used."""
        return f"{self.person} via {self.client_id}" if self.person else self.client_id

    @property
    def partner_state(self) -> str | None:
        return self.grant.partner_state

    @property
    def tiers(self) -> frozenset[DataTier]:
        return tiers_of(self.grant.scopes)

    def may(self, scope: Scope) -> bool:
        return scope.value in self.grant.scopes


class Gate:
    """Per service instance: the signing key, the registry (re-read when it changes) and the
    rate limiter."""

    def __init__(self, settings: AuthSettings, *, audience: str):
        self.settings = settings
        self.audience = audience
        self.registry = registries.RegistryFile(Path(settings.registry_file))
        self.limiter = RateLimiter(settings.rate_limit_storage)
        self._key = None

    @property
    def key(self):
        if self._key is None:
            self._key = tokens.load_or_create_signing_key(Path(self.settings.signing_key_file))
        return self._key

    def admit(self, authorization: str | None) -> tokens.Grant:
        """Verify the bearer token and that its client still stands; then count the request
        against the agency's rate."""
        found = re.fullmatch(r"Bearer ([A-Za-z0-9._~+/=-]+)", (authorization or "").strip())
        if not found:
            raise _unauthorized("send an access token: Authorization: Bearer <token> (POST /oauth/token to get one)")
        try:
            grant = tokens.verify(found.group(1), self.key, audience=self.audience)
        except tokens.InvalidToken as error:
            raise _unauthorized(str(error)) from None
        registry = self.registry.current()
        client = registry.clients.get(grant.client_id)
        if client is None or client.disabled or client.agency_id != grant.agency_id:
            raise _unauthorized("the client of this token has been revoked")
        agency = registry.agencies[client.agency_id]
        retry_after = self.limiter.hit(agency.agency_id, agency.requests_per_minute)
        if retry_after is not None:
            raise HTTPException(
                429,
                f"agency {agency.agency_id} is over its limit of {agency.requests_per_minute} requests a minute",
                headers={"Retry-After": str(int(retry_after))},
            )
        return grant


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        401, message, headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'}
    )


def _printable(limit: int) -> dict:
    """The schema of a header of 1 to `limit` printable characters. Declared, not enforced by
    FastAPI: the token is checked first, and `authenticate` answers 400 for a malformed value."""
    return {"minLength": 1, "maxLength": limit, "pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"}


# Events record the actor as "<X-Actor> via <client id>" (a client id has up to 63 characters)
# in 200 characters; the access log keeps the purpose in 500.
ACTOR_LIMIT, PURPOSE_LIMIT = 120, 500


def authenticate(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_actor: Annotated[
        str | None,
        Header(
            alias="X-Actor",
            description="the person operating the client (recorded as actor)",
            json_schema_extra=_printable(ACTOR_LIMIT),
        ),
    ] = None,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="why the data is needed (recorded in the access log)",
            json_schema_extra=_printable(PURPOSE_LIMIT),
        ),
    ] = None,
) -> Caller:
    grant = request.app.state.runtime.gate.admit(authorization)
    given = {"X-Actor": _text(x_actor), "X-Purpose": _text(x_purpose)}
    for name, limit in (("X-Actor", ACTOR_LIMIT), ("X-Purpose", PURPOSE_LIMIT)):
        value = given[name]
        if value is not None and not (0 < len(value) <= limit and not UNSAFE_IN_NAMES.search(value)):
            raise HTTPException(
                400, f"{name} must be 1 to {limit} printable characters (no control or bidirectional-override ones)"
            )
    caller = Caller(grant=grant, person=given["X-Actor"], purpose=given["X-Purpose"])
    request.state.caller = caller
    return caller


def _text(header: str | None) -> str | None:
    """A header's text: HTTP carries bytes, which Starlette reads as Latin-1; a name sent in UTF-8
    is read back as UTF-8 (so a control or bidi character inside it is seen as one)."""
    if header is None:
        return None
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header


CallerDep = Annotated[Caller, Depends(authenticate)]


class Allow:
    """Route dependency: the caller's token must carry `scope`; a partner state's token must
    also be allowed to see the captive named in the path."""

    def __init__(self, scope: Scope):
        self.scope = scope

    def __call__(self, request: Request, caller: CallerDep) -> Caller:
        if not caller.may(self.scope):
            raise HTTPException(
                403,
                f"this needs the {self.scope.value} scope, which the roles of client {caller.client_id} "
                f"({', '.join(sorted(caller.grant.roles))}) do not grant",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.scope.value}"'},
            )
        captive_id = request.path_params.get("captive_id")
        if caller.partner_state and captive_id is not None:
            runtime = request.app.state.runtime
            with runtime.sessions() as session:
                if not runtime.definition.access.visible(session, caller.partner_state, [captive_id]):
                    raise HTTPException(404, f"no captive {captive_id}")
        return caller

    def __repr__(self) -> str:
        return f"Allow({self.scope.value})"


def allow(scope: Scope):
    return Depends(Allow(scope))


# -- the token endpoint (OAuth2 client credentials, RFC 6749 section 4.4) -------------------------

token_router = APIRouter(tags=["auth"])


def _token_error(status: int, error: str, description: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _basic(authorization: str | None) -> tuple[str, str] | None:
    found = re.fullmatch(r"Basic ([A-Za-z0-9+/=]+)", (authorization or "").strip())
    if not found:
        return None
    try:
        client_id, _, secret = base64.b64decode(found.group(1), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


class TokenError(BaseModel):
    """An OAuth 2.0 error answer (RFC 6749 section 5.2)."""

    error: str
    error_description: str


@token_router.post(
    "/oauth/token",
    responses={
        400: {"model": TokenError, "description": "an unsupported grant type, missing credentials or a bad scope"},
        401: {"model": TokenError, "description": "an unknown client or a wrong secret"},
        **refusals(413, 422),
    },
)
def issue_token(
    request: Request,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form(description="space-separated; default: every scope of the client")] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    """Client credentials -> a short-lived access token (JWT) for all three services. Send the
    client id and secret with HTTP Basic or as form fields."""
    if grant_type != "client_credentials":
        return _token_error(400, "unsupported_grant_type", "only client_credentials is supported")
    credentials = _basic(authorization) or (
        (client_id, client_secret) if client_id is not None and client_secret is not None else None
    )
    if credentials is None:
        return _token_error(400, "invalid_request", "client_id and client_secret are required")
    gate: Gate = request.app.state.runtime.gate
    found = gate.registry.current().authenticate(*credentials)
    if found is None:
        return _token_error(401, "invalid_client", "unknown client or wrong secret", {"WWW-Authenticate": "Basic"})
    client, agency = found
    try:
        scopes = tokens.granted_scopes(client, scope)
    except PermissionError as error:
        return _token_error(400, "invalid_scope", str(error))
    lifetime = timedelta(seconds=gate.settings.token_lifetime_s)
    token = tokens.issue(gate.key, client, agency, scopes, now=datetime.now(UTC), lifetime=lifetime)
    log.info("token issued", client_id=client.client_id, agency=agency.agency_id)
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(lifetime.total_seconds()),
            "scope": " ".join(sorted(scopes)),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
