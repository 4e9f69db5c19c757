"""Structured logs: one JSON object per line (or readable lines for a terminal), for our own
loggers and for uvicorn's and kafka-python's alike."""

from __future__ import annotations

import logging
import sys

import structlog
from asgi_correlation_id.context import correlation_id

from shared.platform.tracing import add_trace_ids


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        _add_correlation_id,
        add_trace_ids,
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # kafka-python logs every reconnect attempt at INFO/ERROR while a broker is away.
    logging.getLogger("kafka").setLevel(logging.CRITICAL if level.upper() != "DEBUG" else logging.DEBUG)


def _add_service(service: str):
    def add(_logger, _method, event_dict):
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _add_correlation_id(_logger, _method, event_dict):
    """The request's (or the consumed event's) correlation id, to find every line about it."""
    value = correlation_id.get()
    if value:
        event_dict.setdefault("correlation_id", value)
    return event_dict
