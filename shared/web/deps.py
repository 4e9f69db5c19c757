"""What a route of any service may ask for: the runtime, a database session, and the 404 it raises."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from shared.runtime.runtime import ServiceRuntime


class NotFound(Exception):
    """The API answers 404 with this message."""


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


def get_session(request: Request):
    with request.app.state.runtime.sessions() as session:
        yield session


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
DbSession = Annotated[Session, Depends(get_session)]
