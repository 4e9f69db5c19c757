"""How a service verifies its callers, from the environment (AUTH_*, pydantic-settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth.agencies import DEMO_AGENCIES


class AuthSettings(BaseSettings):
    """Shared by the services of one deployment (AUTH_*): the OpenID Connect issuer whose tokens
    they verify (they issue none and hold no signing key), the claims that carry a caller's roles,
    agency and client, the agency directory, and the limits every request is held to."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    # e.g. http://127.0.0.1:8180/realms/captives (`captives up` starts that Keycloak). Unset, a
    # service refuses every token: there is no fallback identity.
    oidc_issuer: str | None = None
    oidc_jwks_uri: str | None = None  # default: from the issuer's discovery document
    role_claim: str = "roles"  # a flat list (or space-separated string) of role names
    agency_claim: str = "agency"
    client_claim: str = "client_id"  # present only in tokens issued to a client for itself
    # How long the issuer's published keys are trusted before they are fetched again; a token
    # with an unknown key id refetches at once (at most every 30 s), so a rotation needs no restart.
    jwks_cache_s: float = Field(default=300.0, ge=10.0, le=3600.0)
    clock_leeway_s: int = Field(default=30, ge=0, le=120)  # skew between the issuer's clock and ours
    agencies_file: str = str(DEMO_AGENCIES)
    # A batch of 1,000 registrations is about 1.5 MB; 8 MiB leaves room without inviting abuse.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=4)
    # Where the per-agency request counts live: this process (one instance per service), or a
    # store the instances share, e.g. redis://host:6379 (with the redis package installed).
    rate_limit_storage: str = "memory://"
    # Bad credentials (401s) one address may send a minute before the credential screen answers
    # its further requests 429 (a token verified before still passes); 0 turns the throttle off.
    failed_credentials_per_minute: int = Field(default=30, ge=0)
