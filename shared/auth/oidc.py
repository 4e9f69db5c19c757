"""Verifying access tokens of an OpenID Connect provider (Keycloak by default, any issuer by
configuration) against the keys it publishes, so a service holds no signing key of its own.

The algorithm is the key's, never the token's: a token whose header names another algorithm than
the published key it points at (`none`, HS256 with the public key as secret...) is refused. Keys
are cached; a token signed with a key id not in the cache makes one refetch of the JWKS (at most
one per `refetch_cooldown_s`, so a stream of invented key ids cannot hammer the issuer), which is
how a rotated key is picked up without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx
import jwt

from shared.auth.roles import Role

# Asymmetric signatures only: with a symmetric one whoever can verify can also sign.
ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})
LEEWAY_S = 30  # clock skew tolerated between the issuer's machine and ours


class InvalidOidcToken(Exception):
    """Missing, malformed, badly signed, expired, of another issuer or audience: a 401."""


class IssuerUnreachable(Exception):
    """The issuer's keys could not be fetched: no token can be verified now (a 503, not a 401:
    the caller's token may well be good)."""


@dataclass(frozen=True)
class VerifiedCaller:
    """Who a verified token speaks for: a person, or an agency's system (a client)."""

    subject: str
    agency_id: str
    roles: frozenset[Role]
    client_id: str | None  # set when the token was issued to a client for itself (no person)
    username: str | None
    name: str | None
    token_id: str | None
    expires_at: int
    # How the issuer says the caller signed in (RFC 8176 `amr`: "pwd", "otp"...); empty when the
    # token does not say, which counts as a password alone.
    methods: frozenset[str] = frozenset()

    @property
    def is_person(self) -> bool:
        return self.client_id is None


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        role_claim: str = "roles",
        agency_claim: str = "agency",
        client_claim: str = "client_id",
        jwks_uri: str | None = None,
        jwks_lifespan_s: float = 300.0,
        refetch_cooldown_s: float = 30.0,
        leeway_s: int = LEEWAY_S,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.role_claim = role_claim
        self.agency_claim = agency_claim
        self.client_claim = client_claim
        self.leeway_s = leeway_s
        self._jwks_uri = jwks_uri
        self._options = {"lifespan": jwks_lifespan_s, "cooldown_duration": refetch_cooldown_s}
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    @property
    def _jwks(self) -> jwt.PyJWKClient:
        """Made at the first token, not at start: a service may start before its issuer."""
        with self._lock:
            if self._client is None:
                self._client = jwt.PyJWKClient(
                    self._jwks_uri or self._discover_jwks_uri(), cache_jwk_set=True, timeout=10, **self._options
                )
            return self._client

    def _discover_jwks_uri(self) -> str:
        try:
            answer = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10.0)
            answer.raise_for_status()
        except httpx.HTTPError as error:
            raise IssuerUnreachable(f"{self.issuer} did not answer its discovery document: {error}") from None
        metadata = answer.json()
        if metadata.get("issuer") != self.issuer:  # RFC 8414 section 3.3
            named = metadata.get("issuer")
            raise IssuerUnreachable(f"the discovery document names issuer {named!r}, not {self.issuer!r}")
        return metadata["jwks_uri"]

    def verify(self, token: str) -> VerifiedCaller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidOidcToken(f"unusable token: {error}") from error
        try:
            key = self._jwks.get_signing_key(header.get("kid") or "")
        except jwt.PyJWKClientConnectionError as error:
            raise IssuerUnreachable(f"the issuer's keys could not be fetched: {error}") from error
        except (jwt.PyJWTError, jwt.PyJWKClientError) as error:
            raise InvalidOidcToken(f"unusable token or unknown key: {error}") from error
        algorithm = key.algorithm_name
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidOidcToken(f"the issuer's key is for {algorithm}, which is not accepted")
        if header.get("alg") != algorithm:
            raise InvalidOidcToken(f"the token claims {header.get('alg')!r} but its key is for {algorithm}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidOidcToken(str(error)) from error
        agency = claims.get(self.agency_claim)
        if not isinstance(agency, str) or not agency:
            raise InvalidOidcToken(f"the token names no agency ({self.agency_claim!r} claim)")
        return VerifiedCaller(
            subject=claims["sub"],
            agency_id=agency,
            roles=self._roles(claims),
            client_id=claims.get(self.client_claim),
            username=claims.get("preferred_username"),
            name=claims.get("name"),
            token_id=claims.get("jti"),
            expires_at=int(claims["exp"]),
            methods=_methods(claims.get("amr")),
        )

    def _roles(self, claims: dict) -> frozenset[Role]:
        """The project's roles among those the token lists; the issuer's own (Keycloak's
        `offline_access`, `default-roles-<realm>`...) are not ours and are dropped."""
        listed = claims.get(self.role_claim) or []
        if isinstance(listed, str):
            listed = listed.split()
        known = {role.value for role in Role}
        return frozenset(Role(name) for name in listed if name in known)


def _methods(amr: object) -> frozenset[str]:
    """The sign-in methods a token lists; anything but a list of strings lists none."""
    if not isinstance(amr, list):
        return frozenset()
    return frozenset(method for method in amr if isinstance(method, str))
