"""W3C trace context (OpenTelemetry) from an HTTP request to the events it causes, downstream.

The path of one trace: the FastAPI instrumentation opens a span from the request's
`traceparent` header (or starts a trace); the event store writes the current context beside
each outbox row; the relay sends it as the record's `traceparent`/`tracestate` headers; the
consumer continues the trace from those headers while a handler runs, so the events that
handler appends carry it on to the next service. The context travels beside the events, never
inside them: the events are the log of record, hashed and replayed, and a trace id is transport.

Spans are exported only where an OTLP endpoint is configured (the standard
OTEL_EXPORTER_OTLP_ENDPOINT variable); the ids reach the logs and the headers either way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from fastapi import FastAPI
from kafka.consumer.fetcher import ConsumerRecord
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

tracer = trace.get_tracer("captives")

_installed = threading.Lock()
_provider: TracerProvider | None = None


class TraceContext(NamedTuple):
    traceparent: str | None
    tracestate: str | None


def install(service: str) -> TracerProvider:
    """The process's tracer provider, made once (tests run three services in one process)."""
    global _provider
    with _installed:
        if _provider is None:
            _provider = TracerProvider(resource=Resource.create({"service.name": f"captives-{service}"}))
            if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(_provider)
        return _provider


def instrument_http(app: FastAPI, service: str) -> None:
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=install(service), excluded_urls="healthz,readyz,metrics", exclude_spans=["send", "receive"]
    )


def trace_context() -> TraceContext:
    """The current span's context as W3C headers (None, None outside any span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return TraceContext(carrier.get("traceparent"), carrier.get("tracestate"))


@contextmanager
def consuming(record: ConsumerRecord, group: str) -> Iterator[trace.Span]:
    """A consumer span for one record, continuing the trace its headers carry."""
    carrier = {name: value.decode("latin-1") for name, value in record.headers or () if isinstance(value, bytes)}
    with tracer.start_as_current_span(
        f"{record.topic} process",
        context=propagate.extract(carrier),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": group,
            "messaging.kafka.offset": record.offset,
            "messaging.destination.partition.id": str(record.partition),
        },
    ) as span:
        yield span


@contextmanager
def consuming_many(records: list[ConsumerRecord], group: str) -> Iterator[trace.Span]:
    """One consumer span for records handled together, linked to the trace of each (a span has
    one parent; OpenTelemetry's messaging conventions link the batch's messages instead)."""
    links = []
    for record in records:
        carrier = {name: value.decode("latin-1") for name, value in record.headers or () if isinstance(value, bytes)}
        context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    with tracer.start_as_current_span(
        f"{records[0].topic} process",
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": records[0].topic,
            "messaging.consumer.group.name": group,
            "messaging.batch.message_count": len(records),
        },
    ) as span:
        yield span


def add_trace_ids(_logger, _method, event_dict: dict) -> dict:
    """structlog processor: the trace and span ids of the current span, to join logs and traces."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict
