"""A service's settings from the environment (pydantic-settings): its own port and database from
<SERVICE>_* variables, the broker's (KAFKA_*) and the callers' verification (AUTH_*) shared by all."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth.settings import AuthSettings
from shared.broker.settings import KafkaSettings


class ServiceSettings(BaseSettings):
    """Made for each service by `service_settings`, with its own env_prefix, port and database."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int
    database_url: str
    log_level: str = "INFO"
    log_json: bool = True
    # The service's Ed25519 key: it signs every record the service publishes and its topic's
    # checkpoints (shared/evidence/signing.py), kept encrypted with the KEK; created on first start,
    # default beside the KEK file (<service>.pem). The pins: the public keys each publisher's
    # records may be signed with (<service>.pub), default `pinned/` beside the key.
    signing_key_file: str = ""
    signing_pins_dir: str = ""
    # How often a checkpoint of the service's topic is published (0: never).
    checkpoint_interval_s: float = Field(default=60.0, ge=0)
    # The key-encryption key that wraps the service's captive keys (shared/privacy/keyring.py): an
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


def service_settings(name: str, *, port: int) -> type[ServiceSettings]:
    """The settings of service `name`: from <NAME>_* variables, on `port` by default, with an
    SQLite database under var/ by default (the embedded quick start). A service with settings of
    its own subclasses what this returns."""
    return type(
        f"{name.title()}Settings",
        (ServiceSettings,),
        {
            "__module__": __name__,
            "__doc__": f"The {name} service's settings (environment variables {name.upper()}_*).",
            "__annotations__": {"port": int, "database_url": str},
            "model_config": SettingsConfigDict(env_prefix=f"{name.upper()}_", extra="ignore"),
            "port": port,
            "database_url": f"sqlite:///var/{name}.db",
        },
    )
