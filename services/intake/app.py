"""The intake service, assembled."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.intake import api, tables
from services.intake.projector import projector
from shared.contracts import topics
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import ServiceSettings
from shared.web.app import create_app


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    port: int = 8001
    database_url: str = "sqlite:///var/intake.db"


definition = ServiceDefinition(
    name="intake",
    title="Intake: captives' records (GC III Arts. 17, 70, 122)",
    topic=topics.INTAKE_EVENTS,
    # Only what ends or moves custody: CustodyEnded and HandedToRepatriationCommission (its
    # projector applies them; no policy runs: intake appends nothing in reply). Every other event
    # type of that topic is passed by (it still takes its place in its stream's hash chain).
    consumes=(topics.DISPOSITION_EVENTS,),
    metadata=tables.metadata,
    store_tables=tables.store_tables,
    migrations=Path(__file__).resolve().parent / "migrations",
    routers=(api.router,),
    access=tables.access,
    projector=projector,  # its own events, the hand-overs it consumes, access control
    projection_tables=(tables.captives, tables.clock_facts),
    key_tables=tables.keys,  # identity data and free text are sealed with the captive's key
)


def build(settings: IntakeSettings | None = None, **options):
    return create_app(definition, settings or IntakeSettings(), **options)
