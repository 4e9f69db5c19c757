"""The secured broker (issue 17, item 5), against the real one the harness runs as `make up` does:
a client that does not authenticate, or authenticates wrongly, reads and writes nothing; each
service's principal writes only its own topics and reads only what it consumes; a record forged with
a service's own Kafka password but not its signing key lands in the dead-letter topic, is never
applied and takes no place in its stream's chain; a record signed with the key but out of its
stream's chain breaks it and is set aside the same way; replay skips both as the consumer did."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import orjson
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import AuthorizationError, KafkaError

from deploy.processes import free_port
from services.status.app import definition as status_definition
from services.status.tables import force_memberships
from shared.broker import clients as kafka_clients
from shared.broker.access import AUDITOR, KafkaAccess, all_passwords
from shared.contracts.topics import dead_letter
from shared.eventstore import dead_letters
from shared.eventstore import replay as replaying
from shared.evidence import signing
from shared.evidence.chain import event_hash
from shared.runtime.runtime import pinned_keys
from tests.broker import KAFKA_CREDENTIALS
from tests.support import (
    HEADERS,
    KPA_MEMBERSHIP,
    build_app,
    caught_up,
    grant_prefix,
    kafka_access,
    producer,
    read_topic,
    registration,
    settings_for,
    signed_in,
    wait_until,
)

pytestmark = pytest.mark.integration

ANONYMOUS_TIMEOUT_MS = 3_000


def passwords(directory) -> list[str]:
    return list(all_passwords(directory).values())


def seeded(bootstrap: str, prefix: str, service: str = "intake") -> str:
    """`service`'s topic under `prefix`, created by the service's own principal, with one record."""
    grant_prefix(bootstrap, prefix)
    topic = f"{prefix}{service}.events.v1"
    access = kafka_access(bootstrap, service)
    kafka_clients.ensure_topics(access, [topic], 1, client_id="test")
    writer = kafka_clients.producer(access, "test")
    writer.send(topic, key=b"CAP-0000-0000-0001", value=b'{"a": "medical finding"}').get(10)
    writer.close()
    return topic


def records_as(config: dict, topic: str) -> list:
    """What a client with `config` gets reading `topic` from offset 0 (raises if it cannot connect)."""
    consumer = KafkaConsumer(
        **config, group_id=None, enable_auto_commit=False, bootstrap_timeout_ms=ANONYMOUS_TIMEOUT_MS
    )
    found = []
    try:
        partitions = consumer.partitions_for_topic(topic) or {0}
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                found.extend(batch)
        return found
    except AuthorizationError:  # the broker says no: what was read (nothing) is what it got
        return found
    finally:
        consumer.close()


def write_as(config: dict, topic: str) -> None:
    """Produce one record as a client with `config` (idempotent, as every producer here): refused
    with TopicAuthorizationFailed, or ClusterAuthorizationFailed for a principal that may write
    no topic at all (it may not even get a producer id)."""
    writer = KafkaProducer(
        **config, bootstrap_timeout_ms=ANONYMOUS_TIMEOUT_MS, max_block_ms=ANONYMOUS_TIMEOUT_MS, acks="all"
    )
    try:
        writer.send(topic, value=b'{"forged": true}').get(10)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "who",
    [
        "anonymous (no SASL)",
        "intake with a wrong password",
        "a principal the broker does not know",
    ],
)
def test_a_client_that_does_not_authenticate_as_a_principal_reads_and_writes_nothing(
    kafka_bootstrap, topic_prefix, who
):
    topic = seeded(kafka_bootstrap, topic_prefix)
    config = {
        "anonymous (no SASL)": {"bootstrap_servers": kafka_bootstrap},
        "intake with a wrong password": KafkaAccess(kafka_bootstrap, "intake", "not-its-password").client_config(),
        "a principal the broker does not know": KafkaAccess(kafka_bootstrap, "mallory", "x" * 43).client_config(),
    }[who]

    with pytest.raises(KafkaError):
        assert records_as(config, topic) == [], "it read records"
    with pytest.raises(KafkaError):
        write_as(config, topic)

    # The topic still holds exactly what intake wrote: nothing was added.
    assert [record.value for record in read_topic(kafka_bootstrap, topic)] == [b'{"a": "medical finding"}']


@pytest.mark.parametrize("secret", ["a wrong password", "no password at all"])
def test_a_service_given_a_wrong_or_no_secret_stops_at_start_saying_so_and_never_prints_it(
    kafka_bootstrap, tmp_path, secret
):
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'intake.db'}",
        "INTAKE_PORT": str(free_port()),
    }
    if secret == "a wrong password":
        env["KAFKA_SASL_PASSWORD"] = "not-its-password"
    else:
        env["KAFKA_CREDENTIALS_DIR"] = str(tmp_path / "empty")
    started = subprocess.run(
        [sys.executable, "-m", "tools.cli", "serve", "intake"],
        env={**env, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = started.stdout + started.stderr
    assert started.returncode == 2, output
    expected = {
        "a wrong password": "refused the credentials of principal 'intake'",
        "no password at all": "no Kafka password for principal 'intake'",
    }[secret]
    assert "intake cannot start" in output and expected in output, output
    assert "not-its-password" not in output
    assert all(password not in output for password in passwords(KAFKA_CREDENTIALS))


def test_each_service_writes_only_its_own_topics_and_reads_only_what_it_consumes(kafka_bootstrap, topic_prefix):
    intake_topic = seeded(kafka_bootstrap, topic_prefix, "intake")
    disposition_topic = seeded(kafka_bootstrap, topic_prefix, "disposition")
    status = kafka_access(kafka_bootstrap, "status").client_config()

    # status consumes intake's topic: it reads it, and may dead-letter what it cannot apply...
    assert [record.value for record in records_as(status, intake_topic)] == [b'{"a": "medical finding"}']
    dead = kafka_clients.producer(kafka_access(kafka_bootstrap, "status"), "test")
    dead.send(dead_letter(intake_topic), value=b"set aside").get(10)
    dead.close()
    # ...but it cannot write intake's topic (no forged upstream events), nor read disposition's,
    # which it does not consume.
    with pytest.raises(KafkaError, match="AuthorizationFailed"):
        write_as(status, intake_topic)
    assert records_as(status, disposition_topic) == []
    # (The principals are one per service, not per deployment: a topic under a prefix that no
    # deployment was granted, written by admin, is out of every service's reach.)
    other = f"u{uuid.uuid4().hex[:10]}.intake.events.v1"
    kafka_clients.ensure_topics(kafka_access(kafka_bootstrap, "admin"), [other], 1, client_id="test")
    admin = producer(kafka_bootstrap)
    admin.send(other, value=b'{"a": "wish"}').get(10)
    admin.close()
    assert records_as(status, other) == []
    assert records_as(kafka_access(kafka_bootstrap, "intake").client_config(), other) == []

    # intake consumes only disposition's topic (the hand-overs out of custody): it reads that one,
    # and may dead-letter what it cannot apply, but writes it never; status's it does not read.
    intake = kafka_access(kafka_bootstrap, "intake").client_config()
    assert [record.value for record in records_as(intake, disposition_topic)] == [b'{"a": "medical finding"}']
    with pytest.raises(KafkaError, match="AuthorizationFailed"):
        write_as(intake, disposition_topic)
    intake_dead = kafka_clients.producer(kafka_access(kafka_bootstrap, "intake"), "test")
    intake_dead.send(dead_letter(disposition_topic), value=b"set aside").get(10)
    intake_dead.close()
    status_topic = seeded(kafka_bootstrap, topic_prefix, "status")
    assert records_as(intake, status_topic) == []
    # The auditor reads every topic of the deployment and writes none.
    auditor = kafka_access(kafka_bootstrap, AUDITOR).client_config()
    assert len(records_as(auditor, disposition_topic)) == 1
    with pytest.raises(KafkaError, match="AuthorizationFailed"):
        write_as(auditor, disposition_topic)
    assert [record.value for record in read_topic(kafka_bootstrap, intake_topic)] == [b'{"a": "medical finding"}']


@pytest.fixture
def intake_and_status(kafka_bootstrap, new_database, topic_prefix):
    intake_settings = settings_for(
        "intake", database_url=new_database("intake"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    status_settings = settings_for(
        "status", database_url=new_database("status"), bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    with (
        signed_in(TestClient(build_app("intake", intake_settings))) as intake,
        signed_in(TestClient(build_app("status", status_settings))) as status,
    ):
        yield intake, status, status_settings


def status_tables(status: TestClient) -> dict:
    """Everything status's consumer keeps: its read models, its inbox and its chain links."""
    runtime = status.app.state.runtime
    tables = (*runtime.definition.all_projection_tables(), runtime.definition.store_tables.inbox)
    tables += (runtime.definition.store_tables.chain_links,)
    with runtime.sessions() as session:
        return {table.name: sorted(map(tuple, session.execute(sa.select(table)).all())) for table in tables}


def forged(real: bytes, **changes) -> bytes:
    """The real event's bytes, changed as a forger with write access to the topic would."""
    document = orjson.loads(real)
    data = changes.pop("data", {})
    document.update(changes)
    document["data"] = {**document["data"], **data}
    return orjson.dumps({k: v for k, v in document.items() if v is not None}, option=orjson.OPT_SORT_KEYS)


def test_a_forged_record_breaks_its_chain_lands_in_the_dead_letter_topic_and_changes_nothing(
    intake_and_status, kafka_bootstrap, topic_prefix, tmp_path
):
    intake, status, status_settings = intake_and_status
    topic = f"{topic_prefix}intake.events.v1"
    group = f"{topic_prefix}status"
    created = intake.post("/v1/captives", json=registration(), headers=HEADERS)
    assert created.status_code == 201, created.text
    captive_id = created.json()["captive_id"]
    (real,) = wait_until(
        lambda: [r for r in read_topic(kafka_bootstrap, topic) if r.key.decode() == captive_id], what="the registration"
    )
    wait_until(lambda: caught_up(kafka_bootstrap, group, topic), what="status to apply it")
    before = status_tables(status)
    assert before["decisions"], "status decided nothing"
    assert before["force_memberships"] == []

    kr = {"nationality": "KR"}
    forgeries = {
        # A next version whose prevhash names no event of the stream.
        "prevhash does not match": forged(
            real.value, id=str(uuid.uuid4()), streamversion=2, prevhash="f" * 64, data=kr
        ),
        # The registration itself, altered, under its own id and version.
        "seen with other bytes": forged(real.value, data=kr),
        # A next version with its prevhash stripped.
        "no prevhash": forged(real.value, id=str(uuid.uuid4()), streamversion=2, prevhash=None, data=kr),
        # A version that skips one, chained to the real registration.
        "version 3 follows version 1": forged(
            real.value, id=str(uuid.uuid4()), streamversion=3, prevhash=event_hash(real.value), data=kr
        ),
    }
    # Even a forger holding intake's signing key as well as write access cannot get a record out of
    # its stream's chain applied: the chain is judged after the signature holds.
    signer = intake.app.state.runtime.signer
    forger = producer(kafka_bootstrap)  # admin: the ACLs would stop any principal but intake
    for value in forgeries.values():
        forger.send(topic, key=real.key, value=value, headers=[signer.header(value)]).get(10)
    forger.close()
    # The real stream goes on at intake: its next event names the real registration. Status holds
    # it behind the forgeries (a captive's records wait behind his dead letter) until an operator
    # has discarded them, one dead letter at a time.
    recorded = intake.post(f"/v1/captives/{captive_id}/force-membership", json=KPA_MEMBERSHIP, headers=HEADERS)
    assert recorded.status_code == 201, recorded.text
    wait_until(lambda: caught_up(kafka_bootstrap, group, topic), what="status to hold the five records")
    runtime = status.app.state.runtime
    tables = runtime.definition.store_tables

    def held() -> list[str]:
        with runtime.sessions() as session:
            return [row.state for row in dead_letters.records_of(session, tables, captive_id)]

    assert held() == ["dead_letter", "parked", "parked", "parked", "parked"]
    assert status_tables(status) == before, "a forged record changed status's read models"
    for left in (5, 4, 3, 2):  # each forgery in turn heads the queue, dead-lettered, and is discarded
        wait_until(lambda left=left: (now := held()) and len(now) == left and now[0] == "dead_letter", what="a head")
        dead_letters.request(runtime.sessions, tables, captive_id, "discard", by="test", reason="a forgery")
    wait_until(lambda: held() == [], what="the real membership applied")

    dead = read_topic(kafka_bootstrap, dead_letter(topic))
    assert len(dead) == 4
    reasons = {record.value: dict(record.headers)["dlq.error"].decode() for record in dead}
    for expected, value in forgeries.items():
        assert "hash chain broken" in reasons[value] and expected in reasons[value], reasons[value]
        assert dict(next(r for r in dead if r.value == value).headers)["dlq.consumer.group"] == group.encode()
    assert runtime.consumer.chain_breaks_total == 4
    with runtime.sessions() as session:
        memberships = session.execute(
            sa.select(force_memberships.c.stream_version).where(force_memberships.c.captive_id == captive_id)
        ).all()
    assert len(memberships) == 1, memberships
    assert len(status_tables(status)["inbox"]) == len(before["inbox"]) + 1, "only the real membership was applied"

    # Replay from offset 0 skips what the consumer set aside, and rebuilds the same read models.
    wait_until(lambda: status.app.state.runtime.relay.backlog() == 0, what="status's outbox drained")
    kafka = status_settings.kafka
    rebuilt = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    result = replaying.rebuild(
        rebuilt,
        status_definition.migrations,
        status_definition.metadata,
        status_definition.projector,
        kafka_clients.read_log(kafka.access(AUDITOR), [kafka.topic(status_definition.topic), topic]),
        held=replaying.held_by(status_settings.database_url, status_definition.store_tables),
        pins=pinned_keys(status_settings, "status", (status_definition.topic, *status_definition.consumes)),
    )
    assert result.chain_breaks == 4 and result.forged == 0
    live = status.app.state.runtime.engine
    _digests, found = replaying.differences(
        live, sa.create_engine(rebuilt), list(status_definition.all_projection_tables())
    )
    assert found == []


def test_a_record_forged_with_intake_s_own_password_but_not_its_key_is_dead_lettered_and_never_applied(
    intake_and_status, kafka_bootstrap, topic_prefix, tmp_path
):
    """The attack of issue 25: intake's Kafka password, and a record whose prevhash is the true
    hash of the one before (the chain alone would take it). Unsigned, or signed with a key of the
    forger's own, or with status's key, it is dead-lettered, counted, never applied; it takes no
    place in the chain, so once an operator discards it the real next event applies."""
    intake, status, status_settings = intake_and_status
    topic, group = f"{topic_prefix}intake.events.v1", f"{topic_prefix}status"
    captive_id = intake.post("/v1/captives", json=registration(), headers=HEADERS).json()["captive_id"]
    (real,) = wait_until(
        lambda: [r for r in read_topic(kafka_bootstrap, topic) if r.key.decode() == captive_id], what="the registration"
    )
    assert dict(real.headers)["signature"].startswith(intake.app.state.runtime.signer.key_id.encode())
    wait_until(lambda: caught_up(kafka_bootstrap, group, topic), what="status to apply it")
    before = status_tables(status)

    next_version = forged(
        real.value,
        id=str(uuid.uuid4()),
        type="ForceMembershipRecorded",
        streamversion=2,
        prevhash=event_hash(real.value),
        data=KPA_MEMBERSHIP,
    )
    own_key = signing.Signer(Ed25519PrivateKey.generate()).header(next_version)
    status_key = status.app.state.runtime.signer.header(next_version)
    forger = kafka_clients.producer(kafka_access(kafka_bootstrap, "intake"), "forger")  # intake's password
    for headers in ([], [own_key], [status_key]):
        forger.send(topic, key=real.key, value=next_version, headers=headers).get(10)
    forger.close()
    wait_until(lambda: caught_up(kafka_bootstrap, group, topic), what="status to set the forgeries aside")
    runtime = status.app.state.runtime
    assert runtime.consumer.forgeries_total == 1  # the first heads his queue; the others park behind it
    assert status_tables(status) == before, "a forged record changed status's read models"
    (dead,) = read_topic(kafka_bootstrap, dead_letter(topic))
    assert "unsigned" in dict(dead.headers)["dlq.error"].decode()
    metrics = status.get("/metrics").text
    assert "captives_forged_records_total 1.0" in metrics

    # Discarded one by one, none takes the place of version 2: the real one applies after them.
    tables = runtime.definition.store_tables

    def held() -> list[str]:
        with runtime.sessions() as session:
            return [row.state for row in dead_letters.records_of(session, tables, captive_id)]

    for left in (3, 2, 1):
        wait_until(lambda left=left: (now := held()) and len(now) == left and now[0] == "dead_letter", what="a head")
        dead_letters.request(runtime.sessions, tables, captive_id, "discard", by="test", reason="a forgery")
    wait_until(lambda: held() == [], what="every forgery discarded")
    reasons = [dict(r.headers)["dlq.error"].decode() for r in read_topic(kafka_bootstrap, dead_letter(topic))]
    assert [("unsigned" in r, "not pinned for intake" in r) for r in reasons] == [
        (True, False),
        (False, True),
        (False, True),
    ]
    recorded = intake.post(f"/v1/captives/{captive_id}/force-membership", json=KPA_MEMBERSHIP, headers=HEADERS)
    assert recorded.status_code == 201, recorded.text
    wait_until(lambda: caught_up(kafka_bootstrap, group, topic), what="status to apply the real membership")
    assert held() == [], "the real version 2 was held: a forgery took its place in the chain"
    with runtime.sessions() as session:
        memberships = session.execute(
            sa.select(force_memberships.c.stream_version).where(force_memberships.c.captive_id == captive_id)
        ).all()
    assert [m.stream_version for m in memberships] == [2]

    # Replay skips them as forged; audit verify names them.
    kafka = status_settings.kafka
    result = replaying.rebuild(
        f"sqlite:///{tmp_path / 'rebuilt.db'}",
        status_definition.migrations,
        status_definition.metadata,
        status_definition.projector,
        kafka_clients.read_log(kafka.access(AUDITOR), [topic]),
        pins=pinned_keys(status_settings, "status", status_definition.consumes),
    )
    assert result.forged == 3 and result.chain_breaks == 0
