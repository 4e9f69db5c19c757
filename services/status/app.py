"""The status service, assembled."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.status import api, handlers, tables
from services.status.projector import projector
from shared.contracts import topics
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import ServiceSettings
from shared.web.app import create_app


class StatusSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATUS_", extra="ignore")

    port: int = 8002
    database_url: str = "sqlite:///var/status.db"


definition = ServiceDefinition(
    name="status",
    title="Status: legal status determination (GC III Arts. 4-5, AP I Arts. 43-47)",
    topic=topics.STATUS_EVENTS,
    consumes=(topics.INTAKE_EVENTS,),
    metadata=tables.metadata,
    store_tables=tables.store_tables,
    migrations=Path(__file__).resolve().parent / "migrations",
    routers=(api.router,),
    access=tables.access,
    key_tables=tables.keys,  # personal data it records is sealed with the captive's key
    handlers=handlers.handlers,
    projector=projector,
    projection_tables=(
        tables.captive_facts,
        tables.force_memberships,
        tables.legal_facts,
        tables.conflict_facts,
        tables.rulebook_adoptions,
        tables.decisions,
    ),
)


def build(settings: StatusSettings | None = None, **options):
    return create_app(definition, settings or StatusSettings(), **options)
