"""The outbox never blocks on one row, through the real broker and the real database: a row the
broker refuses for good is parked and holds back only the later events of its own stream; other
captives keep flowing; `captives outbox retry` delivers it once the cause is fixed; an over-size
request is refused with 413 and changes nothing; a zombie relay, fenced by its successor's
transactional producer, publishes nothing."""

from __future__ import annotations

import contextlib
import threading
import uuid
from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from kafka.admin import ACLFilter, ACLPermissionType, ResourcePatternFilter, ResourceType
from typer.testing import CliRunner

from shared.broker import clients as kafka_clients
from shared.broker.acls import LITERAL, WRITE, _acl
from shared.broker.clients import MAX_MESSAGE_BYTES
from shared.eventstore.leader import LeaderLock
from shared.eventstore.relay import Fenced, OutboxRelay
from shared.platform.db import create_engine, session_factory
from tests.support import (
    HEADERS,
    build_app,
    kafka_access,
    read_topic,
    registration,
    settings_for,
    signed_in,
    wait_until,
)
from tools.cli import app as cli

pytestmark = pytest.mark.integration

INTAKE_TOPIC = "intake.events.v1"


def insert_event(runtime, stream_id: str, version: int, *, padding: int = 0, topic: str | None = None) -> str:
    """An event and its outbox row written straight into the store, as no request could: the relay
    publishes whatever text the row holds."""
    event_id = str(uuid.uuid4())
    at = datetime(2025, 1, 12, tzinfo=UTC)
    envelope = orjson.dumps({"id": event_id, "subject": stream_id, "streamversion": version, "pad": "x" * padding})
    tables = runtime.definition.store_tables
    with runtime.sessions.begin() as session:
        session.execute(
            sa.insert(tables.events).values(
                event_id=event_id,
                stream_id=stream_id,
                stream_version=version,
                event_type="TestOnly",
                schema_version=1,
                occurred_at=at,
                recorded_at=at,
                envelope=envelope.decode(),
            )
        )
        session.execute(sa.insert(tables.outbox).values(event_id=event_id, topic=topic or runtime.topic))
    runtime.relay.wake()
    return event_id


def published_ids(bootstrap: str, topic: str) -> list[str]:
    return [orjson.loads(record.value)["id"] for record in read_topic(bootstrap, topic)]


def outbox_ids(runtime) -> dict[str, int]:
    outbox = runtime.definition.store_tables.outbox
    with runtime.sessions() as session:
        return dict(session.execute(sa.select(outbox.c.event_id, outbox.c.id)).all())


def cli_env(client: TestClient) -> dict[str, str]:
    """The operator's CLI against the test's intake database (wide enough for its table)."""
    return {"INTAKE_DATABASE_URL": client.database_url, "COLUMNS": "400"}


def parked_gauge(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("captives_outbox_parked "):
            return float(line.split()[1])
    raise AssertionError("captives_outbox_parked is not in /metrics")


@pytest.fixture
def intake(kafka_bootstrap, new_database, topic_prefix):
    url = new_database("intake")
    settings = settings_for("intake", database_url=url, bootstrap=kafka_bootstrap, prefix=topic_prefix)
    with signed_in(TestClient(build_app("intake", settings))) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, what="intake ready")
        client.database_url = url
        yield client


def register(client: TestClient, n: int) -> str:
    created = client.post("/v1/captives", json=registration(f"포로{n}", f"Poro {n}"), headers=HEADERS)
    assert created.status_code == 201, created.text
    return created.json()["captive_id"]


def amend(client: TestClient, captive_id: str, version: int, reason: str = "unit papers"):
    return client.post(
        f"/v1/captives/{captive_id}/identity-amendments",
        headers={**HEADERS, "If-Match": f'"{version}"'},
        json={"field": "rank", "current": {"answer": "GIVEN", "value": "상등병"}, "reason": reason},
    )


def test_a_row_the_broker_refuses_blocks_only_its_own_stream(intake, kafka_bootstrap, topic_prefix):
    runtime = intake.app.state.runtime
    topic = f"{topic_prefix}{INTAKE_TOPIC}"
    blocked, flowing = register(intake, 1), register(intake, 2)
    wait_until(lambda: runtime.relay.backlog() == 0, what="the registrations published")
    registrations = published_ids(kafka_bootstrap, topic)

    # Too large for the broker, then a small event after it in the same stream.
    too_large = insert_event(runtime, blocked, 2, padding=MAX_MESSAGE_BYTES + 1000)
    behind = insert_event(runtime, blocked, 3)
    wait_until(lambda: runtime.relay.parked() == 1, what="the over-size row parked")
    assert amend(intake, flowing, 1).status_code == 201
    wait_until(lambda: set(outbox_ids(runtime)) == {too_large, behind}, what="the other captive's event published")

    on_topic = published_ids(kafka_bootstrap, topic)
    assert too_large not in on_topic and behind not in on_topic, "the stream's order was not kept"
    assert len(on_topic) == len(set(on_topic)) == len(registrations) + 1, "an event was published twice"
    assert parked_gauge(intake) == 1
    listed = CliRunner().invoke(cli, ["outbox", "list", "intake"], env=cli_env(intake))
    assert listed.exit_code == 0, listed.output
    assert "MessageSizeTooLargeError" in listed.output and blocked in listed.output


def test_outbox_retry_delivers_a_parked_row_once_its_cause_is_fixed(intake, kafka_bootstrap, topic_prefix):
    """The cause here: a topic the service's principal may not write (until the ACL is granted)."""
    runtime = intake.app.state.runtime
    forbidden = f"{topic_prefix}elsewhere.events.v1"
    admin = kafka_access(kafka_bootstrap, "admin")
    kafka_clients.ensure_topics(admin, [forbidden], 1, client_id="test")
    captive, other = register(intake, 1), register(intake, 2)
    refused = insert_event(runtime, captive, 2, topic=forbidden)
    behind = insert_event(runtime, captive, 3, topic=forbidden)
    wait_until(lambda: runtime.relay.parked() == 1, what="the refused row parked")
    assert amend(intake, other, 1).status_code == 201
    wait_until(lambda: set(outbox_ids(runtime)) == {refused, behind}, what="the other captive's event published")
    env = cli_env(intake)
    listed = CliRunner().invoke(cli, ["outbox", "list", "intake"], env=env)
    assert "TopicAuthorizationFailedError" in listed.output, listed.output

    client = kafka_clients.admin(admin, "test")
    try:
        grant = _acl("intake", WRITE, ResourceType.TOPIC, forbidden, LITERAL)
        assert not client.create_acls([grant])["failed"]
        applied = ACLFilter(
            principal=grant.principal,
            host="*",
            operation=WRITE,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, forbidden, LITERAL),
        )
        wait_until(lambda: client.describe_acls(applied)[0], what="the ACL applied")
    finally:
        client.close()
    parked_id = outbox_ids(runtime)[refused]
    retried = CliRunner().invoke(cli, ["outbox", "retry", "intake", str(parked_id)], env=env)
    assert retried.exit_code == 0, retried.output

    wait_until(lambda: runtime.relay.backlog() == 0, what="the retried row and the one behind it published")
    assert published_ids(kafka_bootstrap, forbidden) == [refused, behind]
    assert parked_gauge(intake) == 0


def test_an_over_size_request_is_refused_with_413_and_changes_nothing(intake, kafka_bootstrap, topic_prefix):
    runtime = intake.app.state.runtime
    captive = register(intake, 1)
    wait_until(lambda: runtime.relay.backlog() == 0, what="the registration published")
    tables = runtime.definition.store_tables

    def state():
        with runtime.sessions() as session:
            return (
                runtime.store.stream_version(session, captive),
                session.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one(),
                session.execute(sa.select(sa.func.count()).select_from(tables.outbox)).scalar_one(),
            )

    before, on_topic = state(), published_ids(kafka_bootstrap, f"{topic_prefix}{INTAKE_TOPIC}")
    # No field of a request may be long enough to pass the broker's limit (1 MiB): the store is
    # given a lower one here, so that an ordinary request passes it.
    limit = 4096
    runtime.store.max_record_bytes = limit
    refused = amend(intake, captive, 1, reason="r" * 3900)
    assert refused.status_code == 413, refused.text
    body = refused.json()
    assert body["limit"] == limit and body["size"] > limit
    assert f"{limit:,} bytes" in body["detail"] and f"{body['size']:,} bytes" in body["detail"]
    assert state() == before
    assert published_ids(kafka_bootstrap, f"{topic_prefix}{INTAKE_TOPIC}") == on_topic


def test_a_zombie_relay_publishes_nothing_once_its_successor_has_started(kafka_bootstrap, new_database, topic_prefix):
    """The old leader's lock died with its connection, mid-batch, and it has not noticed: the new
    leader's transactional producer fences it, so what it sends is refused and never read."""
    url = new_database("intake")
    settings = settings_for("intake", database_url=url, bootstrap=kafka_bootstrap, prefix=topic_prefix)
    with TestClient(build_app("intake", settings, background=False, verify_tokens=False)) as client:
        runtime = client.app.state.runtime
        zombie = runtime.relay
        engine = create_engine(url)
        successor = OutboxRelay(
            session_factory(engine),
            runtime.definition.store_tables,
            zombie.producer_factory,
            prepare=runtime.ensure_topics,
            leader=LeaderLock(engine, "intake-relay"),
        )
        topic = runtime.topic
        try:
            assert zombie.leader.try_hold()
            first = insert_event(runtime, "CAP-0000-0000-00Z1", 1)
            assert zombie.publish_batch() == 1
            # Its lock's connection dies; it does not look again before its next batch.
            with engine.connect() as connection:
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
            wait_until(successor.leader.try_hold, what="the lock released with its connection")
            successor._ready_producer()  # the new leader initialises its transactional producer

            late = insert_event(runtime, "CAP-0000-0000-00Z2", 1)
            with pytest.raises(Fenced):
                zombie.publish_batch()
            assert published_ids(kafka_bootstrap, topic) == [first], "the zombie's record was read"
            assert set(outbox_ids(runtime)) == {late}, "the zombie removed a row it did not publish"

            assert successor.publish_batch() == 1
            assert published_ids(kafka_bootstrap, topic) == [first, late]
        finally:
            successor._close_producer()
            successor.leader.release()
            zombie._close_producer()
            zombie.leader.release()
            engine.dispose()


def set_topic_limit(bootstrap: str, topic: str, max_bytes: int) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    client = kafka_clients.admin(kafka_access(bootstrap, "admin"), "test")
    try:
        client.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(max_bytes)})]
        )
    finally:
        client.close()


def chained_with_a_stand_in(bootstrap: str, topic: str, captive_id: str) -> list:
    """Every chain of the topic verifies, and the captive's stream is his registration, the
    stand-in of his discarded event, and the event appended after it. (His envelopes.)"""
    from shared.contracts import decode
    from shared.evidence import chain

    records = read_topic(bootstrap, topic)
    verified = chain.verify(records)
    assert verified.ok, verified.problems
    stream = [decode(r.value).envelope for r in records if decode(r.value).envelope.subject == captive_id]
    assert [(e.stream_version, e.type) for e in stream] == [
        (1, "CaptiveRegistered"),
        (2, "PublicationWithheld"),
        (3, "IdentityAmended"),
    ]
    return stream


def test_a_discarded_event_is_replaced_by_a_stand_in_and_its_stream_stays_chained(
    intake, kafka_bootstrap, topic_prefix
):
    """The broker refuses an event of one captive (its topic now takes less than that event);
    the operator discards it: a PublicationWithheld of the same id and version takes its place,
    the captive's later event is chained from it, and the whole topic's chains verify."""

    runtime = intake.app.state.runtime
    topic = f"{topic_prefix}{INTAKE_TOPIC}"
    refused_captive, other = register(intake, 1), register(intake, 2)
    assert amend(intake, other, 1).status_code == 201
    wait_until(lambda: runtime.relay.backlog() == 0, what="the first events published")
    events = runtime.definition.store_tables.events
    with runtime.sessions() as session:
        small = max(len(envelope) for envelope in session.execute(sa.select(events.c.envelope)).scalars())
    limit = small + 400  # room for the record's key, headers and framing
    set_topic_limit(kafka_bootstrap, topic, limit)

    big = amend(intake, refused_captive, 1, reason="a long account of the unit papers " * 110)
    assert big.status_code == 201, big.text
    with runtime.sessions() as session:
        size = len(
            session.execute(
                sa.select(events.c.envelope).where(events.c.event_id == big.json()["event_id"])
            ).scalar_one()
        )
    assert size > limit, f"the test's big event ({size} bytes) is within the topic's limit ({limit})"
    wait_until(lambda: runtime.relay.parked() == 1, what="the broker-refused event parked")
    assert amend(intake, refused_captive, 2).status_code == 201  # waits behind it
    assert amend(intake, other, 2).status_code == 201  # flows
    wait_until(lambda: len(outbox_ids(runtime)) == 2, what="the other captive's event published")
    parked_id = outbox_ids(runtime)[big.json()["event_id"]]

    env = cli_env(intake)
    refused = CliRunner().invoke(cli, ["outbox", "discard", "intake", str(parked_id)], env=env)
    assert refused.exit_code != 0, "a discard without a reason was accepted"
    done = CliRunner().invoke(
        cli, ["outbox", "discard", "intake", str(parked_id), "--reason", "larger than the topic takes"], env=env
    )
    assert done.exit_code == 0, done.output
    wait_until(lambda: runtime.relay.backlog() == 0, what="the stand-in and the event behind it published")

    stream = chained_with_a_stand_in(kafka_bootstrap, topic, refused_captive)
    discarded = runtime.definition.store_tables.outbox_discarded
    with runtime.sessions() as session:
        (kept,) = session.execute(sa.select(discarded)).all()
    assert kept.event_id == stream[1].id and kept.event_type == "IdentityAmended"
    assert kept.reason == "larger than the topic takes" and "MessageSizeTooLarge" in kept.error


def park_a_big_event(intake, kafka_bootstrap, topic_prefix) -> tuple[str, str, int]:
    """Registers a captive, lowers intake's topic's limit below his next event, appends it: the
    broker refuses it and it is parked. (His captive id, its event id, its outbox row.)"""
    runtime = intake.app.state.runtime
    captive = register(intake, 1)
    wait_until(lambda: runtime.relay.backlog() == 0, what="the registration published")
    events = runtime.definition.store_tables.events
    with runtime.sessions() as session:
        small = max(len(envelope) for envelope in session.execute(sa.select(events.c.envelope)).scalars())
    set_topic_limit(kafka_bootstrap, f"{topic_prefix}{INTAKE_TOPIC}", small + 400)
    big = amend(intake, captive, 1, reason="a long account of the unit papers " * 110)
    assert big.status_code == 201, big.text
    wait_until(lambda: runtime.relay.parked() == 1, what="the broker-refused event parked")
    return captive, big.json()["event_id"], outbox_ids(runtime)[big.json()["event_id"]]


def test_an_append_during_a_discard_chains_from_the_stand_in_not_the_bytes_it_replaces(
    intake, kafka_bootstrap, topic_prefix
):
    """The operator's discard rewrites the parked event (and the stream's later ones) while the
    API goes on appending to that stream: an append that read the old bytes would chain from an
    event no topic will ever hold, and every consumer would set the captive's later events aside.
    The append waits for the discard, then chains from the stand-in."""
    from shared.eventstore import outbox as outbox_rows

    runtime = intake.app.state.runtime
    captive, _big, parked_id = park_a_big_event(intake, kafka_bootstrap, topic_prefix)
    answers: list = []
    session = runtime.sessions()
    try:
        outbox_rows.discard(
            session,
            runtime.definition.store_tables,
            parked_id,
            reason="larger than the topic takes",
            actor="o.operator",
            agency="ua-coordination-hq",
            at=datetime(2025, 6, 1, tzinfo=UTC),
        )
        appending = threading.Thread(target=lambda: answers.append(amend(intake, captive, 2)))
        appending.start()
        appending.join(3)
        assert appending.is_alive(), "the append did not wait for the discard: it read the bytes being replaced"
        session.commit()
    finally:
        session.close()
    appending.join(60)
    assert answers and answers[0].status_code == 201, answers
    wait_until(lambda: runtime.relay.backlog() == 0, what="the stand-in and the event after it published")
    chained_with_a_stand_in(kafka_bootstrap, f"{topic_prefix}{INTAKE_TOPIC}", captive)


def test_a_record_refused_with_others_in_its_batch_is_tried_alone_and_only_it_is_parked(
    kafka_bootstrap, new_database, topic_prefix
):
    """Two captives' events on one partition go out in one record batch, which the broker refuses
    whole because the second is too large for the topic: the first is not to blame, so each is
    sent alone before any is parked; only the large one is."""
    from kafka.partitioner.default import murmur2

    innocent, culprit = "CAP-0000-0000-00S0", "CAP-0000-0000-00S2"
    assert len({(murmur2(key.encode()) & 0x7FFFFFFF) % 3 for key in (innocent, culprit)}) == 1, "not one partition"
    url = new_database("intake")
    settings = settings_for("intake", database_url=url, bootstrap=kafka_bootstrap, prefix=topic_prefix, partitions=3)
    with TestClient(build_app("intake", settings, background=False, verify_tokens=False)) as client:
        runtime = client.app.state.runtime
        relay = runtime.relay
        try:
            assert relay.leader.try_hold()
            assert relay.publish_batch() == 0  # creates the topics
            set_topic_limit(kafka_bootstrap, runtime.topic, 3000)
            small = insert_event(runtime, innocent, 1, padding=200)
            large = insert_event(runtime, culprit, 1, padding=6000)

            def publish_until_settled():
                with contextlib.suppress(Exception):  # a batch given up: the next round goes on
                    relay.publish_batch()
                return set(outbox_ids(runtime)) == {large} and relay.parked() == 1

            wait_until(publish_until_settled, interval_s=0, what="the large one parked, the other published")
            assert published_ids(kafka_bootstrap, runtime.topic) == [small]
            outbox = runtime.definition.store_tables.outbox
            with runtime.sessions() as session:
                error = session.execute(sa.select(outbox.c.parked_error)).scalar_one()
            assert error.startswith("MessageSizeTooLargeError"), error
        finally:
            relay._close_producer()
            relay.leader.release()


def test_a_relay_stuck_in_a_kafka_call_is_replaced_and_the_stuck_thread_touches_nothing(
    kafka_bootstrap, new_database, topic_prefix
):
    """A call into kafka-python that never returns (a chaos run on three brokers once kept intake's
    relay in one for seven minutes) must not stop publication: the watchdog starts a new relay
    thread, whose producer fences the stuck one, and the stuck thread, once it comes back, leaves
    the new thread's producer and the leader lock alone."""
    url = new_database("intake")
    settings = settings_for("intake", database_url=url, bootstrap=kafka_bootstrap, prefix=topic_prefix)
    with TestClient(build_app("intake", settings, background=False, verify_tokens=False)) as client:
        runtime = client.app.state.runtime
        engine = create_engine(url)
        release, stuck_in_flush = threading.Event(), threading.Event()
        made: list = []

        def producer_factory():
            producer = runtime.relay.producer_factory()
            if not made:  # the first producer's flush hangs, as the library's call once did
                real_flush = producer.flush

                def flush(timeout=None):
                    stuck_in_flush.set()
                    release.wait(120)
                    return real_flush(timeout)

                producer.flush = flush
            made.append(producer)
            return producer

        relay = OutboxRelay(
            session_factory(engine),
            runtime.definition.store_tables,
            producer_factory,
            prepare=runtime.ensure_topics,
            leader=LeaderLock(engine, "intake-relay"),
            stall_after_s=3,
        )
        topic = runtime.topic
        relay.start()
        try:
            first = insert_event(runtime, "CAP-0000-0000-00S1", 1)
            relay.wake()
            assert stuck_in_flush.wait(60), "the first producer never reached its flush"
            stuck = relay.watchdog.thread
            wait_until(lambda: relay.stalls_total == 1, timeout_s=60, what="the watchdog to notice the stall")
            wait_until(lambda: not outbox_ids(runtime), timeout_s=60, what="the new relay thread to publish")
            assert relay.watchdog.thread is not stuck and relay.watchdog.thread.is_alive()
            assert published_ids(kafka_bootstrap, topic) == [first]

            release.set()  # the stuck call returns: its transaction was fenced by the new producer
            stuck.join(60)
            assert not stuck.is_alive(), "the replaced thread did not leave"
            assert relay.leader.held and relay._producer is made[-1], "the stuck thread touched its successor's"
            second = insert_event(runtime, "CAP-0000-0000-00S2", 1)
            relay.wake()
            wait_until(lambda: not outbox_ids(runtime), timeout_s=60, what="the next event published")
            assert published_ids(kafka_bootstrap, topic) == [first, second]
            assert relay.stalls_total == 1
        finally:
            release.set()
            relay.stop()
            engine.dispose()
