"""How a service declares its routes: each read or write names its path, the scope the caller's
token must carry, and the refusals it can give besides those of every endpoint behind a token
(shared/web/refusals.py). One line instead of a block per route, and the same for every service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

from shared.auth.gate import allow
from shared.auth.roles import Scope
from shared.web.refusals import refusals


class Routes:
    """A service's router (`router`, what its definition includes) and its route decorators."""

    def __init__(self, tag: str):
        self.router = APIRouter(prefix="/v1", tags=[tag])

    def read(self, path: str, scope: Scope, *codes: int, also: Sequence = (), **options: Any):
        """A GET route."""
        if codes:
            options["responses"] = refusals(*codes)
        return self.router.get(path, dependencies=[allow(scope), *also], **options)

    def write(self, path: str, scope: Scope, *codes: int, also: Sequence = (), status_code: int = 201, **options: Any):
        """A POST route; `also`: further dependencies (a person of some agency, say)."""
        return self.router.post(
            path, dependencies=[allow(scope), *also], status_code=status_code, responses=refusals(*codes), **options
        )
