"""Configuration from the environment (pydantic-settings). Kafka settings are shared by all
services (KAFKA_*); each service reads its own port and database from <SERVICE>_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.kafka_access import KafkaAccess, read_password


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Lets several stacks (or test cases) share one broker without seeing each other's topics.
    topic_prefix: str = ""
    partitions: int = Field(default=6, ge=1)
    # For the topics the services create: 1 for a single broker; 3 and 2 in production, so an
    # acknowledged event (acks=all) is on at least two brokers and one may be lost.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    # Every client authenticates (SASL/SCRAM-SHA-512; shared/kafka_access.py): as the principal
    # it is run as (a service: its name; the read-only operator tools: auditor), with the password
    # in <credentials_dir>/<principal>, unless KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD say otherwise.
    security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = "SASL_PLAINTEXT"
    credentials_dir: str = "var/kafka/credentials"
    sasl_username: str = ""
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None  # with SASL_SSL: the CA that signed the broker's certificate

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def access(self, principal: str) -> KafkaAccess:
        """How to connect as `principal` (or as KAFKA_SASL_USERNAME, when set). Raises
        KafkaCredentialsMissing, naming where the secret was looked for, when there is none."""
        username = self.sasl_username or principal
        password = (
            self.sasl_password.get_secret_value()
            if self.sasl_password is not None
            else read_password(self.credentials_dir, username)
        )
        return KafkaAccess(self.bootstrap_servers, username, password, self.security_protocol, self.ssl_cafile)


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
    agencies_file: str = str(Path(__file__).resolve().parents[1] / "deploy" / "auth" / "demo-agencies.toml")
    # A batch of 1,000 registrations is about 1.5 MB; 8 MiB leaves room without inviting abuse.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=4)
    # Where the per-agency request counts live: this process (one instance per service), or a
    # store the instances share, e.g. redis://host:6379 (with the redis package installed).
    rate_limit_storage: str = "memory://"
    # Bad credentials (401s) one address may send a minute before the credential screen answers
    # its further requests 429 (a token verified before still passes); 0 turns the throttle off.
    failed_credentials_per_minute: int = Field(default=30, ge=0)


class ServiceSettings(BaseSettings):
    """Subclassed by each service with its own env_prefix, port and database default."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int
    database_url: str
    log_level: str = "INFO"
    log_json: bool = True
    # The service's Ed25519 key: it signs every record the service publishes and its topic's
    # checkpoints (shared/signing.py), kept encrypted with the KEK; created on first start,
    # default beside the KEK file (<service>.pem). The pins: the public keys each publisher's
    # records may be signed with (<service>.pub), default `pinned/` beside the key.
    signing_key_file: str = ""
    signing_pins_dir: str = ""
    # How often a checkpoint of the service's topic is published (0: never).
    checkpoint_interval_s: float = Field(default=60.0, ge=0)
    # The key-encryption key that wraps the service's captive keys (shared/sealing.py): an
    # environment secret (<SERVICE>_KEK, 32 bytes in base64) or, without one, a file
    # (<SERVICE>_KEK_FILE, default var/keys/<service>.kek, created 0600 on first start; a file
    # others may read is refused). Never in the database: a copy of it alone decrypts nothing.
    kek: SecretStr | None = None
    kek_file: str = ""
    # How long the consumer of upstream topics may go without a poll that completes before it
    # says it is stuck: /readyz 503 naming the topic, partition and offset, and /metrics.
    consumer_stall_after_s: float = Field(default=150.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
