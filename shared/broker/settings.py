"""The broker's settings from the environment (KAFKA_*, pydantic-settings), shared by all services."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.broker.access import KafkaAccess, read_password


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
    # Every client authenticates (SASL/SCRAM-SHA-512; shared/broker/access.py): as the principal
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
