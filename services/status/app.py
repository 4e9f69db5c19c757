"""The status service, assembled."""

from pathlib import Path

from services.status import api, tables
from services.status.policies import policies
from services.status.projector import projector
from services.system import SYSTEM
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import service_settings
from shared.web.app import create_app

StatusSettings = service_settings("status", port=8002)


definition = ServiceDefinition(
    name="status",
    title="Status: legal status determination (GC III Arts. 4-5, AP I Arts. 43-47)",
    system=SYSTEM,
    settings=StatusSettings,
    metadata=tables.metadata,
    store_tables=tables.store_tables,
    migrations=Path(__file__).resolve().parent / "migrations",
    routers=(api.router,),
    access=tables.access,
    key_tables=tables.keys,  # personal data it records is sealed with the captive's key
    policies=policies,
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
