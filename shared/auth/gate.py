"""The door of every service: token verification against the identity provider's published keys,
per-agency rate limits, the scope each endpoint requires, the partner-state object check, and the
access log.

The services issue no tokens and hold no signing key: an OpenID Connect provider (Keycloak by
default, any issuer by configuration) does, and each service only verifies (shared/auth/oidc.py).
Who acted is what the verified token says: a person (his subject and display name from the
issuer) or an agency's system (its client id), never what a header claims.

Every route under /v1 declares the scope it needs (`dependencies=[Allow(Scope.X)]`); a route
without one is a bug that tests/unit/test_route_policy.py catches. A partner state's token opens
only the captives it may see (shared/auth/projections.py); for any other it is a 404, the same
answer as for a captive that does not exist, so a partner cannot probe for who is held.

Revocation: a disabled person or client, a revoked session or a withdrawn role gets no new token
at once; a token already issued stands until it expires, at most the realm's access-token lifespan
(300 s, deploy/keycloak/provision.py) plus the clock leeway (AUTH_CLOCK_LEEWAY_S, 30 s).
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import structlog
from fastapi import Depends, Header, HTTPException, Request

from shared.auth import agencies as directories
from shared.auth.agencies import Agency
from shared.auth.oidc import InvalidOidcToken, IssuerUnreachable, OidcVerifier, VerifiedCaller
from shared.auth.roles import SECOND_FACTOR_ROLES, AgencyKind, Role, Scope, scopes_of, tiers_of
from shared.auth.settings import AuthSettings
from shared.contracts.envelope import EventMetadata
from shared.contracts.intake import UNSAFE_IN_NAMES
from shared.contracts.tiers import DataTier
from shared.web.limits import RateLimiter

log = structlog.get_logger(__name__)

# Events hold an actor in 200 characters: a person's name and username in 90 each, and an
# identifier (a subject or a client id) in 150.
NAME_LIMIT, IDENTIFIER_LIMIT = 90, 150

BEARER = re.compile(r"Bearer ([A-Za-z0-9._~+/=-]+)")
NO_TOKEN = "send an access token from the identity provider: Authorization: Bearer <token>"
# How many verified tokens the gate remembers for the credential screen (shared/auth/screen.py).
REMEMBERED_TOKENS = 10_000


@dataclass(frozen=True)
class Grant:
    """What a verified token says about its bearer, checked against the agency directory."""

    verified: VerifiedCaller
    agency: Agency
    roles: frozenset[Role]

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(scope.value for scope in scopes_of(self.roles))

    @property
    def partner_state(self) -> str | None:
        return self.agency.state if self.agency.kind is AgencyKind.PARTNER_STATE else None


@dataclass(frozen=True)
class Caller:
    """Who is calling: a person or an agency's system, as the verified token says, for which
    agency, and the purpose given for the request (X-Purpose, recorded in the access log)."""

    grant: Grant
    purpose: str | None

    @property
    def is_person(self) -> bool:
        return self.grant.verified.is_person

    @property
    def client_id(self) -> str:
        """The client the token was issued to for itself, or `person:<subject>` for a person:
        what the access log and the idempotency scope name."""
        verified = self.grant.verified
        return verified.client_id if verified.client_id else f"person:{verified.subject}"

    @property
    def actor_id(self) -> str:
        """The stable identity events record (`person:<subject>` or `client:<client id>`): what
        the two-person rule compares, since a display name can change or repeat."""
        verified = self.grant.verified
        return f"person:{verified.subject}" if verified.is_person else f"client:{verified.client_id}"

    @property
    def actor(self) -> str:
        """What events show as their actor: the person's name and username from the issuer, or
        the client."""
        verified = self.grant.verified
        if not verified.is_person:
            return f"client {verified.client_id}"
        name = display_name(verified.name or "")
        username = display_name(verified.username or "")
        if name and username:
            return f"{name} ({username})"
        return name or username or f"person {verified.subject}"

    @property
    def agency(self) -> str:
        return self.grant.agency.agency_id

    @property
    def partner_state(self) -> str | None:
        return self.grant.partner_state

    @property
    def tiers(self) -> frozenset[DataTier]:
        return tiers_of(self.grant.scopes)

    def may(self, scope: Scope) -> bool:
        return scope.value in self.grant.scopes

    def metadata(self, occurred_at: datetime | None = None) -> EventMetadata:
        """Who acts, as the verified token and the agency directory say, for the events this
        request appends: the standing a fact takes its legal weight from
        (shared/contracts/standing.py), never a field of the request."""
        return EventMetadata(
            actor=self.actor,
            actor_id=self.actor_id,
            agency=self.agency,
            agency_kind=self.grant.agency.kind.value,
            occurred_at=occurred_at,
        )


# Bidirectional embeddings (LRE, RLE, PDF) and isolates (LRI, RLI, FSI, PDI) make a name display
# as another; a right-to-left name needs none of them (the marks LRM, RLM and ALM stay).
BIDI_CONTROLS = re.compile("[\u202a-\u202c\u2066-\u2069]")


def display_name(text: str) -> str:
    """A name as events may hold it: normalised (NFC, so one name has one spelling), without
    control characters, bidirectional overrides, embeddings or isolates, its length bounded. The
    realm's user profile keeps names editable by its administrators only
    (deploy/keycloak/provision.py); this holds for any issuer."""
    cleaned = BIDI_CONTROLS.sub("", UNSAFE_IN_NAMES.sub("", unicodedata.normalize("NFC", text)))
    return cleaned.strip()[:NAME_LIMIT]


class Gate:
    """Per service instance: the verifier (the issuer's keys, cached), the agency directory
    (re-read when it changes) and the rate limiter."""

    def __init__(self, settings: AuthSettings, *, audience: str):
        self.settings = settings
        self.audience = audience
        self.directory = directories.DirectoryFile(Path(settings.agencies_file))
        self.limiter = RateLimiter(settings.rate_limit_storage)
        self.verifier = (
            OidcVerifier(
                settings.oidc_issuer,
                audience,
                role_claim=settings.role_claim,
                agency_claim=settings.agency_claim,
                client_claim=settings.client_claim,
                jwks_uri=settings.oidc_jwks_uri,
                jwks_lifespan_s=settings.jwks_cache_s,
                leeway_s=settings.clock_leeway_s,
            )
            if settings.oidc_issuer
            else None
        )
        # Digests of tokens admitted before, with their expiry: what lets a good caller through
        # the credential screen's throttle of its address. Only the screen reads it; every request
        # is still verified in full here.
        self._admitted: dict[bytes, int] = {}

    def verified_before(self, token: str) -> bool:
        expires_at = self._admitted.get(_digest(token))
        return expires_at is not None and expires_at > time.time()

    def verifies(self, token: str) -> bool:
        """Whether the token's signature and claims verify (a token verified before is taken as
        it is): what the credential screen asks before it throttles a request, so that a good
        caller is never held back for what other requests from its address did. A signature check
        is cheap; the keys are fetched at most once per cool-down (shared/auth/oidc.py)."""
        if self.verified_before(token):
            return True
        if self.verifier is None:
            return False
        try:
            self.verifier.verify(token)
        except (InvalidOidcToken, IssuerUnreachable):
            return False
        return True

    def _remember(self, token: str, expires_at: int) -> None:
        if len(self._admitted) >= REMEMBERED_TOKENS:
            now = time.time()
            self._admitted = {digest: until for digest, until in self._admitted.items() if until > now}
            while len(self._admitted) >= REMEMBERED_TOKENS:  # all still valid: forget the oldest
                del self._admitted[next(iter(self._admitted))]
        self._admitted[_digest(token)] = expires_at

    def admit(self, authorization: str | None) -> Grant:
        """Verify the bearer token, look its agency up, then count the request against the
        agency's rate."""
        found = BEARER.fullmatch((authorization or "").strip())
        if not found:
            raise _unauthorized(NO_TOKEN)
        if self.verifier is None:
            raise HTTPException(503, "no identity provider is configured (AUTH_OIDC_ISSUER): no token can be verified")
        try:
            verified = self.verifier.verify(found.group(1))
        except InvalidOidcToken as error:
            raise _unauthorized(str(error)) from None
        except IssuerUnreachable as error:
            log.warning("identity provider unreachable", error=str(error))
            raise HTTPException(503, "the identity provider's keys could not be fetched; try again") from None
        if len(verified.subject) > IDENTIFIER_LIMIT or len(verified.client_id or "") > IDENTIFIER_LIMIT:
            raise _unauthorized(f"the token's subject or client id is longer than {IDENTIFIER_LIMIT} characters")
        agency = self.directory.current().agencies.get(verified.agency_id)
        if agency is None:
            raise _unauthorized(f"agency {verified.agency_id} is not in this deployment's agency directory")
        if beyond := agency.roles_beyond_its_kind(verified.roles):
            raise _unauthorized(
                f"a {agency.kind.value} agency cannot hold {', '.join(sorted(beyond))}: "
                "the identity provider grants roles this deployment does not allow"
            )
        if unproven := second_factor_missing(verified):
            raise _unauthorized(
                f"a person holding {', '.join(sorted(unproven))} signs in with a second factor, and this token "
                f"says he signed in with {', '.join(sorted(verified.methods)) or 'nothing it names'}: sign in again "
                "with your one-time code"
            )
        retry_after = self.limiter.hit(agency.agency_id, agency.requests_per_minute)
        if retry_after is not None:
            raise HTTPException(
                429,
                f"agency {agency.agency_id} is over its limit of {agency.requests_per_minute} requests a minute",
                headers={"Retry-After": str(int(retry_after))},
            )
        self._remember(found.group(1), verified.expires_at)
        return Grant(verified=verified, agency=agency, roles=verified.roles)


# What RFC 8176 calls a factor beyond the password: a one-time code, a hardware or smart-card key,
# or the issuer's own word that several factors were used.
SECOND_FACTORS = frozenset({"otp", "hwk", "sc", "mfa"})


def second_factor_missing(verified: VerifiedCaller) -> frozenset[Role]:
    """The roles a person holds that need a second factor his token does not show (none for an
    agency's system, which signs in with its own secret, never a person's password)."""
    if not verified.is_person or verified.methods & SECOND_FACTORS:
        return frozenset()
    return verified.roles & SECOND_FACTOR_ROLES


def _digest(token: str) -> bytes:
    return hashlib.blake2b(token.encode(), digest_size=16).digest()


def unauthorized_headers(message: str) -> dict[str, str]:
    safe = message.replace('"', "'")
    return {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{safe}"'}


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers=unauthorized_headers(message))


def _printable(limit: int) -> dict:
    """The schema of a header of 1 to `limit` printable characters. Declared, not enforced by
    FastAPI: the token is checked first, and `authenticate` answers 400 for a malformed value."""
    return {"minLength": 1, "maxLength": limit, "pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"}


PURPOSE_LIMIT = 500  # the access log keeps the purpose in 500 characters


def authenticate(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
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
    purpose = _text(x_purpose)
    if purpose is not None and not (0 < len(purpose) <= PURPOSE_LIMIT and not UNSAFE_IN_NAMES.search(purpose)):
        raise HTTPException(
            400,
            f"X-Purpose must be 1 to {PURPOSE_LIMIT} printable characters (no control or bidirectional-override ones)",
        )
    caller = Caller(grant=grant, purpose=purpose)
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
                f"this needs the {self.scope.value} scope, which the roles of {caller.actor} "
                f"({', '.join(sorted(caller.grant.roles)) or 'none'}) do not grant",
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
