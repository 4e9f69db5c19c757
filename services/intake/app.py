"""The intake service, assembled."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.intake import api, projections, tables
from shared.contracts import registered_types, topics
from shared.service import ServiceDefinition, create_app
from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    port: int = 8001
    database_url: str = "sqlite:///var/intake.db"


definition = ServiceDefinition(
    name="intake",
    title="Intake: captives' records (GC III Arts. 17, 70, 122)",
    topic=topics.INTAKE_EVENTS,
    consumes=(),
    metadata=tables.metadata,
    store_tables=tables.store_tables,
    migrations=Path(__file__).resolve().parent / "migrations",
    routers=(api.router,),
    access=tables.access,
    replay_appliers={
        name: projections.project
        for (name, _), model in registered_types().items()
        if model.__module__ == "shared.contracts.intake"
    },
    projection_tables=(tables.captives, tables.clock_facts),
    key_tables=tables.keys,  # identity data and free text are sealed with the captive's key
)


def build(settings: IntakeSettings | None = None, **options):
    return create_app(definition, settings or IntakeSettings(), **options)
