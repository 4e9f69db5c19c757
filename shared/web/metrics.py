"""`/metrics` in the Prometheus text format, one registry per service instance.

HTTP latency and counts come from prometheus-fastapi-instrumentator, labelled by route template
(`/v1/captives/{captive_id}`), never by the ids in a path. The event pipeline's figures are read
at scrape time from the running parts: events the relay published, records the consumer handled
by outcome, its lag per partition, the outbox backlog and its parked rows, and whether this instance leads the relay.

The endpoint carries counts only, no captive's data, and needs no token, like /healthz: a
deployment keeps it on the internal network its Prometheus scrapes, not on the public ingress.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator

if TYPE_CHECKING:
    from shared.runtime.runtime import ServiceRuntime

UNMEASURED = ["/metrics", "/healthz", "/readyz"]


def expose(app: FastAPI, runtime: ServiceRuntime) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(runtime))
    Instrumentator(
        registry=registry,
        should_group_status_codes=False,  # 401, 403, 404, 409 and 429 mean different things here
        excluded_handlers=UNMEASURED,
    ).instrument(app).expose(app, include_in_schema=False, should_gzip=True)
    return registry


class PipelineCollector(Collector):
    def __init__(self, runtime: ServiceRuntime):
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self.runtime
        service = runtime.definition.name
        produced = CounterMetricFamily(
            "captives_events_produced",
            "Events the outbox relay published and the broker acknowledged",
            labels=["topic"],
        )
        produced.add_metric([runtime.topic], runtime.relay.published_total)
        yield produced

        leader = GaugeMetricFamily(
            "captives_relay_leader", "1 if this instance publishes the service's outbox", labels=["service"]
        )
        leader.add_metric([service], 1.0 if runtime.relay.leading else 0.0)
        yield leader

        backlog = self._outbox_backlog()
        if backlog is not None:
            yield GaugeMetricFamily(
                "captives_outbox_backlog", "Events appended but not yet acknowledged by the broker", value=backlog
            )

        parked = self._outbox_parked()
        if parked is not None:
            yield GaugeMetricFamily(
                "captives_outbox_parked",
                "Outbox rows the broker refused for good, each holding back the later events of its stream "
                "(captives outbox list)",
                value=parked,
            )
        yield CounterMetricFamily(
            "captives_relay_fenced",
            "Times this instance's relay found a newer leader's producer had fenced it, and stepped down",
            value=runtime.relay.fenced_total,
        )
        yield CounterMetricFamily(
            "captives_relay_stalls",
            "Times the relay's watchdog found a round stuck in a Kafka call and started a new relay thread",
            value=runtime.relay.stalls_total,
        )

        consumer = runtime.consumer
        if consumer is None:
            return
        consumed = CounterMetricFamily(
            "captives_events_consumed", "Upstream records handled, by outcome", labels=["outcome"]
        )
        consumed.add_metric(["applied"], consumer.applied_total)
        consumed.add_metric(["duplicate"], consumer.duplicates_total)  # redelivered: the inbox had it
        consumed.add_metric(["ignored"], consumer.ignored_total)  # a type this service does not use
        consumed.add_metric(["dead_lettered"], consumer.dead_lettered_total)
        # Held behind their captive's dead letter, and held for a build that knows their type or version.
        consumed.add_metric(["parked"], consumer.parked_total)
        consumed.add_metric(["waiting"], consumer.waiting_total)
        consumed.add_metric(["released"], consumer.released_total)
        yield consumed
        held = consumer.parked_counts()
        if held:
            parked = GaugeMetricFamily(
                "captives_parked_records",
                "Records held now: dead letters (captives dlq), records waiting for a build that knows "
                "their event type or version, and records parked behind either",
                labels=["state"],
            )
            for state, count in sorted(held.items()):
                parked.add_metric([state], count)
            yield parked
        yield CounterMetricFamily(
            "captives_dead_lettered", "Records sent to a dead-letter topic", value=consumer.dead_lettered_total
        )
        yield CounterMetricFamily(
            "captives_chain_breaks",
            "Records dead-lettered because they break their stream's hash chain (forged, altered, out of order)",
            value=consumer.chain_breaks_total,
        )
        yield CounterMetricFamily(
            "captives_forged_records",
            "Records dead-lettered because their publisher's pinned key did not sign them (unsigned, "
            "unknown key, or a signature that does not hold)",
            value=consumer.forgeries_total,
        )
        yield CounterMetricFamily(
            "captives_consumer_stalls",
            "Times the consumer's watchdog found a poll or a handler stuck in a call and started a new consumer thread",
            value=consumer.stalls_total,
        )
        yield CounterMetricFamily(
            "captives_consumer_retries",
            "Polls undone and read again because the database or the broker was away (never dead-lettered)",
            value=consumer.retries_total,
        )
        stalled = consumer.stalled()
        yield GaugeMetricFamily(
            "captives_consumer_stalled_seconds",
            "How long the consumer has made no progress, once past its bound (0 while it makes progress)",
            value=stalled["for_s"] if stalled else 0,
        )
        lag = GaugeMetricFamily(
            "captives_consumer_lag", "Records not yet handled, per assigned partition", labels=["topic", "partition"]
        )
        for tp, behind in sorted(consumer.lag.items()):
            lag.add_metric([tp.topic, str(tp.partition)], behind)
        yield lag

    def _outbox_parked(self) -> int | None:
        try:
            return self.runtime.relay.parked()
        except sa.exc.SQLAlchemyError:
            return None

    def _outbox_backlog(self) -> int | None:
        try:
            return self.runtime.relay.backlog()
        except sa.exc.SQLAlchemyError:
            return None  # the database is away: /readyz says so; leave the gauge out
