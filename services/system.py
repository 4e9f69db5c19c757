"""The system, declared once: the three services, the topic each publishes, and the pipes between
them. Everything that depends on who consumes whom reads it from here: each service's definition
(services/<name>/app.py) and its consumer tables (services/<name>/tables.py), the broker's ACLs
(tools/broker.py), the AsyncAPI document (tools/contracts.py) and the command line's choices
(tools/services.py). Which event types of a topic a service uses follows from its projector and
its reactions (ServiceDefinition.uses), not from a list here."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from shared.contracts.topics import DISPOSITION_EVENTS, INTAKE_EVENTS, STATUS_EVENTS
from shared.runtime.topology import System

if TYPE_CHECKING:
    from shared.runtime.definition import ServiceDefinition

SYSTEM = System(
    topics={"intake": INTAKE_EVENTS, "status": STATUS_EVENTS, "disposition": DISPOSITION_EVENTS},
    pipes=(
        ("intake", "status"),  # registrations and force memberships: status decides
        ("intake", "disposition"),  # the facts about a captive the disposition rules read
        ("status", "disposition"),  # status decisions and conflict facts
        ("disposition", "intake"),  # hand-overs out of custody: intake follows custody
    ),
)


def app_module(service: str):
    """services/<service>/app.py, imported when asked for (a service never imports another)."""
    if service not in SYSTEM.topics:
        raise KeyError(f"{service} is not a service of the system")
    return importlib.import_module(f"services.{service}.app")


def definition(service: str) -> ServiceDefinition:
    return app_module(service).definition


def definitions() -> list[ServiceDefinition]:
    return [definition(service) for service in SYSTEM.services]
