"""Sealing wherever personal data is (issue 17, item 6), on the real stack, once with SQLite files and
once on a PostgreSQL cluster of its own (whose data directory, WAL included, is read after a
CHECKPOINT has written every buffer out), so every byte the services keep can be read from here: a
captive with a distinct canary string in every sealed field of all three services (identity,
medical findings, ICRC notes, wish statement, consent purpose, capture-card recipient; legal
findings' basis and evidence, tribunal notice, evidence and reasons; risk basis and evidence,
partner claim, disposition note), `captives erase` by the real CLI, and then no database file (with
its -wal and -shm), no Kafka log segment on the broker's disk, no record of any topic and no log
line holds any canary, no service can open what it sealed about him even with its key-encryption
key, and a new write carrying such data about him is refused with 409 by each service. Staff and
organisation names stay in clear throughout."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from deploy.postgres.cluster import PostgresCluster, create_database
from services.disposition import tables as disposition_tables
from services.intake import tables as intake_tables
from services.status import tables as status_tables
from shared.broker import clients as kafka_clients
from shared.contracts import decode
from shared.privacy.kek import load_kek
from shared.privacy.keyring import Keyring
from tests.e2e.conftest import running_stack
from tests.support import DELEGATE, OFFICER, as_person, caught_up, kafka_access, read_topic, registration, wait_until

pytestmark = pytest.mark.integration

SERVICES = ("intake", "status", "disposition")
KEY_TABLES = {"intake": intake_tables.keys, "status": status_tables.keys, "disposition": disposition_tables.keys}
TAG = f"zq{uuid.uuid4().hex[:8]}"
# One canary per sealed field: where a canary turns up says which field leaked.
FIELDS = (
    # intake: identity tier
    "surname",
    "first_names",
    "capture_place",
    "capture_circumstances",
    "papers_found",
    "document_number",
    "consent_purpose_122",
    "person_to_inform",
    "force_basis",
    "amendment_reason",
    "movement_location",
    "movement_details",
    "icrc_place",
    "offence",
    "media_details",
    # intake: free text of other tiers
    "medical_findings",
    "icrc_notes",
    "wish_statement",
    "disclosure_purpose",
    "card_recipient",
    # status
    "finding_basis",
    "finding_evidence",
    "tribunal_notice",
    "hearing_evidence",
    "ruling_reasons",
    "review_reasons",
    # disposition
    "risk_basis",
    "risk_evidence",
    "claim_basis",
    "disposition_note",
)
CANARY = {field: f"{TAG}{index:02d}{field.replace('_', '')}" for index, field in enumerate(FIELDS)}
STAFF = {
    "assessor": "Dr. O. Medic",
    "delegate": "ICRC delegate M. Keller",
    "interviewer": "ICRC delegate M. Keller",
    "interpreter": "Sgt. L. Interpreter",
    "tribunal": "Art. 5 Tribunal No. 7",
    "risk_assessor": "Maj. R. Assessor",
}
PRIVATE_ICRC = {
    "interviewer": STAFF["interviewer"],
    "interviewer_agency": "ICRC",
    "interpreter": STAFF["interpreter"],
    "setting": "PRIVATE_ICRC_INTERVIEW",
    "free_and_informed": True,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, kafka_bootstrap, keycloak, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"sealed-stack-{request.param}")
    if request.param == "sqlite":
        urls = {service: f"sqlite:///{root / 'data' / f'{service}.db'}" for service in SERVICES}
        with running_stack(kafka_bootstrap, urls, root, keycloak) as clients:
            clients["data"] = root / "data"
            clients["backend"] = "sqlite"
            yield clients
        return
    with PostgresCluster() as cluster:  # its own directory, which the server's user can reach
        urls = {service: create_database(cluster.url(), f"sealed_{service}") for service in SERVICES}
        with running_stack(kafka_bootstrap, urls, root, keycloak) as clients:
            clients["data"] = cluster.data_dir
            clients["backend"] = "postgresql"
            clients["server"] = cluster.url()
            yield clients


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def posted(client, path: str, body: dict, headers=None) -> dict:
    answer = client.post(path, json=body, headers=headers)
    assert answer.status_code == 201, (path, answer.text)
    return answer.json()


# -- the scans -----------------------------------------------------------------------------------


def database_files(stack) -> Iterator[tuple[str, bytes]]:
    """Every file of the three SQLite databases (the database, its -wal and -shm), or every file
    of the PostgreSQL cluster's data directory (tables, indexes, TOAST, the WAL in pg_wal), by
    name. PostgreSQL keeps changed pages in its buffers: a CHECKPOINT writes them all out first."""
    if stack["backend"] == "sqlite":
        paths = sorted(path for path in stack["data"].iterdir() if path.is_file())
        assert {f"{service}.db" for service in SERVICES} <= {path.name for path in paths}
    else:
        engine = sa.create_engine(stack["server"], isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("CHECKPOINT")
        finally:
            engine.dispose()
        paths = sorted(path for path in stack["data"].rglob("*") if path.is_file())
        assert any(path.parent.name == "pg_wal" for path in paths)
    for path in paths:
        yield str(path.relative_to(stack["data"])), path.read_bytes()


def segment_files(kafka_data_dir: Path) -> Iterator[tuple[str, bytes]]:
    """Every file of the broker's log directories (segments, indexes, snapshots, checkpoints),
    one at a time (the broker preallocates its indexes: together they are large)."""
    paths = sorted(path for path in (kafka_data_dir / "kraft-logs").rglob("*") if path.is_file())
    assert any(path.suffix == ".log" for path in paths)
    for path in paths:
        yield str(path.relative_to(kafka_data_dir)), path.read_bytes()


def topic_records(stack) -> Iterator[tuple[str, bytes]]:
    """Every record of every topic of this stack (key, value and headers), raw, by topic."""
    consumer = kafka_clients.reader(kafka_access(stack["bootstrap"]))
    try:
        topics = sorted(topic for topic in consumer.topics() if topic.startswith(stack["topic_prefix"]))
    finally:
        consumer.close()
    assert topics
    for topic in topics:
        parts = [
            part
            for record in read_topic(stack["bootstrap"], topic)
            for part in (record.key or b"", record.value or b"", *(value for _, value in record.headers or ()))
        ]
        yield topic, b"\x00".join(parts)


def log_files(stack) -> Iterator[tuple[str, bytes]]:
    for path in sorted(path for path in stack["logs"].iterdir() if path.is_file()):
        yield path.name, path.read_bytes()


def leaks(haystacks: Iterable[tuple[str, bytes]] | dict[str, bytes], needles: dict[str, str]) -> dict[str, list[str]]:
    """{needle: [where it was found]}, empty when none is anywhere."""
    found: dict[str, list[str]] = {}
    items = haystacks.items() if isinstance(haystacks, dict) else haystacks
    encoded = {name: needle.encode() for name, needle in needles.items()}
    for where, content in items:
        for name, needle in encoded.items():
            if needle in content:
                found.setdefault(name, []).append(where)
    return found


def everywhere(stack, kafka_data_dir: Path | None, needles: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """Where each of `needles` is, in every database file, Kafka log file, topic and log."""
    places = {
        "database files": database_files(stack),
        "topics": topic_records(stack),
        "service logs": log_files(stack),
    }
    if kafka_data_dir is not None:
        places["kafka log segments"] = segment_files(kafka_data_dir)
    return {place: leaks(files, needles) for place, files in places.items()}


def sealed_events_of(stack, service: str, captive_id: str) -> list:
    """His events as stored in `service`'s database, opened with that service's own KEK and keys."""
    engine = sa.create_engine(stack["env"][f"{service.upper()}_DATABASE_URL"])
    kek = load_kek(secret=None, path=Path(stack["env"][f"{service.upper()}_KEK_FILE"]), create=False)
    keyring = Keyring(service, KEY_TABLES[service], kek)
    events = {"intake": intake_tables, "status": status_tables, "disposition": disposition_tables}[service]
    table = events.store_tables.events
    try:
        with Session(engine) as session:
            rows = session.execute(
                sa.select(table.c.envelope).where(table.c.stream_id == captive_id).order_by(table.c.stream_version)
            ).scalars()
            stored = [decode(row.encode()) for row in rows]
            return keyring.open(session, [event for event in stored if keyring.holds(event)])
    finally:
        engine.dispose()


def key_rows(stack, service: str, captive_id: str) -> tuple[int, int]:
    """(his keys, his tombstones) in `service`'s database."""
    engine = sa.create_engine(stack["env"][f"{service.upper()}_DATABASE_URL"])
    tables = KEY_TABLES[service]
    try:
        with engine.connect() as connection:
            keys = connection.execute(
                sa.select(sa.func.count()).select_from(tables.keys).where(tables.keys.c.captive_id == captive_id)
            ).scalar()
            erased = connection.execute(
                sa.select(sa.func.count()).select_from(tables.erased).where(tables.erased.c.captive_id == captive_id)
            ).scalar()
        return keys, erased
    finally:
        engine.dispose()


# -- the scenario ----------------------------------------------------------------------------------


def record_everything(stack) -> tuple[str, str]:
    """A bystander and the captive, with a canary in every sealed field of the three services."""
    intake, status, disposition = stack["intake"], stack["status"], stack["disposition"]
    c = CANARY
    bystander = posted(intake, "/v1/captives", registration(surname="박", romanised="Pak"))["captive_id"]
    body = registration(surname=f"김{c['surname']}", romanised="Kim")
    body["first_names"] = {"answer": "GIVEN", "value": c["first_names"]}
    body["capture"].update(place=c["capture_place"], circumstances=c["capture_circumstances"])
    body["capture"]["papers_found"] = c["papers_found"]
    body["identity_document"] = {"kind": "military ID", "number": c["document_number"], "issuing_state": "KP"}
    body["consented_details"] = {
        "consent": {"purpose": c["consent_purpose_122"]},
        "person_to_inform": {"name": c["person_to_inform"], "relationship": "mother"},
    }
    body["armed_force"] = {"force": "Korean People's Army", "force_state": "KP", "basis": c["force_basis"]}
    him = posted(intake, "/v1/captives", body)["captive_id"]
    facts = [
        (
            "medical-assessments",
            {"assessor": STAFF["assessor"], "findings": c["medical_findings"], "seriously_wounded_or_sick": False},
        ),
        (
            "movements",
            {"kind": "ARRIVED_AT_CAMP", "location": c["movement_location"], "details": c["movement_details"]},
        ),
        (
            "icrc-visits",
            {
                "delegate": STAFF["delegate"],
                "place": c["icrc_place"],
                "private_interview": True,
                "notes": c["icrc_notes"],
            },
        ),
        ("wishes", {"wish": "STAY_IN_DETAINING_STATE", "statement": c["wish_statement"], "provenance": PRIVATE_ICRC}),
        (
            "disclosure-consents",
            {"recipient_state": "KR", "given": True, "purpose": c["disclosure_purpose"], "provenance": PRIVATE_ICRC},
        ),
        ("capture-card", {"action": "SENT", "recipient": c["card_recipient"], "addressee": "FAMILY"}),
        (
            "prosecutions",
            {"proceedings_id": "UA-77", "stage": "OPENED", "court": "Kyiv garrison court", "offence": c["offence"]},
        ),
        (
            "media-exposures",
            {"kind": "IMAGES_PUBLISHED", "outlet": "a television channel", "details": c["media_details"]},
        ),
    ]
    for what, fact in facts:
        # A wish and a consent weigh only as the ICRC delegate records them herself.
        author = DELEGATE if what in ("wishes", "disclosure-consents") else None
        posted(intake, f"/v1/captives/{him}/{what}", fact, author)
    version = intake.get(f"/v1/captives/{him}").json()["stream_version"]
    amendment = {"field": "rank", "current": {"answer": "GIVEN", "value": "상등병"}, "reason": c["amendment_reason"]}
    posted(intake, f"/v1/captives/{him}/identity-amendments", amendment, {"If-Match": f'"{version}"'})

    wait_until(lambda: status.get(f"/v1/captives/{him}").status_code == 200, timeout_s=60, what="his status")
    tribunal = f"/v1/captives/{him}/tribunal"
    posted(
        status,
        f"/v1/captives/{him}/findings",
        {"finding": "ESPIONAGE", "basis": c["finding_basis"], "evidence_refs": [c["finding_evidence"]]},
    )
    # A tribunal's steps count only from its persons; the legal officer convenes (shared/auth/standing.py).
    legal_officer, tribunal_person = as_person("d.lysenko"), as_person("v.hrytsenko")
    posted(
        status,
        f"{tribunal}/convening",
        {"tribunal": STAFF["tribunal"], "notice_to_captive": c["tribunal_notice"], "notice_language": "kor"},
        legal_officer,
    )
    posted(
        status,
        f"{tribunal}/hearings",
        {"interpreter": STAFF["interpreter"], "captive_present": True, "evidence_refs": [c["hearing_evidence"]]},
        tribunal_person,
    )
    posted(status, f"{tribunal}/ruling", {"outcome": "POW", "written_reasons": c["ruling_reasons"]}, tribunal_person)
    posted(
        status,
        f"{tribunal}/review",
        {"outcome": "UPHELD", "reviewing_body": "Review board", "written_reasons": c["review_reasons"]},
        tribunal_person,
    )
    posted(
        status,
        f"/v1/captives/{bystander}/findings",
        {"finding": "ESPIONAGE", "basis": f"{TAG} the bystander's own finding"},
    )

    wait_until(lambda: settled(stack), timeout_s=120, what="disposition to know his wish and status")
    posted(
        disposition,
        f"/v1/captives/{him}/risk-assessments",
        {
            "destination": "KP",
            "outcome": "REAL_RISK",
            "would_hand_on": False,
            "assessor": STAFF["risk_assessor"],
            "basis": c["risk_basis"],
            "evidence_refs": [c["risk_evidence"]],
        },
    )
    posted(disposition, f"/v1/captives/{him}/partner-claims", {"state": "KR", "basis": c["claim_basis"]})
    posted(
        disposition,
        f"/v1/captives/{him}/dispositions",
        {"kind": "STAY_IN_DETAINING_STATE", "note": c["disposition_note"]},
        OFFICER,  # a person: the two-person rule
    )
    return him, bystander


def feed(client) -> str:
    """Every event of the service's feed, as the operator (every tier) reads it."""
    pages, after = [], "0"
    while True:
        answer = client.get("/v1/feed", params={"after": after, "limit": 500})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages.append(json.dumps(page["events"], ensure_ascii=False))
        if page["end"] or not page["events"]:
            return "\n".join(pages)
        after = page["next"]


def settled(stack) -> bool:
    prefix = stack["topic_prefix"]
    return all(
        caught_up(stack["bootstrap"], f"{prefix}{group}", f"{prefix}{topic}")
        for group, topic in (
            ("status", "intake.events.v1"),
            ("disposition", "intake.events.v1"),
            ("disposition", "status.events.v1"),
        )
    )


def test_after_erasure_no_file_topic_or_log_holds_anything_sealed_about_him(stack, kafka_data_dir):
    intake, status, disposition = stack["intake"], stack["status"], stack["disposition"]
    him, bystander = record_everything(stack)
    wait_until(lambda: settled(stack), timeout_s=120, what="every consumer to catch up")

    # The data is there, and those allowed to read it do: each service opens what it sealed.
    intake_shown = intake.get(f"/v1/captives/{him}").text + intake.get(f"/v1/captives/{him}/events").text
    shown = {"intake": intake_shown, "status": feed(status), "disposition": feed(disposition)}
    owner = {field: "intake" for field in FIELDS[:20]} | {field: "status" for field in FIELDS[20:26]}
    owner |= {field: "disposition" for field in FIELDS[26:]}
    assert [field for field in FIELDS if CANARY[field] not in shown[owner[field]]] == []
    # Never in clear where it is kept or published, even before erasure...
    staff = {name: value for name, value in STAFF.items() if name != "interviewer"}
    before = everywhere(stack, kafka_data_dir, {**CANARY, "case": him, **staff})
    found = {place: {k: v for k, v in hits.items() if k in CANARY} for place, hits in before.items()}
    assert not any(found.values()), f"in clear before erasure: {found}"
    # ...while the scans do see what is there in clear: his case reference, and who did what.
    for place in ("database files", "topics", "kafka log segments"):
        if place not in before:  # a broker named by KAFKA_BOOTSTRAP_SERVERS: its files are elsewhere
            assert kafka_data_dir is None and os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            continue
        assert set(before[place]) == {"case", *staff}, place
    for service in SERVICES:
        assert key_rows(stack, service, him) == (1, 0), service
        opened = json.dumps([event.envelope.data for event in sealed_events_of(stack, service, him)])
        assert any(canary in opened for canary in CANARY.values()), service

    # Erase, by the real CLI.
    erased = cli(stack, "erase", him, "--reason", "his request under the data-protection policy")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    cleared = {"sqlite": "PRAGMA wal_checkpoint(TRUNCATE)", "postgresql": "VACUUM (FULL) captive_keys"}
    assert f"erased {him}: key destroyed ({cleared[stack['backend']]}" in erased.stdout, erased.stdout
    for service in ("status", "disposition"):
        wait_until(
            lambda s=service: key_rows(stack, s, him) == (0, 1), timeout_s=60, what=f"{service} to destroy its key"
        )
    assert key_rows(stack, "intake", him) == (0, 1)
    wait_until(lambda: settled(stack), timeout_s=120, what="every consumer to catch up")

    # Nothing anywhere holds any canary: not the database files, their WAL, the broker's
    # segments, any topic, nor any log line of the three services or of the CLI.
    found = everywhere(stack, kafka_data_dir, CANARY)
    found["cli output"] = leaks({"erase": (erased.stdout + erased.stderr).encode()}, CANARY)
    assert not any(found.values()), f"still there after erasure: {found}"
    # Not even with each service's KEK and database: what each sealed about him no longer opens.
    for service in SERVICES:
        events = sealed_events_of(stack, service, him)
        assert events, service
        opened = json.dumps([event.envelope.data for event in events], ensure_ascii=False)
        assert '{"withheld": "erased"}' in opened and not leaks({"opened": opened.encode()}, CANARY), service

    # Reads show it erased; staff and organisations stay.
    record = intake.get(f"/v1/captives/{him}").json()
    assert record["identity"]["surname"] == {"withheld": "erased"}
    assert record["medical"]["medical_assessments"][0]["findings"] == {"withheld": "erased"}
    assert record["medical"]["medical_assessments"][0]["assessor"] == STAFF["assessor"]
    for service in ("status", "disposition"):
        text = feed(stack[service])
        assert '{"withheld": "erased"}' in text and not leaks({"feed": text.encode()}, CANARY), service
    assert STAFF["tribunal"] in feed(status) and STAFF["risk_assessor"] in feed(disposition)
    # The bystander's own finding still opens: the erasure was his alone.
    assert f"{TAG} the bystander's own finding" in feed(status)

    # Later writes carrying such data about him are refused, by every service; others go on.
    refusals = [
        (
            intake,
            f"/v1/captives/{him}/medical-assessments",
            {"assessor": "Dr. B", "findings": "new", "seriously_wounded_or_sick": False},
        ),
        (status, f"/v1/captives/{him}/findings", {"finding": "MERCENARY", "basis": "a new finding"}),
        (
            disposition,
            f"/v1/captives/{him}/risk-assessments",
            {"destination": "RU", "outcome": "REAL_RISK", "would_hand_on": False, "assessor": "Maj. B", "basis": "new"},
        ),
        (disposition, f"/v1/captives/{him}/partner-claims", {"state": "KR", "basis": "another claim"}),
    ]
    for client, path, body in refusals:
        answer = client.post(path, json=body)
        assert answer.status_code == 409 and f"the identity of {him} was erased" in answer.json()["detail"], (
            path,
            answer.text,
        )
    posted(status, f"/v1/captives/{bystander}/findings", {"finding": "MERCENARY", "basis": "the bystander again"})
    assert status.get(f"/v1/captives/{him}").json()["status"] == "POW"  # his case remains

    # The log of record is unchanged: every service replays to the same read models, the chains hold.
    wait_until(lambda: settled(stack), timeout_s=120, what="every consumer to catch up")
    for service in SERVICES:
        replayed = cli(stack, "replay", service, "--verify")
        assert replayed.returncode == 0 and "match:" in replayed.stdout, replayed.stdout + replayed.stderr
    verified = cli(stack, "audit", "verify")
    assert verified.returncode == 0 and "0 broken chains" in verified.stdout, verified.stdout + verified.stderr
    timeline = cli(stack, "audit", "timeline", him)
    assert timeline.returncode == 0 and "[erased]" in timeline.stdout, timeline.stdout + timeline.stderr
    assert not leaks({"timeline": timeline.stdout.encode()}, CANARY)


def test_database_and_key_files_are_readable_by_their_owner_only(stack):
    if stack["backend"] != "sqlite":  # PostgreSQL's files are the server's, made 0600 by initdb
        assert stat.S_IMODE((stack["data"] / "PG_VERSION").stat().st_mode) == 0o600
        keys = sorted((stack["root"] / "keys").glob("*.kek"))
        assert {stat.S_IMODE(path.stat().st_mode) for path in keys} == {0o600} and len(keys) == 3
        return
    files = [path for path in stack["data"].iterdir() if path.is_file()]
    keys = sorted((stack["root"] / "keys").glob("*.kek"))
    assert {path.name for path in keys} == {f"{service}.kek" for service in SERVICES}
    assert any(path.name.endswith("-wal") for path in files)
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in [*files, *keys]} == {
        path.name: 0o600 for path in [*files, *keys]
    }
