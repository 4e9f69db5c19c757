"""The disposition service, assembled."""

from pathlib import Path

from pydantic import Field

from services.disposition import api, list_routes, tables
from services.disposition.policies import policies
from services.disposition.projector import projector
from services.disposition.rules import WISH_CONFIRMATION_DAYS
from services.system import SYSTEM
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import service_settings
from shared.web.app import create_app


class DispositionSettings(service_settings("disposition", port=8003)):
    # Rule D17: how recent the verified wish a hand-over rests on must be (docs/legal-basis.md).
    wish_confirmation_days: int = Field(default=WISH_CONFIRMATION_DAYS, ge=1, le=365)


definition = ServiceDefinition(
    name="disposition",
    title="Disposition: exchange eligibility, transfers and repatriation (GC III Arts. 12, 109-119)",
    system=SYSTEM,
    settings=DispositionSettings,
    metadata=tables.metadata,
    store_tables=tables.store_tables,
    migrations=Path(__file__).resolve().parent / "migrations",
    routers=(api.router, list_routes.router),
    access=tables.access,
    key_tables=tables.keys,  # personal data it records is sealed with the captive's key
    policies=policies,
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
