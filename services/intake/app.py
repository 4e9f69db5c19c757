"""The intake service, assembled."""

from pathlib import Path

from services.intake import api, tables
from services.intake.projector import projector
from services.system import SYSTEM
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import service_settings
from shared.web.app import create_app

IntakeSettings = service_settings("intake", port=8001)


definition = ServiceDefinition(
    name="intake",
    title="Intake: captives' records (GC III Arts. 17, 70, 122)",
    # From disposition's topic, only what ends or moves custody: CustodyEnded and
    # HandedToRepatriationCommission (its projector applies them; no policy runs: intake appends
    # nothing in reply). Every other event type of that topic is passed by (it still takes its
    # place in its stream's hash chain).
    system=SYSTEM,
    settings=IntakeSettings,
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
