"""Configuration from the environment (pydantic-settings). Kafka settings are shared by all
services (KAFKA_*); each service reads its own port and database from <SERVICE>_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


class AuthSettings(BaseSettings):
    """Shared by the services of one deployment (AUTH_*): where the registry of agencies and
    clients and the token-signing key are, and the limits every request is held to."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    registry_file: str = "var/auth/registry.json"
    signing_key_file: str = "var/keys/token-issuer.pem"
    token_lifetime_s: int = Field(default=900, ge=60, le=3600)  # short-lived: revocation is expiry
    # A batch of 1,000 registrations is about 1.5 MB; 8 MiB leaves room without inviting abuse.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=4)
    # Where the per-agency request counts live: this process (one instance per service), or a
    # store the instances share, e.g. redis://host:6379 (with the redis package installed).
    rate_limit_storage: str = "memory://"


class ServiceSettings(BaseSettings):
    """Subclassed by each service with its own env_prefix, port and database default."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int
    database_url: str
    log_level: str = "INFO"
    log_json: bool = True
    # The service's Ed25519 key for signing checkpoints of its topic (created on first start;
    # default var/keys/<service>.pem), and how often a checkpoint is published (0: never).
    checkpoint_key_file: str = ""
    checkpoint_interval_s: float = Field(default=60.0, ge=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
