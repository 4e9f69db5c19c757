"""The services as the command line names them, read from the system's declaration
(services/system.py): their modules and their settings."""

from __future__ import annotations

from enum import StrEnum

from services.system import SYSTEM, app_module

# Typer offers an enum's values as the choices of an argument.
Service = StrEnum("Service", {name: name for name in SYSTEM.services})
# The services that consume topics, and so may hold dead letters.
Consuming = StrEnum("Consuming", {name: name for name in SYSTEM.consumers})


def service_module(service: Service):
    return app_module(str(service))


def service_settings(service: Service):
    return service_module(service).definition.settings()
