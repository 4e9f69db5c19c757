"""The sealing every service shares (shared/privacy/keyring.py): captive keys wrapped with a
key-encryption key kept outside the database, the KEK file's mode, the database files' modes,
status's and disposition's free text sealed with their own keys, and their erasure on
IdentityErased, after which writes carrying such data are refused and reads show it erased."""

from __future__ import annotations

import base64
import os
import stat
import uuid

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.disposition import tables as disposition_tables
from services.intake import tables as intake_tables
from services.status import tables as status_tables
from shared.contracts import DecodedEvent, EventEnvelope, EventMetadata, decode
from shared.contracts.disposition import DispositionProposed, RiskAssessed
from shared.contracts.envelope import utc_now
from shared.contracts.intake import IdentityErased
from shared.contracts.status import LegalFindingRecorded, StatusDetermined, TribunalConvened, TribunalHearingHeld
from shared.contracts.withheld import ERASED, SEALED, identity_paths
from shared.eventstore import EventStore
from shared.platform.db import create_engine
from shared.privacy.kek import KekError, load_kek, new_kek_text
from shared.privacy.keyring import Keyring, PersonalDataErased, SealBroken, as_published

CANARY = "zqkeyring5b1c"
CAPTIVE = "CAP-0000-0000-0007"
KEK = os.urandom(32)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- the key-encryption key --------------------------------------------------------------------


def test_the_kek_file_is_created_once_with_mode_0600_and_read_back(tmp_path):
    path = tmp_path / "keys" / "status.kek"
    kek = load_kek(secret=None, path=path)
    assert len(kek) == 32 and mode_of(path) == 0o600
    assert load_kek(secret=None, path=path) == kek  # the same key on the next start
    assert base64.b64decode(path.read_text()) == kek


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_kek_file_others_may_read_is_refused(tmp_path, mode):
    path = tmp_path / "intake.kek"
    load_kek(secret=None, path=path)
    os.chmod(path, mode)
    with pytest.raises(KekError, match=f"mode {mode:04o}"):
        load_kek(secret=None, path=path)


def test_a_service_does_not_start_with_a_kek_file_others_may_read(tmp_path, status_db):
    path = tmp_path / "status.kek"
    keyring = Keyring("status", status_tables.keys, lambda: load_kek(secret=None, path=path))
    assert keyring.check(status_db) == 0 and mode_of(path) == 0o600  # created at the first start
    os.chmod(path, 0o644)
    with pytest.raises(KekError, match="readable by others"):
        Keyring("status", status_tables.keys, lambda: load_kek(secret=None, path=path)).check(status_db)


def test_an_environment_secret_is_used_instead_of_a_file_and_must_be_32_bytes(tmp_path):
    secret = new_kek_text()
    assert load_kek(secret=secret, path=tmp_path / "never.kek") == base64.b64decode(secret)
    assert not (tmp_path / "never.kek").exists()
    with pytest.raises(KekError, match="16 bytes"):
        load_kek(secret=base64.b64encode(b"x" * 16).decode(), path=tmp_path / "never.kek")
    with pytest.raises(KekError, match="not base64"):
        load_kek(secret="not base64!", path=tmp_path / "never.kek")
    with pytest.raises(KekError, match="no key-encryption key"):
        load_kek(secret=None, path=tmp_path / "absent.kek", create=False)


# -- wrapping ------------------------------------------------------------------------------------


@pytest.fixture
def status_db():
    engine = sa.create_engine("sqlite://")
    status_tables.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        yield session


def stored_key(session: Session, keyring: Keyring, captive_id: str = CAPTIVE) -> bytes:
    keys = keyring.tables.keys
    return bytes(session.execute(sa.select(keys.c.key).where(keys.c.captive_id == captive_id)).scalar_one())


def test_a_stored_key_is_wrapped_and_opens_only_with_its_kek_and_captive(status_db):
    keyring = Keyring("status", status_tables.keys, KEK)
    store = EventStore(status_tables.store_tables, source="/services/status", topic="t", sealer=keyring)
    finding = LegalFindingRecorded(captive_id=CAPTIVE, finding="ESPIONAGE", basis=f"seen {CANARY}")
    store.append(status_db, CAPTIVE, 0, [finding], EventMetadata(actor="a", agency="b"))
    wrapped = stored_key(status_db, keyring)
    key = keyring.unwrap(CAPTIVE, wrapped)
    assert len(wrapped) == 61 and wrapped[0] == 1 and len(key) == 32 and key not in wrapped

    with pytest.raises(KekError, match="does not unwrap with this key-encryption key"):
        Keyring("status", status_tables.keys, os.urandom(32)).unwrap(CAPTIVE, wrapped)
    with pytest.raises(KekError, match="does not unwrap"):  # moved to another captive's row
        keyring.unwrap("CAP-0000-0000-0008", wrapped)
    with pytest.raises(KekError, match="does not unwrap"):  # or to another service's database
        Keyring("disposition", status_tables.keys, KEK).unwrap(CAPTIVE, wrapped)
    tampered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
    with pytest.raises(KekError, match="does not unwrap"):
        keyring.unwrap(CAPTIVE, tampered)
    # a database copied without its KEK opens nothing; with a wrong one `check` refuses to start
    with pytest.raises(KekError):
        Keyring("status", status_tables.keys, os.urandom(32)).check(status_db)
    assert keyring.check(status_db) == 0


def test_keys_stored_before_wrapping_are_wrapped_at_start_and_old_events_still_open():
    engine = sa.create_engine("sqlite://")
    intake_tables.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        legacy_key = os.urandom(32)
        keyring = Keyring("intake", intake_tables.keys, KEK)
        session.execute(
            sa.insert(intake_tables.captive_keys).values(captive_id=CAPTIVE, key=legacy_key, created_at=utc_now())
        )
        store = EventStore(intake_tables.store_tables, source="/services/intake", topic="t", sealer=keyring)
        # an event sealed with the raw key, as intake sealed them before wrapping began
        from shared.contracts.intake import MovementRecorded

        moved = MovementRecorded(captive_id=CAPTIVE, kind="ARRIVED_AT_CAMP", location=f"Camp {CANARY}")
        store.append(session, CAPTIVE, 0, [moved], EventMetadata(actor="a", agency="b"))
        assert keyring.check(session) == 1
        wrapped = stored_key(session, keyring)
        assert len(wrapped) == 61 and legacy_key not in wrapped and keyring.unwrap(CAPTIVE, wrapped) == legacy_key
        [opened] = keyring.open(session, store.read_stream(session, CAPTIVE))
        assert opened.event.payload.location == f"Camp {CANARY}"
        assert keyring.check(session) == 0


# -- the database files -------------------------------------------------------------------------


def test_sqlite_database_files_and_their_wal_are_created_0600_and_older_ones_narrowed(tmp_path):
    path = tmp_path / "status.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        connection.exec_driver_sql("INSERT INTO t VALUES ('x')")
        files = [path, path.with_name("status.db-wal"), path.with_name("status.db-shm")]
        assert all(file.exists() for file in files)
        assert [mode_of(file) for file in files] == [0o600] * 3
    engine.dispose()

    os.chmod(path, 0o644)
    engine = create_engine(f"sqlite:///{path}")
    assert mode_of(path) == 0o600
    engine.dispose()


# -- status and disposition seal their free text with keys of their own ---------------------------


def published(envelope: EventEnvelope) -> DecodedEvent:
    return decode(orjson.dumps(envelope.model_dump(mode="json")))


def test_status_seals_findings_and_tribunal_text_and_keeps_staff_in_clear(status_db):
    keyring = Keyring("status", status_tables.keys, KEK)
    store = EventStore(status_tables.store_tables, source="/services/status", topic="t", sealer=keyring)
    facts = [
        LegalFindingRecorded(
            captive_id=CAPTIVE, finding="ESPIONAGE", basis=f"roster with {CANARY}", evidence_refs=[f"EV-{CANARY}"]
        ),
        TribunalConvened(
            captive_id=CAPTIVE,
            tribunal="Art. 5 Tribunal No. 2",
            notice_to_captive=f"told {CANARY}",
            notice_language="kor",
        ),
        TribunalHearingHeld(
            captive_id=CAPTIVE, interpreter="Lt. K. Interpreter", captive_present=True, evidence_refs=[CANARY]
        ),
    ]
    envelopes = store.append(status_db, CAPTIVE, 0, facts, EventMetadata(actor="a", agency="b"))
    raw = b"".join(orjson.dumps(e.model_dump(mode="json")) for e in envelopes)
    assert CANARY.encode() not in raw
    assert b"Art. 5 Tribunal No. 2" in raw and b"Lt. K. Interpreter" in raw  # who did what stays in clear

    seen = [published(envelope).payload for envelope in envelopes]  # what disposition and a replay get
    assert (seen[0].basis, seen[0].evidence_refs, seen[1].notice_to_captive, seen[2].evidence_refs) == (SEALED,) * 4
    assert seen[0].finding == "ESPIONAGE" and seen[2].captive_present is True
    # the read model copies the published form, whether fed by the API or by a replay
    assert as_published(envelopes[0], facts[0]) == seen[0] == as_published(envelopes[0], seen[0])

    opened = [item.event.payload for item in keyring.open(status_db, store.read_stream(status_db, CAPTIVE))]
    assert opened == facts
    # a decision carries nothing sealed, and is no reason to make a key
    decided = StatusDetermined(captive_id="CAP-0000-0000-0009", status="POW", rulebook_version="v1", rules=[], facts=[])
    [envelope] = store.append(status_db, "CAP-0000-0000-0009", 0, [decided], EventMetadata(actor="a", agency="b"))
    assert "sealed" not in envelope.data and keyring.keys(status_db, {"CAP-0000-0000-0009"}) == {}


def identity_erased(captive_id: str = CAPTIVE) -> DecodedEvent:
    event = IdentityErased(captive_id=captive_id, reason="his request", erased_by="root")
    envelope = EventEnvelope(
        id=str(uuid.uuid4()),
        source="/services/intake",
        type="IdentityErased",
        subject=captive_id,
        occurred_at=utc_now(),
        recorded_at=utc_now(),
        stream_version=3,
        schema_version=1,
        correlation_id="c",
        actor="root",
        agency="operator",
        previous_hash="0" * 64,
        data=event.model_dump(mode="json"),
    )
    return DecodedEvent(envelope, event)


def test_identity_erased_destroys_dispositions_key_and_later_free_text_about_him_is_refused():
    engine = sa.create_engine("sqlite://")
    disposition_tables.metadata.create_all(engine)
    keyring = Keyring("disposition", disposition_tables.keys, KEK)
    store = EventStore(disposition_tables.store_tables, source="/services/disposition", topic="t", sealer=keyring)
    meta = EventMetadata(actor="a", agency="b")
    risk = RiskAssessed(
        captive_id=CAPTIVE,
        destination="KP",
        outcome="REAL_RISK",
        would_hand_on=False,
        assessor="Maj. I. Savchenko",
        basis=f"his name {CANARY} on a list",
        evidence_refs=[f"EV-{CANARY}"],
    )
    bystander = risk.model_copy(update={"captive_id": "CAP-0000-0000-0008"})
    with Session(engine) as session, session.begin():
        store.append(session, CAPTIVE, 0, [risk], meta)
        store.append(session, "CAP-0000-0000-0008", 0, [bystander], meta)
        erasure = keyring.key_destruction(lambda: engine)  # the privacy wing's policy
        for erased in (identity_erased(), identity_erased()):  # delivered twice: nothing more happens
            erasure.run(session, store, [(erased.envelope, erased.payload)])

        assert keyring.keys(session, {CAPTIVE}) == {} and keyring.erased(session, {CAPTIVE}) == {CAPTIVE}
        [opened] = keyring.open(session, store.read_stream(session, CAPTIVE))
        assert opened.event.payload.basis == ERASED and opened.event.payload.evidence_refs == ERASED
        assert opened.event.payload.assessor == "Maj. I. Savchenko" and opened.event.payload.outcome == "REAL_RISK"
        assert CANARY not in orjson.dumps(opened.envelope.data).decode()
        [other] = keyring.open(session, store.read_stream(session, "CAP-0000-0000-0008"))
        assert other.event.payload.basis == f"his name {CANARY} on a list"  # the erasure was his alone

        with pytest.raises(PersonalDataErased, match=f"the identity of {CAPTIVE} was erased.*basis"):
            store.append(session, CAPTIVE, 1, [risk], meta)
        noted = DispositionProposed(
            captive_id=CAPTIVE, disposition_id="DSP-1", kind="ART_12_TRANSFER", note=f"{CANARY}", reasons=[]
        )
        with pytest.raises(PersonalDataErased, match="note"):
            store.append(session, CAPTIVE, 1, [noted], meta)
        # a step that carries nothing written about him is still recorded
        plain = noted.model_copy(update={"note": None})
        [envelope] = store.append(session, CAPTIVE, 1, [plain], meta)
        assert "sealed" not in envelope.data


def test_a_sealed_value_moved_into_another_event_does_not_open(status_db):
    keyring = Keyring("status", status_tables.keys, KEK)
    store = EventStore(status_tables.store_tables, source="/services/status", topic="t", sealer=keyring)
    meta = EventMetadata(actor="a", agency="b")
    [first] = store.append(
        status_db, CAPTIVE, 0, [LegalFindingRecorded(captive_id=CAPTIVE, finding="ESPIONAGE", basis="a")], meta
    )
    [second] = store.append(
        status_db, CAPTIVE, 1, [LegalFindingRecorded(captive_id=CAPTIVE, finding="MERCENARY", basis="b")], meta
    )
    forged = second.model_copy(update={"data": {**second.data, "sealed": first.data["sealed"]}})
    with pytest.raises(SealBroken, match="do not open"):
        keyring.open(status_db, [published(forged)])


def test_what_is_sealed_in_each_service_s_events():
    assert set(identity_paths(LegalFindingRecorded)) == {"basis", "evidence_refs"}
    assert set(identity_paths(TribunalConvened)) == {"notice_to_captive", "notice_language"}
    # The interpreter, the languages and why he was absent stay in clear (the rules read them).
    assert set(identity_paths(TribunalHearingHeld)) == {"evidence_refs", "absence_details"}
    assert set(identity_paths(RiskAssessed)) == {"basis", "evidence_refs"}  # the assessor stays in clear
    assert set(identity_paths(DispositionProposed)) == {"note"}
    assert not identity_paths(StatusDetermined)
