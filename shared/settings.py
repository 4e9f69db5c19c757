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

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


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
