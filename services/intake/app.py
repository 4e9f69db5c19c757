"""The intake service, assembled."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.intake import api, projections, tables
from services.intake.custody import HANDOVER_EVENTS
from shared.contracts import DecodedEvent, registered_types, topics
from shared.contracts.registry import declared_in
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import ServiceSettings
from shared.web.app import create_app


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    port: int = 8001
    database_url: str = "sqlite:///var/intake.db"


def handlers(_store):
    """From disposition.events.v1, only the hand-overs out of custody: each is folded into his
    custody state and the clock facts (no policy runs: intake appends nothing in reply). Every
    other event type of that topic has no handler, so the consumer passes it by (it still takes
    its place in its stream's hash chain): never a dead letter."""

    def on_handover(session, event: DecodedEvent) -> None:
        projections.project_handover(session, event.envelope, event.payload)

    return dict.fromkeys(HANDOVER_EVENTS, on_handover)


definition = ServiceDefinition(
    name="intake",
    title="Intake: captives' records (GC III Arts. 17, 70, 122)",
    topic=topics.INTAKE_EVENTS,
    # Only what ends or moves custody: CustodyEnded and HandedToRepatriationCommission (handlers).
    consumes=(topics.DISPOSITION_EVENTS,),
    metadata=tables.metadata,
    store_tables=tables.store_tables,
    migrations=Path(__file__).resolve().parent / "migrations",
    routers=(api.router,),
    access=tables.access,
    handlers=handlers,
    replay_appliers={
        **{
            name: projections.project
            for (name, _), model in registered_types().items()
            if declared_in(model, "shared.contracts.intake")
        },
        **dict.fromkeys(HANDOVER_EVENTS, projections.project_handover),
    },
    projection_tables=(tables.captives, tables.clock_facts),
    key_tables=tables.keys,  # identity data and free text are sealed with the captive's key
)


def build(settings: IntakeSettings | None = None, **options):
    return create_app(definition, settings or IntakeSettings(), **options)
