"""Erasure by crypto-shredding, on the real stack: a captive's identity data is only ever stored
and published sealed with his key; `captives erase` destroys the key, after which no database
and no topic holds anything from which his identity can be read, while his case, status and
eligibility, the replay and the audit chain all still hold."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.intake import tables as intake_tables
from shared.broker import clients as kafka_clients
from shared.contracts import decode
from shared.contracts.topics import dead_letter
from shared.privacy.kek import load_kek
from shared.privacy.keyring import Keyring
from tests.support import caught_up, kafka_access, read_topic, registration, wait_until

pytestmark = pytest.mark.integration

SERVICES = ("intake", "status", "disposition")


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def engine_of(stack, service: str) -> sa.Engine:
    return sa.create_engine(stack["env"][f"{service.upper()}_DATABASE_URL"])


def database_values(stack) -> dict[str, list[bytes]]:
    """Every value of every text, JSON or bytes column of every table of the three services'
    databases, as bytes, by `service table.column`."""
    found: dict[str, list[bytes]] = {}
    for service in SERVICES:
        engine = engine_of(stack, service)
        try:
            inspector = sa.inspect(engine)
            with engine.connect() as connection:
                for table in inspector.get_table_names():
                    wanted = [
                        column["name"]
                        for column in inspector.get_columns(table)
                        if isinstance(column["type"], (sa.String, sa.Text, sa.JSON, sa.LargeBinary))
                    ]
                    for name in wanted:
                        rows = connection.execute(sa.text(f'SELECT "{name}" FROM "{table}"')).scalars()
                        found[f"{service} {table}.{name}"] = [as_bytes(value) for value in rows if value is not None]
        finally:
            engine.dispose()
    return found


def as_bytes(value) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, ensure_ascii=False).encode()  # JSON columns come back as dicts and lists


def topic_values(stack) -> dict[str, list[bytes]]:
    """Every record (key, value and headers) of every topic of this stack, by topic."""
    consumer = kafka_clients.reader(kafka_access(stack["bootstrap"]))
    try:
        topics = sorted(topic for topic in consumer.topics() if topic.startswith(stack["topic_prefix"]))
    finally:
        consumer.close()
    found = {}
    for topic in topics:
        records = read_topic(stack["bootstrap"], topic)
        found[topic] = [
            part
            for record in records
            for part in (record.key or b"", record.value or b"", *(value for _, value in record.headers or ()))
        ]
    return found


def intake_keyring(stack) -> Keyring:
    """Intake's keyring with the key-encryption key the running intake uses."""
    kek = load_kek(secret=None, path=Path(stack["env"]["INTAKE_KEK_FILE"]), create=False)
    return Keyring("intake", intake_tables.keys, kek)


def where(needles: list[bytes], haystacks: dict[str, list[bytes]]) -> list[str]:
    return sorted({name for name, values in haystacks.items() for value in values for n in needles if n in value})


def key_forms(key: bytes) -> list[bytes]:
    return [key, base64.b64encode(key), key.hex().encode(), base64.urlsafe_b64encode(key).rstrip(b"=")]


def heap_files_holding(engine: sa.Engine, needle: bytes) -> list[str] | None:
    """The files of intake's database on the server's disk that hold `needle`, after a
    checkpoint; None where the data directory cannot be read from here (a remote server)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        try:
            connection.exec_driver_sql("CHECKPOINT")
            data_dir = connection.exec_driver_sql("SHOW data_directory").scalar()
            oid = connection.exec_driver_sql("SELECT oid FROM pg_database WHERE datname = current_database()").scalar()
        except sa.exc.DBAPIError:
            return None
    directory = Path(data_dir) / "base" / str(oid)
    if not os.access(directory, os.R_OK):
        return None
    return sorted(path.name for path in directory.iterdir() if path.is_file() and needle in path.read_bytes())


def test_erasing_a_captive_shreds_his_identity_everywhere_and_keeps_his_case(stack):
    intake, status, disposition = stack["intake"], stack["status"], stack["disposition"]
    canary = f"zq{uuid.uuid4().hex[:12]}"
    # Registered before him, so his key row is not the only one (an emptied table is simply
    # truncated by any VACUUM): his erasure must leave the bystander's identity readable.
    bystander = intake.post("/v1/captives", json=registration(surname="박", romanised=f"Pak {canary[::-1]}"))
    assert bystander.status_code == 201, bystander.text
    body = registration(surname=f"김{canary}", romanised=f"Kim {canary}")
    body["capture"]["place"] = f"{canary} village, Kursk oblast"
    created = intake.post("/v1/captives", json=body)
    assert created.status_code == 201, created.text
    captive_id = created.json()["captive_id"]
    moved = intake.post(f"/v1/captives/{captive_id}/movements", json={"kind": "ARRIVED_AT_CAMP", "location": "Camp 4"})
    assert moved.status_code == 201, moved.text

    # Before: intake shows him to those who may see identity...
    record = intake.get(f"/v1/captives/{captive_id}").json()
    assert record["identity"]["surname"] == {"answer": "GIVEN", "value": f"김{canary}", "romanised": f"Kim {canary}"}
    assert record["identity"]["capture"]["place"] == f"{canary} village, Kursk oblast"
    assert record["identity"]["movements"][0]["location"] == "Camp 4"
    assert canary in intake.get(f"/v1/captives/{captive_id}/events").text

    # ...status and disposition decide from the reference tier...
    topic = f"{stack['topic_prefix']}intake.events.v1"
    decided = wait_until(
        lambda: (answer := status.get(f"/v1/captives/{captive_id}")).status_code == 200 and answer.json(),
        timeout_s=60,
        what="the status decision",
    )
    assert decided["status"] == "PRESUMED_POW" and decided["effective_from"] == "2025-01-11T09:00:00Z"
    picture = wait_until(
        lambda: (
            (answer := disposition.get(f"/v1/captives/{captive_id}")).status_code == 200
            and (found := answer.json())["registered"]
            and found["status"]
            and found["exchange_eligibility"]
            and found
        ),
        timeout_s=60,
        what="disposition's picture with status and eligibility",
    )
    eligibility = disposition.get(f"/v1/captives/{captive_id}/eligibility").json()["counterparts"]
    assert eligibility and picture["captured_at"] == "2025-01-11T09:00:00Z"

    # ...and what is stored and published holds his identity sealed, never in clear.
    mine = wait_until(
        lambda: (
            (found := [r for r in read_topic(stack["bootstrap"], topic) if r.key.decode() == captive_id])
            and len(found) == 2
            and found
        ),
        timeout_s=60,
        what="his 2 events on the topic",
    )
    published = [decode(record.value) for record in mine]
    assert "sealed" in published[0].envelope.data and "surname" not in published[0].envelope.data
    assert published[0].payload.surname.withheld == "sealed"
    intake_db = engine_of(stack, "intake")
    keyring = intake_keyring(stack)
    with Session(intake_db) as session:
        [wrapped] = session.execute(
            sa.text("SELECT key FROM captive_keys WHERE captive_id = :id"), {"id": captive_id}
        ).scalars()
        wrapped = bytes(wrapped)
        key = keyring.unwrap(captive_id, wrapped)  # stored wrapped with the KEK, kept outside the database
        opened = keyring.open(session, published)  # the ciphertext on the topic does hold him
    assert opened[0].payload.surname.romanised == f"Kim {canary}" and opened[1].payload.location == "Camp 4"

    databases, topics = database_values(stack), topic_values(stack)
    assert where([canary.encode()], topics) == [], "his identity is on a topic in clear"
    assert where([canary.encode()], databases) == [], "his identity is in a database in clear"
    # The scans do see what is there: his id everywhere, his key in intake's key table only.
    assert {name.split()[0] for name in where([captive_id.encode()], databases)} == set(SERVICES)
    assert topic in where([captive_id.encode()], topics)
    assert where(key_forms(key), databases) == [], "a captive key is stored in clear"
    assert where(key_forms(wrapped), databases) == ["intake captive_keys.key"]
    assert where(key_forms(key) + key_forms(wrapped), topics) == []
    heap_before = heap_files_holding(intake_db, wrapped)
    if not os.environ.get("DATABASE_URL"):  # the harness's own cluster: its files are readable here
        assert heap_before, "the scan of the database's files should find the key before erasure"

    # Erase.
    erased = cli(stack, "erase", captive_id, "--reason", "the captive's request under the data-protection policy")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert f"erased {captive_id}: key destroyed (VACUUM (FULL) captive_keys)" in erased.stdout
    again = cli(stack, "erase", captive_id)
    assert again.returncode == 0 and "was already erased" in again.stdout and "nothing to do" in again.stdout
    unknown = cli(stack, "erase", "CAP-0000-0000-0000")
    assert unknown.returncode == 1 and "no captive CAP-0000-0000-0000" in unknown.stdout

    wait_until(
        lambda: len([r for r in read_topic(stack["bootstrap"], topic) if r.key.decode() == captive_id]) == 3,
        timeout_s=60,
        what="IdentityErased on the topic (published by the running relay)",
    )
    for group in (f"{stack['topic_prefix']}status", f"{stack['topic_prefix']}disposition"):
        wait_until(lambda g=group: caught_up(stack["bootstrap"], g, topic), timeout_s=60, what=f"{group} to catch up")

    # After: intake answers with the identity marked erased; the reference tier is whole.
    record = intake.get(f"/v1/captives/{captive_id}").json()
    identity = record["identity"]
    assert identity["surname"] == {"withheld": "erased"} and identity["rank"] == {"withheld": "erased"}
    assert identity["capture"]["place"] == {"withheld": "erased"}
    assert identity["capture"]["captured_at"] == "2025-01-11T09:00:00Z"
    assert identity["movements"][0]["location"] == {"withheld": "erased"}
    assert record["reference"]["erasures"][0]["reason"] == "the captive's request under the data-protection policy"
    assert record["reference"]["custody"]["state"] == "INTERNED" and record["stream_version"] == 3
    history = intake.get(f"/v1/captives/{captive_id}/events")
    assert [event["type"] for event in history.json()] == ["CaptiveRegistered", "MovementRecorded", "IdentityErased"]
    assert history.json()[0]["data"]["surname"] == {"withheld": "erased"} and canary not in history.text
    amended = intake.post(
        f"/v1/captives/{captive_id}/identity-amendments",
        headers={"If-Match": '"3"'},
        json={"field": "rank", "current": {"answer": "GIVEN", "value": "상등병"}, "reason": "unit papers"},
    )
    assert amended.status_code == 409 and "was erased" in amended.json()["detail"], amended.text

    # The log of record still replays, chains and reads.
    replayed = cli(stack, "replay", "intake", "--verify")
    assert replayed.returncode == 0 and "match:" in replayed.stdout, replayed.stdout + replayed.stderr
    verified = cli(stack, "audit", "verify")
    assert verified.returncode == 0 and "0 broken chains" in verified.stdout, verified.stdout + verified.stderr
    timeline = cli(stack, "audit", "timeline", captive_id)
    assert timeline.returncode == 0 and "IdentityErased" in timeline.stdout, timeline.stdout + timeline.stderr
    assert "[erased]" in timeline.stdout and canary not in timeline.stdout

    # Nothing anywhere holds his identity or his key any more.
    databases, topics = database_values(stack), topic_values(stack)
    assert where([canary.encode()], databases) == []
    assert where([canary.encode()], topics) == []
    assert where(key_forms(key) + key_forms(wrapped), databases) == [], "the key is still in a database"
    assert where(key_forms(key), topics) == []
    assert {name.split()[0] for name in where([captive_id.encode()], databases)} == set(SERVICES)
    heap_after = heap_files_holding(intake_db, wrapped)
    assert heap_after is None or heap_after == [], f"the deleted key lingers on disk in {heap_after}"
    # The erasure was his alone.
    other = intake.get(f"/v1/captives/{bystander.json()['captive_id']}").json()["identity"]["surname"]
    assert other["romanised"] == f"Pak {canary[::-1]}"
    with Session(intake_db) as session:
        assert keyring.open(session, published)[0].payload.surname.withheld == "erased"
    intake_db.dispose()

    # Status and disposition still know his case, and nothing was dead-lettered.
    assert status.get(f"/v1/captives/{captive_id}").json()["status"] == "PRESUMED_POW"
    after = disposition.get(f"/v1/captives/{captive_id}").json()
    assert after["status"]["status"] == picture["status"]["status"] and after["registered"] is True
    assert after["exchange_eligibility"] == picture["exchange_eligibility"]
    assert disposition.get(f"/v1/captives/{captive_id}/eligibility").json()["counterparts"] == eligibility
    assert read_topic(stack["bootstrap"], dead_letter(topic)) == []
