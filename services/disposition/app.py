"""The disposition service, assembled."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.disposition import api, handlers, tables
from services.disposition.projector import projector
from services.disposition.rules import WISH_CONFIRMATION_DAYS
from shared.contracts import topics
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import ServiceSettings
from shared.web.app import create_app


class DispositionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DISPOSITION_", extra="ignore")

    port: int = 8003
    database_url: str = "sqlite:///var/disposition.db"
    # Rule D17: how recent the verified wish a hand-over rests on must be (docs/legal-basis.md).
    wish_confirmation_days: int = Field(default=WISH_CONFIRMATION_DAYS, ge=1, le=365)


definition = ServiceDefinition(
    name="disposition",
    title="Disposition: exchange eligibility, transfers and repatriation (GC III Arts. 12, 109-119)",
    topic=topics.DISPOSITION_EVENTS,
    consumes=(topics.INTAKE_EVENTS, topics.STATUS_EVENTS),
    metadata=tables.metadata,
    store_tables=tables.store_tables,
    migrations=Path(__file__).resolve().parent / "migrations",
    routers=(api.router,),
    access=tables.access,
    key_tables=tables.keys,  # personal data it records is sealed with the captive's key
    handlers=handlers.handlers,
    projector=projector,
    projection_tables=(
        tables.captives,
        tables.risks,
        tables.partner_claims,
        tables.assurances,
        tables.conflict,
        tables.eligibility,
        tables.eligibility_history,
        tables.exchange_lists,
        tables.list_entries,
        tables.dispositions,
        tables.fact_log,
    ),
)


def build(settings: DispositionSettings | None = None, **options):
    return create_app(definition, settings or DispositionSettings(), **options)
