"""Access tokens: short-lived JWTs (RFC 9068 profile) signed with the issuer's Ed25519 key.

Every service can issue them (the OAuth2 client-credentials endpoint is mounted on each, so no
one service is a single point of failure) and every service verifies them. The signing key is one
file shared by the services of a deployment, created by `captives clients` or on first start.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth.registry import Agency, Client
from shared.auth.roles import AgencyKind, Role, Scope, scopes_of

ISSUER = "urn:captives:token-issuer"
AUDIENCES = ("intake", "status", "disposition")
ALGORITHM = "EdDSA"
LEEWAY_S = 30  # clock skew tolerated between the services' machines


class InvalidToken(Exception):
    """Missing, malformed, badly signed, expired or not meant for this service: a 401."""


@dataclass(frozen=True)
class Grant:
    """What a token says about its bearer."""

    client_id: str
    agency_id: str
    roles: frozenset[Role]
    scopes: frozenset[str]
    partner_state: str | None  # set for every client of a partner-state agency
    token_id: str
    expires_at: int


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The issuer key; created once, atomically, so services starting together agree on it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race: use its key
        else:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def granted_scopes(client: Client, requested: str | None) -> frozenset[str]:
    """All the client's scopes, or the requested subset (asking for more is an error)."""
    allowed = frozenset(scope.value for scope in scopes_of(frozenset(client.roles)))
    if not requested:
        return allowed
    wanted = frozenset(requested.split())
    if extra := wanted - allowed:
        raise PermissionError(f"scope not granted to this client: {' '.join(sorted(extra))}")
    return wanted


def issue(
    key: Ed25519PrivateKey,
    client: Client,
    agency: Agency,
    scopes: frozenset[str],
    *,
    now: datetime,
    lifetime: timedelta,
    audience: tuple[str, ...] = AUDIENCES,
) -> str:
    claims = {
        "iss": ISSUER,
        "sub": client.client_id,
        "aud": list(audience),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": str(uuid.uuid4()),
        "client_id": client.client_id,
        "agency": agency.agency_id,
        "roles": sorted(role.value for role in client.roles),
        "scope": " ".join(sorted(scopes)),
    }
    if agency.kind is AgencyKind.PARTNER_STATE:
        claims["partner_state"] = agency.state
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "at+jwt"})


def verify(token: str, key: Ed25519PrivateKey, *, audience: str) -> Grant:
    try:
        claims = jwt.decode(
            token,
            key.public_key(),
            algorithms=[ALGORITHM],  # never taken from the token's own header
            audience=audience,
            issuer=ISSUER,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
        )
        return Grant(
            client_id=claims["sub"],
            agency_id=str(claims["agency"]),
            roles=frozenset(Role(role) for role in claims.get("roles", [])),
            scopes=frozenset(str(claims.get("scope", "")).split()) & frozenset(Scope),
            partner_state=claims.get("partner_state"),
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired; request a new one") from None
    except (jwt.InvalidTokenError, KeyError, ValueError) as error:
        raise InvalidToken(f"invalid token: {error}") from None
