"""The three services as the command line names them, their modules and their settings."""

from __future__ import annotations

from enum import StrEnum


class Service(StrEnum):
    intake = "intake"
    status = "status"
    disposition = "disposition"


def service_module(service: Service):
    if service is Service.intake:
        from services.intake import app as module
    elif service is Service.status:
        from services.status import app as module
    else:
        from services.disposition import app as module
    return module


def service_settings(service: Service):
    module = service_module(service)
    return {
        "intake": module.__dict__.get("IntakeSettings"),
        "status": module.__dict__.get("StatusSettings"),
        "disposition": module.__dict__.get("DispositionSettings"),
    }[service.value]()
