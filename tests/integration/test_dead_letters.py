"""Sequenced dead letters through the real broker and the real database (issue 18, item 2): a
captive's records wait behind his dead letter, in order, while other captives' records go on;
`captives dlq redrive` applies them in order, `captives dlq discard` drops the head and releases
the rest; a record of an event version the consumer does not know waits, and is applied, once,
by the build that knows it; the database away is retried, never dead-lettered; and replay skips
what live holds back, so it rebuilds the same read models."""

from __future__ import annotations

import hashlib
import threading
import uuid

import httpx
import orjson
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from deploy.postgres.cluster import PostgresCluster, create_database
from deploy.processes import free_port
from services.status.app import definition as status_definition
from services.status.tables import decisions, force_memberships
from shared.broker import clients as kafka_clients
from shared.broker.access import AUDITOR
from shared.broker.clients import MAX_MESSAGE_BYTES, record_size
from shared.contracts import registry
from shared.contracts.intake import ForceMembershipRecorded
from shared.contracts.topics import dead_letter
from shared.eventstore import replay as replaying
from shared.evidence.chain import event_hash
from tests.support import (
    HEADERS,
    KPA_MEMBERSHIP,
    build_app,
    caught_up,
    producer,
    read_topic,
    registration,
    settings_for,
    signed_in,
    wait_until,
)
from tools.cli import app as cli

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(kafka_bootstrap, new_database, topic_prefix):
    """Intake and status, both running; `restart()` replaces status with a new instance on the
    same database, as a deploy does."""
    intake_settings = settings_for(
        "intake", database_url=new_database("intake"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    status_settings = settings_for(
        "status", database_url=new_database("status"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    with signed_in(TestClient(build_app("intake", intake_settings))) as intake:
        yield Stack(intake, status_settings, kafka_bootstrap, topic_prefix)


class Stack:
    def __init__(self, intake: TestClient, status_settings, bootstrap: str, prefix: str):
        self.intake, self.status_settings, self.bootstrap = intake, status_settings, bootstrap
        self.topic = f"{prefix}intake.events.v1"
        self.group = f"{prefix}status"

    def status(self) -> TestClient:
        return signed_in(TestClient(build_app("status", self.status_settings)))

    def register(self, name: str) -> str:
        created = self.intake.post("/v1/captives", json=registration(name, name), headers=HEADERS)
        assert created.status_code == 201, created.text
        return created.json()["captive_id"]

    def membership(self, captive_id: str, version: int, basis: str) -> None:
        recorded = self.intake.post(
            f"/v1/captives/{captive_id}/force-membership",
            json={**KPA_MEMBERSHIP, "basis": basis},
            headers={**HEADERS, "If-Match": f'"{version}"'},
        )
        assert recorded.status_code == 201, recorded.text

    def caught_up(self) -> bool:
        return caught_up(self.bootstrap, self.group, self.topic) and self.intake.app.state.runtime.relay.backlog() == 0

    def dlq(self, *args: str) -> str:
        done = CliRunner().invoke(
            cli, ["dlq", *args, "--database-url", self.status_settings.database_url], env={"COLUMNS": "200"}
        )
        assert done.exit_code == 0, done.output
        return done.output


def memberships(status: TestClient, captive_id: str) -> list[int]:
    with status.app.state.runtime.sessions() as session:
        return sorted(
            session.execute(
                sa.select(force_memberships.c.stream_version).where(force_memberships.c.captive_id == captive_id)
            ).scalars()
        )


def held(status: TestClient) -> list[tuple]:
    parked = status.app.state.runtime.definition.store_tables.parked
    with status.app.state.runtime.sessions() as session:
        return [
            (row.captive, row.state, row.event_type)
            for row in session.execute(sa.select(parked).order_by(parked.c.position))
        ]


def refusing(status: TestClient, captive_id: str, applied: list, version: int = 2):
    """Status's ForceMembershipRecorded handler refuses `captive_id`'s at stream `version` while
    the returned switch is on (a bug, say), and lists every membership it applies, in order."""
    consumer = status.app.state.runtime.consumer
    real = consumer.handlers["ForceMembershipRecorded"]
    switch = {"on": True}

    def handler(session, event):
        if switch["on"] and (event.envelope.subject, event.envelope.stream_version) == (captive_id, version):
            raise ValueError("membership cannot be applied (a bug in this build)")
        real(session, event)
        applied.append((event.envelope.subject, event.envelope.stream_version))

    consumer.handlers["ForceMembershipRecorded"] = handler
    return switch


def read_again(status: TestClient, records: int) -> None:
    """Stop status's consumer thread, then read its topic again from offset 0 by hand: nothing
    is applied a second time."""
    consumer = status.app.state.runtime.consumer
    consumer.stop()
    consumer._stop.clear()
    try:
        wait_until(
            lambda: (consumer.poll_once(timeout_ms=200), consumer.kafka.assignment())[1], what="partitions assigned"
        )
        applied, duplicates = consumer.applied_total, consumer.duplicates_total
        consumer.kafka.seek_to_beginning()
        wait_until(
            lambda: (consumer.poll_once(timeout_ms=200), consumer.duplicates_total)[1] >= duplicates + records,
            what=f"the {records} records read again",
        )
        assert consumer.applied_total == applied
    finally:
        consumer.close()


def rebuilt_differences(stack: Stack, status: TestClient, tmp_path, held) -> list[str]:
    """Replay status from offset 0 into a new database (skipping `held`) and compare it with live."""
    wait_until(lambda: status.app.state.runtime.relay.backlog() == 0, what="status's outbox drained")
    kafka = stack.status_settings.kafka
    target = f"sqlite:///{tmp_path / f'rebuilt-{uuid.uuid4().hex[:6]}.db'}"
    replaying.rebuild(
        target,
        status_definition.migrations,
        status_definition.metadata,
        status_definition.projector,
        kafka_clients.read_log(kafka.access(AUDITOR), [kafka.topic("status.events.v1"), stack.topic]),
        held=held,
    )
    _digests, found = replaying.differences(
        status.app.state.runtime.engine,
        sa.create_engine(target),
        list(status_definition.all_projection_tables()),
    )
    return found


def test_a_dead_letter_parks_its_captives_later_records_others_flow_and_redrive_applies_them_in_order(stack, tmp_path):
    choe, pak = stack.register("Choe"), stack.register("Pak")
    applied: list = []
    with stack.status() as status:
        wait_until(stack.caught_up, what="both registrations applied")
        switch = refusing(status, choe, applied)
        stack.membership(choe, 1, "booklet")  # v2: refused three times, dead-lettered
        stack.membership(choe, 2, "second booklet")  # v3: parked behind it
        stack.membership(pak, 1, "booklet")  # another captive: applied
        wait_until(stack.caught_up, what="the group's offsets past every record")
        consumer = status.app.state.runtime.consumer
        assert held(status) == [
            (choe, "dead_letter", "ForceMembershipRecorded"),
            (choe, "parked", "ForceMembershipRecorded"),
        ]
        assert applied == [(pak, 2)]
        assert memberships(status, choe) == [] and memberships(status, pak) == [2]
        assert consumer.dead_lettered_total == 1 and consumer.parked_total == 1
        (dead,) = read_topic(stack.bootstrap, dead_letter(stack.topic))
        assert b"a bug in this build" in dict(dead.headers)["dlq.error"]
        metrics = status.get("/metrics").text
        assert 'captives_parked_records{state="dead_letter"} 1.0' in metrics
        assert 'captives_parked_records{state="parked"} 1.0' in metrics
        listed = stack.dlq("list", "status", "--records")
        print(listed)  # (what the README shows)
        assert choe in listed and "dead_letter" in listed and "parked" in listed
        switch["on"] = False  # (this instance is stopped; the fix is in the next build)

    with stack.status() as status:  # restarted: the parked records are still held, nothing applied
        refusing(status, choe, applied)["on"] = False
        assert held(status) == [
            (choe, "dead_letter", "ForceMembershipRecorded"),
            (choe, "parked", "ForceMembershipRecorded"),
        ]
        assert memberships(status, choe) == []
        output = stack.dlq("redrive", "status", choe, "--reason", "fixed in build 2", "--by", "o.operator")
        assert "nothing held any more" in output, output
        print(output)
        print(stack.dlq("list", "status", "--decisions"))
        assert applied == [(pak, 2), (choe, 2), (choe, 3)]
        assert memberships(status, choe) == [2, 3]
        assert held(status) == []
        table = status.app.state.runtime.definition.store_tables.dead_letter_decisions
        with status.app.state.runtime.sessions() as session:
            (decision,) = session.execute(sa.select(table)).all()
        assert (decision.action, decision.decided_by, decision.reason) == ("redrive", "o.operator", "fixed in build 2")
        assert decision.captive == choe and decision.outcome == "applied, then the 1 records parked behind it"
        # Replay applies the redriven records too, and rebuilds the same read models.
        live = replaying.held_by(stack.status_settings.database_url, status_definition.store_tables)
        assert len(live) == 0
        assert rebuilt_differences(stack, status, tmp_path, live) == []


def test_discard_records_who_and_why_releases_the_rest_and_replay_skips_the_discarded(stack, tmp_path):
    choe, pak = stack.register("Choe"), stack.register("Pak")
    applied: list = []
    with stack.status() as status:
        wait_until(stack.caught_up, what="both registrations applied")
        refusing(status, choe, applied)
        stack.membership(choe, 1, "a forged booklet")  # v2: refused, dead-lettered
        stack.membership(choe, 2, "the real booklet")  # v3: parked
        stack.membership(pak, 1, "booklet")
        wait_until(stack.caught_up, what="the group's offsets past every record")
        assert [state for _c, state, _t in held(status)] == ["dead_letter", "parked"]
        live = replaying.held_by(stack.status_settings.database_url, status_definition.store_tables)
        assert len(live) == 2
        assert rebuilt_differences(stack, status, tmp_path, live) == []
        # Without what live holds back, replay would apply the held memberships: the check can fail.
        assert rebuilt_differences(stack, status, tmp_path, replaying.Held()) != []

        output = stack.dlq("discard", "status", choe, "--reason", "the booklet was forged", "--by", "o.operator")
        assert "nothing held any more" in output, output
        assert applied == [(pak, 2), (choe, 3)]
        assert memberships(status, choe) == [3]
        table = status_definition.store_tables.dead_letter_decisions
        with status.app.state.runtime.sessions() as session:
            (decision,) = session.execute(sa.select(table)).all()
        assert (decision.action, decision.decided_by, decision.reason) == (
            "discard",
            "o.operator",
            "the booklet was forged",
        )
        assert decision.event_type == "ForceMembershipRecorded" and decision.captive == choe

        # Read again from offset 0: the discarded record stays discarded, nothing is applied twice.
        refusing(status, choe, applied)["on"] = False  # even a build that could apply it now does not
        read_again(status, 5)
        assert applied == [(pak, 2), (choe, 3)]
        assert memberships(status, choe) == [3] and held(status) == []

        live = replaying.held_by(stack.status_settings.database_url, status_definition.store_tables)
        assert rebuilt_differences(stack, status, tmp_path, live) == []
        assert rebuilt_differences(stack, status, tmp_path, replaying.Held()) != []


def test_an_unknown_event_version_waits_and_is_applied_once_the_service_that_knows_it_is_deployed(stack):
    kim, ryu = stack.register("Kim"), stack.register("Ryu")
    with stack.status() as status:
        wait_until(stack.caught_up, what="both registrations applied")
        (registered,) = [r for r in read_topic(stack.bootstrap, stack.topic) if r.key.decode() == kim]
        document = orjson.loads(registered.value)
        newer = {
            **document,
            "id": str(uuid.uuid4()),
            "type": "ForceMembershipRecorded",
            "schemaversion": 2,  # a field version 1 does not have: only the next build knows it
            "streamversion": 2,
            "prevhash": event_hash(registered.value),
            "data": {"captive_id": kim, "force": "Korean People's Army", "force_state": "KP", "unit": "11th Corps"},
        }
        newer_bytes = orjson.dumps(newer, option=orjson.OPT_SORT_KEYS)
        after = {
            **newer,
            "id": str(uuid.uuid4()),
            "schemaversion": 1,
            "streamversion": 3,
            "prevhash": event_hash(newer_bytes),
            "data": {"captive_id": kim, "force": "Korean People's Army", "force_state": "KP"},
        }
        after_bytes = orjson.dumps(after, option=orjson.OPT_SORT_KEYS)
        sign = stack.intake.app.state.runtime.signer.header
        forger = producer(stack.bootstrap)  # as intake's next build would publish them: signed
        forger.send(stack.topic, key=kim.encode(), value=newer_bytes, headers=[sign(newer_bytes)]).get(10)
        forger.send(stack.topic, key=kim.encode(), value=after_bytes, headers=[sign(after_bytes)]).get(10)
        forger.close()
        stack.membership(ryu, 1, "booklet")
        wait_until(stack.caught_up, what="the group's offsets past every record")
        consumer = status.app.state.runtime.consumer
        assert held(status) == [(kim, "waiting", "ForceMembershipRecorded"), (kim, "parked", "ForceMembershipRecorded")]
        assert memberships(status, kim) == [] and memberships(status, ryu) == [2]
        assert consumer.dead_lettered_total == 0 and consumer.waiting_total >= 1
        assert read_topic(stack.bootstrap, dead_letter(stack.topic)) == [], (
            "a record of a newer version was dead-lettered"
        )
        assert 'captives_parked_records{state="waiting"} 1.0' in status.get("/metrics").text
        assert 'captives_events_consumed_total{outcome="waiting"}' in status.get("/metrics").text

    @registry.event_type("ForceMembershipRecorded", 2)
    class ForceMembershipRecordedV2(ForceMembershipRecorded):
        unit: str

    try:
        with stack.status() as status:  # the build that knows version 2
            wait_until(lambda: held(status) == [], what="the waiting record and the one after it applied")
            assert memberships(status, kim) == [2, 3]
            inbox = status_definition.store_tables.inbox
            with status.app.state.runtime.sessions() as session:
                ids = list(
                    session.execute(sa.select(inbox.c.event_id).where(inbox.c.event_id == newer["id"])).scalars()
                )
                decided = session.execute(
                    sa.select(sa.func.count()).select_from(decisions).where(decisions.c.captive_id == kim)
                ).scalar_one()
            assert ids == [newer["id"]], "applied exactly once"
            read_again(status, 5)  # from offset 0: applied once still
            assert memberships(status, kim) == [2, 3]
            with status.app.state.runtime.sessions() as session:
                again = session.execute(
                    sa.select(sa.func.count()).select_from(decisions).where(decisions.c.captive_id == kim)
                ).scalar_one()
            assert again == decided
    finally:
        registry._MODELS.pop(("ForceMembershipRecorded", 2), None)


def test_the_database_away_is_retried_never_dead_lettered(kafka_bootstrap, new_database, topic_prefix, tmp_path):
    intake_settings = settings_for(
        "intake", database_url=new_database("intake"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    with PostgresCluster() as own:  # a database of its own, which the test stops and starts
        status_settings = settings_for(
            "status", database_url=create_database(own.url(), "status"), bootstrap=kafka_bootstrap, prefix=topic_prefix
        )
        topic = f"{topic_prefix}intake.events.v1"
        with (
            signed_in(TestClient(build_app("intake", intake_settings))) as intake,
            signed_in(TestClient(build_app("status", status_settings))) as status,
        ):
            consumer = status.app.state.runtime.consumer
            wait_until(lambda: consumer.kafka is not None and consumer.kafka.assignment(), what="status consuming")
            own.stop()
            captives = []
            for n in range(5):
                created = intake.post("/v1/captives", json=registration(f"포로{n}", f"Poro {n}"), headers=HEADERS)
                assert created.status_code == 201, created.text
                captives.append(created.json()["captive_id"])
            wait_until(lambda: len(read_topic(kafka_bootstrap, topic)) == 5, what="the registrations published")
            retries = consumer.retries_total
            wait_until(lambda: consumer.retries_total >= retries + 3, what="status to retry with its database away")
            own.start()
            wait_until(
                lambda: caught_up(kafka_bootstrap, f"{topic_prefix}status", topic),
                timeout_s=120,
                what="status to apply them once its database is back",
            )
            with status.app.state.runtime.sessions() as session:
                decided = set(session.execute(sa.select(decisions.c.captive_id)).scalars())
            assert decided == set(captives)
            assert consumer.dead_lettered_total == 0 and consumer.parked_total == 0 and consumer.waiting_total == 0
            assert held(status) == []
            assert read_topic(kafka_bootstrap, dead_letter(topic)) == []


def test_a_record_just_under_the_limit_that_is_no_event_is_dead_lettered_by_reference_and_the_partitions_flow_on(
    stack,
):
    """Issue 25: such a record's copy, with the dead-letter headers, exceeded the producer's limit;
    the consumer retried for ever and every captive after it on that partition waited."""
    key = b"not-a-captive"
    length = MAX_MESSAGE_BYTES - 100 - record_size(key, b"", [])
    while record_size(key, b"\xff" * length, []) > MAX_MESSAGE_BYTES - 100:
        length -= 1
    poison = b"\xff" * length
    with stack.status() as status:
        forger = producer(stack.bootstrap)
        forger.send(stack.topic, key=key, value=poison).get(30)
        forger.close()
        # Captives registered after it, on every partition (three), are all decided.
        after = [stack.register(f"After{n}") for n in range(9)]
        wait_until(stack.caught_up, timeout_s=120, what="the group's offsets past the large record and the rest")
        decided = status.app.state.runtime.sessions
        with decided() as session:
            known = set(session.execute(sa.select(decisions.c.captive_id)).scalars())
        assert set(after) <= known
        (dead,) = read_topic(stack.bootstrap, dead_letter(stack.topic))
        headers = dict(dead.headers)
        assert dead.value == b"" and headers["dlq.value"].startswith(b"omitted: too large")
        assert headers["dlq.original.sha256"] == hashlib.sha256(poison).hexdigest().encode()
        assert headers["dlq.original.bytes"] == str(len(poison)).encode()
        assert status.app.state.runtime.consumer.dead_lettered_total == 1


def test_a_consumer_that_cannot_make_progress_says_where_it_is_stuck_within_its_bound(stack):
    """Issue 25: a stalled partition showed nothing (/readyz 200, lag 0). Now a consumer that has
    completed no poll for `consumer_stall_after_s` is not ready, naming the topic, partition and
    offset it is held at and why, and /metrics says for how long."""
    stack.status_settings.consumer_stall_after_s = 3
    with stack.status() as status:
        wait_until(lambda: status.get("/readyz").status_code == 200, what="status ready")
        consumer = status.app.state.runtime.consumer
        original, holding = dict(consumer.handlers), {"on": True}

        def database_away(session, event):
            if holding["on"]:
                raise sa.exc.OperationalError("SELECT 1", {}, ConnectionError("test: the database is away"))
            return original[event.envelope.type](session, event)

        consumer.handlers = dict.fromkeys(original, database_away)
        stuck = stack.register("Stuck")
        wait_until(lambda: status.get("/readyz").status_code == 503, timeout_s=60, what="/readyz to say it is stuck")
        answer = status.get("/readyz").json()
        assert answer["checks"]["consumer"] is False and answer["checks"]["database"] is True
        held = answer["consumer_stalled"]
        assert held["topic"] == stack.topic and held["offset"] is not None and held["for_s"] >= 3
        assert "database unavailable" in held["reason"]
        assert "captives_consumer_stalled_seconds 0.0" not in status.get("/metrics").text
        holding["on"] = False
        wait_until(lambda: status.get("/readyz").status_code == 200, timeout_s=60, what="/readyz to recover")
        assert "captives_consumer_stalled_seconds 0.0" in status.get("/metrics").text
        wait_until(stack.caught_up, what="the held registration applied")
        with status.app.state.runtime.sessions() as session:
            assert stuck in set(session.execute(sa.select(decisions.c.captive_id)).scalars())


def test_a_consumer_stuck_in_a_call_is_named_by_dlq_list_and_replaced_by_its_watchdog(stack):
    """Issue 25: a consumer whose call into kafka-python never returns (as the relay's once did).
    Within its bound /readyz and `captives dlq list` say it is stuck; its watchdog then starts a
    new consumer thread with a new KafkaConsumer, which applies what came meanwhile; the stuck
    thread, once its call returns, leaves without touching its successor's consumer."""
    port = free_port()
    stack.status_settings.consumer_stall_after_s = 3
    stack.status_settings.port = port
    app = build_app("status", stack.status_settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, name="status-server", daemon=True)
    serving.start()
    release, stuck_in_poll = threading.Event(), threading.Event()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _status_code(f"{url}/readyz") == 200, what="status ready")
        stack.register("Before")
        wait_until(stack.caught_up, what="status to apply a first registration")
        consumer = app.state.runtime.consumer
        stuck_kafka, real_poll = consumer.kafka, consumer.kafka.poll

        def hangs(*args, **kwargs):
            stuck_in_poll.set()
            release.wait(120)  # a call that does not return, until the test lets it
            return real_poll(*args, **kwargs)

        stuck_kafka.poll = hangs
        assert stuck_in_poll.wait(60), "the consumer never polled again"
        stuck_thread = consumer.watchdog.thread
        meanwhile = stack.register("Meanwhile")
        wait_until(lambda: _status_code(f"{url}/readyz") == 503, timeout_s=60, what="/readyz to say it is stuck")
        held = httpx.get(f"{url}/readyz").json()["consumer_stalled"]
        assert held["for_s"] >= 3 and held["reason"] == "no poll has completed", held
        listed = CliRunner().invoke(
            cli,
            ["dlq", "list", "status", "--database-url", stack.status_settings.database_url],
            env={"COLUMNS": "250", "STATUS_PORT": str(port)},
        )
        assert listed.exit_code == 0, listed.output
        said = " ".join(listed.output.split())
        assert "status's consumer is stuck for" in said and "no poll has completed" in said, said

        wait_until(lambda: consumer.stalls_total == 1, timeout_s=60, what="the watchdog to replace the thread")
        assert consumer.watchdog.thread is not stuck_thread and consumer.watchdog.thread.is_alive()
        wait_until(stack.caught_up, timeout_s=90, what="the new consumer thread to apply what came meanwhile")
        with app.state.runtime.sessions() as session:
            assert meanwhile in set(session.execute(sa.select(decisions.c.captive_id)).scalars())
        assert "captives_consumer_stalls_total 1.0" in httpx.get(f"{url}/metrics").text
        successor = consumer.kafka
        assert successor is not None and successor is not stuck_kafka

        release.set()  # the stuck call returns: its thread finds itself replaced and leaves
        stuck_thread.join(60)
        assert not stuck_thread.is_alive(), "the replaced consumer thread did not leave"
        assert consumer.kafka is successor, "the stuck thread touched its successor's consumer"
        wait_until(lambda: _status_code(f"{url}/readyz") == 200, timeout_s=60, what="/readyz to recover")
    finally:
        release.set()
        server.should_exit = True
        serving.join(30)


def _status_code(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_a_consumer_started_before_its_upstream_topic_exists_waits_for_it_and_then_consumes(
    kafka_bootstrap, new_database, topic_prefix
):
    """Status started before intake had ever created its topic: subscribed to a topic that did not
    exist, its consumer was given no partition for many minutes (kafka-python asks again only now
    and then), and status decided nothing, silently. Now it waits until the topic exists, saying
    so, and then consumes from its start."""
    status_settings = settings_for(
        "status", database_url=new_database("status"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    intake_settings = settings_for(
        "intake", database_url=new_database("intake"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    topic = f"{topic_prefix}intake.events.v1"
    with signed_in(TestClient(build_app("status", status_settings))) as status:
        consumer = status.app.state.runtime.consumer
        wait_until(
            lambda: consumer.stuck_reason and "not created yet" in consumer.stuck_reason,
            timeout_s=60,
            what="status's consumer to say intake's topic is not there yet",
        )
        assert topic in consumer.stuck_reason and consumer.kafka is None
        with signed_in(TestClient(build_app("intake", intake_settings))) as intake:
            created = intake.post("/v1/captives", json=registration("Early", "Early"), headers=HEADERS)
            assert created.status_code == 201, created.text
            captive_id = created.json()["captive_id"]

            def decided() -> bool:
                with status.app.state.runtime.sessions() as session:
                    return captive_id in set(session.execute(sa.select(decisions.c.captive_id)).scalars())

            wait_until(decided, timeout_s=90, what="status to decide the captive registered after it started")
