"""The entry points `captives demo` calls: the services' URLs, the realm's credentials, and a run
of the scenario with the actions of tools/demo/actions.py."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from deploy.keycloak.provision import Credentials
from tools.demo.actions import PERFORM
from tools.demo.client import DemoFailed, Services
from tools.demo.runner import Loaded, Run
from tools.demo.steps import (
    Scenario,
)
from tools.demo.story import SCENARIO

# -- entry points -------------------------------------------------------------------------------


def service_urls(**given: str | None) -> dict[str, str]:
    """Each service's URL: as given, else from its settings (<SERVICE>_HOST/_PORT, as `captives up`)."""
    from services.disposition.app import DispositionSettings
    from services.intake.app import IntakeSettings
    from services.status.app import StatusSettings

    urls = {}
    for name, settings in (
        ("intake", IntakeSettings),
        ("status", StatusSettings),
        ("disposition", DispositionSettings),
    ):
        if given.get(name):
            urls[name] = given[name]
        else:
            found = settings()
            urls[name] = f"http://{found.host}:{found.port}"
    return urls


def load_credentials(path: Path) -> Credentials:
    if not path.exists():
        raise DemoFailed(
            f"no realm credentials at {path}: `make up` (captives up) writes them there; "
            "for a stack started with --var DIR, pass --credentials DIR/keycloak/credentials.json"
        )
    return Credentials.read(path)


def run_demo(
    urls: Mapping[str, str],
    credentials: Credentials,
    *,
    console: Console | None = None,
    scenario: Scenario = SCENARIO,
    wait_s: float = 60,
) -> Loaded:
    """Load `scenario` into the running services and print what changed at each step."""
    services = Services(urls, credentials)
    try:
        return Run(scenario, services, console or Console(), PERFORM, wait_s=wait_s).perform()
    finally:
        services.close()
