"""Delivery guarantees through the real broker and the real database: the outbox survives a
broker outage, redelivery changes nothing, and a poison record is set aside, not fatal."""

from __future__ import annotations

import shutil
from collections import defaultdict

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from deploy.kafka.node import KafkaNode
from services.status.tables import captive_facts, decisions
from shared.contracts import EventEnvelope, encode
from shared.contracts.intake import CaptiveRegistered
from shared.contracts.topics import dead_letter
from tests.broker import KAFKA_CREDENTIALS, register_broker
from tests.support import (
    HEADERS,
    build_app,
    kafka_access,
    producer,
    read_topic,
    registration,
    settings_for,
    signed_in,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path):
    """A broker this test may stop and start (the shared one stays up for the others)."""
    if shutil.which("java") is None:
        pytest.fail("this test stops and restarts a broker of its own, which needs Java 17 (make deps installs it)")
    with KafkaNode(tmp_path / "kafka", credentials_dir=KAFKA_CREDENTIALS) as node:
        register_broker(node.bootstrap_servers)
        yield node


def count(client: TestClient, table: sa.Table) -> int:
    with client.app.state.runtime.sessions() as session:
        return session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_writes_accepted_while_the_broker_is_down_all_arrive_once_in_order(own_broker, new_database, topic_prefix):
    bootstrap = own_broker.bootstrap_servers
    intake_settings = settings_for(
        "intake", database_url=new_database("intake"), bootstrap=bootstrap, prefix=topic_prefix
    )
    status_settings = settings_for(
        "status", database_url=new_database("status"), bootstrap=bootstrap, prefix=topic_prefix
    )
    with (
        signed_in(TestClient(build_app("intake", intake_settings))) as intake,
        signed_in(TestClient(build_app("status", status_settings))) as status,
    ):
        for service in (intake, status):
            wait_until(lambda service=service: service.get("/readyz").status_code == 200, what="services ready")
        own_broker.stop()
        wait_until(lambda: intake.get("/readyz").status_code == 503, what="intake to report the broker unreachable")

        captives = []
        for n in range(50):
            created = intake.post("/v1/captives", json=registration(f"포로{n}", f"Poro {n}"), headers=HEADERS)
            assert created.status_code == 201, created.text
            captives.append(created.json()["captive_id"])
        # A second event per captive, so that order within each stream is tested too.
        for captive_id in captives:
            amended = intake.post(
                f"/v1/captives/{captive_id}/identity-amendments",
                headers={**HEADERS, "If-Match": '"1"'},
                json={"field": "rank", "current": {"answer": "GIVEN", "value": "상등병"}, "reason": "unit papers"},
            )
            assert amended.status_code == 201, amended.text
        assert intake.app.state.runtime.relay.backlog() == 100

        own_broker.start()
        wait_until(lambda: count(status, decisions) == 50, timeout_s=120, what="50 statuses downstream")
        wait_until(lambda: intake.app.state.runtime.relay.backlog() == 0, what="outbox drained")

    records = read_topic(bootstrap, f"{topic_prefix}intake.events.v1")
    events = [EventEnvelope.model_validate(orjson.loads(record.value)) for record in records]
    assert len(events) == 100
    assert len({event.id for event in events}) == 100, "an event was published twice"
    versions = defaultdict(list)
    for record, event in zip(records, events, strict=True):
        assert record.key.decode() == event.subject
        versions[event.subject].append(event.stream_version)
    assert sorted(versions) == sorted(captives)
    assert all(seen == [1, 2] for seen in versions.values()), "a stream's events arrived out of order"


@pytest.fixture
def intake_then_status(kafka_bootstrap, new_database, topic_prefix):
    """Intake with its relay, and a status service whose consumer the test drives by hand."""
    intake_settings = settings_for(
        "intake", database_url=new_database("intake"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    status_settings = settings_for(
        "status", database_url=new_database("status"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    with (
        signed_in(TestClient(build_app("intake", intake_settings))) as intake,
        signed_in(TestClient(build_app("status", status_settings, background=False))) as status,
    ):
        yield intake, status
        status.app.state.runtime.consumer.close()


def consume_until(client: TestClient, done, what: str) -> None:
    consumer = client.app.state.runtime.consumer
    wait_until(lambda: (consumer.poll_once(timeout_ms=200), done())[1], timeout_s=120, what=what)


def snapshot(client: TestClient) -> dict:
    runtime = client.app.state.runtime
    tables = runtime.definition.store_tables
    with runtime.sessions() as session:
        return {
            table.name: sorted(tuple(row) for row in session.execute(sa.select(table)).all())
            for table in (decisions, captive_facts, tables.events, tables.outbox, tables.inbox)
        }


def test_redelivered_events_change_nothing(intake_then_status):
    intake, status = intake_then_status
    for n in range(10):
        assert (
            intake.post("/v1/captives", json=registration(f"포로{n}", f"Poro {n}"), headers=HEADERS).status_code == 201
        )
    consume_until(status, lambda: count(status, decisions) == 10, "10 statuses")
    before = snapshot(status)
    consumer = status.app.state.runtime.consumer
    applied_before = consumer.applied_total

    consumer.kafka.seek_to_beginning()
    consume_until(status, lambda: consumer.duplicates_total >= 10, "the 10 events read a second time")

    assert consumer.duplicates_total == 10
    assert consumer.applied_total == applied_before
    assert snapshot(status) == before


def test_a_poison_record_goes_to_the_dead_letter_topic_and_holds_back_only_its_captive(
    intake_then_status, kafka_bootstrap, topic_prefix
):
    """A record that is not JSON is dead-lettered and parks the later records of its key's
    captive; a record of an event type nobody knows waits (no dead letter); another captive's
    record behind both on the same partition is applied."""
    _intake, status = intake_then_status
    topic = f"{topic_prefix}intake.events.v1"
    good = CaptiveRegistered(captive_id="CAP-0000-0000-00GD", **registration())
    envelope = EventEnvelope(
        id="c0ffee00-0000-4000-8000-000000000001",
        source="/services/intake",
        type="CaptiveRegistered",
        subject=good.captive_id,
        occurred_at="2025-01-12T00:00:00Z",
        recorded_at="2025-01-12T00:00:00Z",
        stream_version=1,
        schema_version=1,
        correlation_id="c-1",
        actor="officer",
        agency="UA-HQ",
        data=good.model_dump(mode="json"),
    )
    # Signed with intake's key, as intake's own (faulty) build would publish them: what is tested
    # here is what the consumer does with a record that is no event, not with a forgery.
    sign = _intake.app.state.runtime.signer.header
    forger = producer(kafka_bootstrap)
    poisoned, teleported = b"CAP-0000-0000-00PS", "CAP-0000-0000-00TP"
    garbage = b'{"specversion": "1.0", "type": "CaptiveRegi'
    poison = forger.send(topic, key=poisoned, value=garbage, headers=[("origin", b"fuzz"), sign(garbage)]).get(10)
    teleport = {"type": "CaptiveTeleported", "subject": teleported, "id": "c0ffee-tp"}
    unknown = encode(envelope.model_copy(update=teleport))
    forger.send(topic, key=teleported.encode(), value=unknown, partition=poison.partition, headers=[sign(unknown)])
    # The poisoned key's next record parks behind it; the good one (same partition) is applied.
    behind = encode(envelope.model_copy(update={"subject": poisoned.decode(), "id": "c0ffee-behind"}))
    forger.send(topic, key=poisoned, value=behind, partition=poison.partition, headers=[sign(behind)]).get(10)
    good_bytes = encode(envelope)
    forger.send(
        topic, key=good.captive_id.encode(), value=good_bytes, partition=poison.partition, headers=[sign(good_bytes)]
    ).get(10)
    forger.close()

    consume_until(status, lambda: count(status, decisions) == 1, "the good record applied")

    (dead,) = read_topic(kafka_bootstrap, dead_letter(topic))
    headers = dict(dead.headers)
    assert int(headers["dlq.original.offset"]) == poison.offset
    assert headers["dlq.original.topic"].decode() == topic
    assert int(headers["dlq.original.partition"]) == poison.partition
    assert b"not JSON" in headers["dlq.error"]
    assert headers["origin"] == b"fuzz", "the original headers travel with the dead letter"
    assert dead.value == b'{"specversion": "1.0", "type": "CaptiveRegi'
    parked = status.app.state.runtime.definition.store_tables.parked
    with status.app.state.runtime.sessions() as session:
        held = [(row.captive, row.state) for row in session.execute(sa.select(parked).order_by(parked.c.position))]
    assert held == [(poisoned.decode(), "dead_letter"), (teleported, "waiting"), (poisoned.decode(), "parked")]
    assert status.get(f"/v1/captives/{good.captive_id}").json()["status"] == "PRESUMED_POW"


def test_a_record_its_handler_refuses_in_the_middle_of_a_poll_is_set_aside_alone(
    intake_then_status, kafka_bootstrap, topic_prefix
):
    """A poll's records are applied in one transaction; when a handler refuses one of them, the
    transaction is undone and the records are applied one by one: the others land, the refused
    one goes to the dead-letter topic."""
    from shared.broker import clients as kafka_clients
    from shared.eventstore.consumer import EventConsumer

    _intake, status = intake_then_status
    runtime = status.app.state.runtime
    topic = f"{topic_prefix}refusals"
    admin = kafka_access(kafka_bootstrap, "admin")  # the test's own consumer, topic and group
    kafka_clients.ensure_topics(admin, [topic], 1, client_id="test")
    ids = [f"c0ffee00-0000-4000-8000-00000000010{n}" for n in range(3)]
    refused = ids[1]

    def handler(_session, event) -> None:
        if event.envelope.id == refused:
            raise ValueError("this registration cannot be applied")

    forger = producer(kafka_bootstrap)
    for n, event_id in enumerate(ids):
        good = CaptiveRegistered(captive_id=f"CAP-0000-0000-00R{n}", **registration())
        envelope = EventEnvelope(
            id=event_id,
            source="/services/intake",
            type="CaptiveRegistered",
            subject=good.captive_id,
            occurred_at="2025-01-12T00:00:00Z",
            recorded_at="2025-01-12T00:00:00Z",
            stream_version=1,
            schema_version=1,
            correlation_id="c-1",
            actor="officer",
            agency="UA-HQ",
            data=good.model_dump(mode="json"),
        )
        forger.send(topic, key=b"same-partition", value=encode(envelope)).get(10)
    forger.close()

    consumer = EventConsumer(
        sessions=runtime.sessions,
        inbox=runtime.definition.store_tables.inbox,
        handlers={"CaptiveRegistered": handler},
        consumer_factory=lambda: kafka_clients.consumer(admin, f"{topic_prefix}refusals", "t", [topic]),
        producer_factory=lambda: kafka_clients.producer(admin, "t-dlq"),
        group_id=f"{topic_prefix}refusals",
    )
    try:
        wait_until(
            lambda: (consumer.poll_once(timeout_ms=500), consumer.applied_total + consumer.dead_lettered_total)[1] >= 3,
            what="the three records handled",
        )
    finally:
        consumer.close()
    inbox = runtime.definition.store_tables.inbox
    with runtime.sessions() as session:
        applied = set(session.execute(sa.select(inbox.c.event_id).where(inbox.c.topic == topic)).scalars())
    assert applied == {ids[0], ids[2]}
    assert (consumer.applied_total, consumer.dead_lettered_total) == (2, 1)
    (dead,) = read_topic(kafka_bootstrap, dead_letter(topic))
    assert b"cannot be applied" in dict(dead.headers)["dlq.error"]


def test_a_refused_record_keeps_its_place_in_its_chain_and_a_forged_one_does_not(
    intake_then_status, kafka_bootstrap, topic_prefix
):
    """Chains checked (status's chain_links): the stream's second event is refused by its handler
    and set aside, yet the third, which names it as its prevhash, still applies; a forged fourth
    that names the third's predecessor is set aside as a chain break, and an exact copy of the
    first is a no-op."""
    from shared.broker import clients as kafka_clients
    from shared.eventstore.consumer import EventConsumer
    from shared.evidence.chain import GENESIS, event_hash

    _intake, status = intake_then_status
    runtime = status.app.state.runtime
    topic = f"{topic_prefix}chained"
    admin = kafka_access(kafka_bootstrap, "admin")
    kafka_clients.ensure_topics(admin, [topic], 1, client_id="test")
    subject = "CAP-0000-0000-00CH"
    raws, previous = [], GENESIS
    for version in range(1, 4):
        envelope = EventEnvelope(
            id=f"c0ffee00-0000-4000-8000-00000000020{version}",
            source="/services/intake",
            type="CaptiveRegistered",
            subject=subject,
            occurred_at="2025-01-12T00:00:00Z",
            recorded_at="2025-01-12T00:00:00Z",
            stream_version=version,
            schema_version=1,
            correlation_id="c-1",
            actor="officer",
            agency="UA-HQ",
            previous_hash=previous,
            data=CaptiveRegistered(captive_id=subject, **registration()).model_dump(mode="json"),
        )
        raws.append(encode(envelope))
        previous = event_hash(raws[-1])
    forged = raws[2].replace(b'"streamversion":3', b'"streamversion":4').replace(b"00000000203", b"00000000204")
    assert forged != raws[2]
    applied: list[int] = []

    def handler(_session, event) -> None:
        if event.envelope.stream_version == 2:
            raise ValueError("this one cannot be applied")
        applied.append(event.envelope.stream_version)

    forger = producer(kafka_bootstrap)
    for raw in (*raws, forged, raws[0]):
        forger.send(topic, key=subject.encode(), value=raw).get(10)
    forger.close()
    consumer = EventConsumer(
        sessions=runtime.sessions,
        inbox=runtime.definition.store_tables.inbox,
        handlers={"CaptiveRegistered": handler},
        consumer_factory=lambda: kafka_clients.consumer(admin, f"{topic_prefix}chained", "t", [topic]),
        producer_factory=lambda: kafka_clients.producer(admin, "t-dlq"),
        group_id=f"{topic_prefix}chained",
        chain_links=runtime.definition.store_tables.chain_links,
    )
    try:
        wait_until(
            lambda: (consumer.poll_once(timeout_ms=500), consumer.applied_total + consumer.dead_lettered_total)[1] >= 4,
            what="the five records handled",
        )
        consumer.poll_once(timeout_ms=500)
    finally:
        consumer.close()
    inbox = runtime.definition.store_tables.inbox
    with runtime.sessions() as session:
        kept = set(session.execute(sa.select(inbox.c.event_id).where(inbox.c.topic == topic)).scalars())
    assert kept == {f"c0ffee00-0000-4000-8000-00000000020{version}" for version in (1, 3)}
    assert applied[-1] == 3  # (the first poll's batch ran the first one too, then was undone)
    assert (consumer.applied_total, consumer.dead_lettered_total, consumer.chain_breaks_total) == (2, 2, 1)
    assert consumer.duplicates_total == 1
    dead = {
        record.value: dict(record.headers)["dlq.error"] for record in read_topic(kafka_bootstrap, dead_letter(topic))
    }
    assert b"cannot be applied" in dead[raws[1]]
    assert b"hash chain broken" in dead[forged] and b"does not match" in dead[forged]
