"""Sealing identity-tier data with the captive's key (services/intake/keys.py), on an in-memory
SQLite database: what is stored and chained is ciphertext, intake opens it, other readers get
`Withheld("sealed")`, and once the key is destroyed nobody gets it back."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from services.intake import keys, tables
from services.intake.requests import (
    ForceMembershipRequest,
    IcrcVisitRequest,
    MediaExposureRequest,
    MovementRequest,
    ProsecutionRequest,
    RegistrationRequest,
)
from shared.contracts import EventMetadata, InvalidEvent, decode
from shared.contracts.envelope import utc_now
from shared.contracts.intake import (
    CaptiveRegistered,
    ForceMembershipRecorded,
    IdentityAmended,
    MediaExposureRecorded,
    MovementRecorded,
    ProsecutionRecorded,
)
from shared.contracts.withheld import ERASED, SEALED, Withheld
from shared.eventstore import EventStore
from shared.evidence.chain import event_hash
from shared.privacy.keyring import Keyring
from tests.support import registration

CANARY = "zqcanary7f3e"
CAPTIVE = "CAP-0000-0000-0001"


@pytest.fixture
def session():
    engine = sa.create_engine("sqlite://")
    tables.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        yield session


KEK = bytes(range(32))


@pytest.fixture
def keyring() -> Keyring:
    return Keyring("intake", tables.keys, KEK)


@pytest.fixture
def store(keyring) -> EventStore:
    return EventStore(tables.store_tables, source="/services/intake", topic="intake.events.v1", sealer=keyring)


def erase(session, keyring, captive_id: str = CAPTIVE) -> None:
    assert keyring.erase(session, captive_id, event_id="erasure", erased_at=utc_now())


def registered(captive_id: str = CAPTIVE) -> CaptiveRegistered:
    body = registration(surname=f"김{CANARY}", romanised=f"Kim {CANARY}")
    body["capture"]["place"] = f"{CANARY} village"
    return CaptiveRegistered(captive_id=captive_id, **body)


def append(session, store, payload, version):
    [envelope] = store.append(session, payload.captive_id, version, [payload], EventMetadata(actor="a", agency="b"))
    return envelope


def stored_rows(session) -> list[str]:
    events = tables.store_tables.events
    return list(session.execute(sa.select(events.c.envelope).order_by(events.c.position)).scalars())


def test_identity_values_are_stored_sealed_and_intake_opens_them_with_the_key(session, store, keyring):
    payload = registered()
    append(session, store, payload, 0)
    append(session, store, MovementRecorded(captive_id=CAPTIVE, kind="ARRIVED_AT_CAMP", location=f"Camp {CANARY}"), 1)

    raw = stored_rows(session)
    assert all(CANARY not in row for row in raw)  # not in clear in what is stored and published
    data = orjson.loads(raw[0])["data"]
    assert data["capture"] == {"captured_at": "2025-01-11T09:00:00Z"}  # status and disposition need it
    assert data["claimed_affiliation"] == "INTEGRATED_IN_COBELLIGERENT_FORCES" and "surname" not in data
    assert data["sealed"]["algorithm"] == "AES-256-GCM" and "capture.place" in data["sealed"]["paths"]
    # the chain covers the ciphertext: the next event commits to the sealed bytes
    assert orjson.loads(raw[1])["prevhash"] == event_hash(raw[0].encode())

    # a reader without the key (status, disposition) gets a valid event with the marker
    seen = decode(raw[0].encode()).payload
    assert seen.surname == SEALED and seen.capture.place == SEALED
    assert seen.capture.captured_at == payload.capture.captured_at and seen.nationality == "KP"

    # intake opens them
    opened = keyring.open(session, store.read_stream(session, CAPTIVE))
    assert opened[0].event.payload == payload
    assert opened[0].envelope.data["surname"]["romanised"] == f"Kim {CANARY}"
    assert opened[1].event.payload.location == f"Camp {CANARY}"


def test_once_the_key_is_destroyed_the_values_are_erased_and_no_new_identity_is_accepted(session, store, keyring):
    append(session, store, registered(), 0)
    erase(session, keyring)

    [opened] = keyring.open(session, store.read_stream(session, CAPTIVE))
    assert opened.event.payload.surname == ERASED and opened.event.payload.capture.place == ERASED
    assert opened.envelope.data["surname"] == {"withheld": "erased"}
    assert CANARY not in orjson.dumps(opened.envelope.data).decode()

    amendment = IdentityAmended(
        captive_id=CAPTIVE, field="rank", previous=ERASED, current={"answer": "GIVEN", "value": "x"}, reason="r"
    )
    with pytest.raises(keys.IdentityWasErased, match="was erased"):
        append(session, store, amendment, 1)
    # a fact with nothing identifying in it is still recorded (custody goes on)
    released = append(session, store, MovementRecorded(captive_id=CAPTIVE, kind="RELEASED"), 1)
    assert "sealed" not in released.data


def test_each_captive_has_his_own_key_and_a_ciphertext_opens_only_in_its_own_event(session, store, keyring):
    first = append(session, store, registered(), 0)
    append(session, store, registered("CAP-0000-0000-0002"), 0)
    rows = session.execute(sa.select(tables.captive_keys.c.key)).scalars().all()
    assert len(rows) == 2 and rows[0] != rows[1] and all(len(key) == 61 for key in rows)  # wrapped

    moved = store.read_stream(session, "CAP-0000-0000-0002")[0].event
    forged = moved.envelope.model_copy(update={"data": {**moved.envelope.data, "sealed": first.data["sealed"]}})
    with pytest.raises(keys.SealBroken, match="do not open"):
        keyring.open(session, [decode(orjson.dumps(forged.model_dump(mode="json")))])

    block = dict(first.data["sealed"])
    block["ciphertext"] = block["ciphertext"][:-4] + ("AAAA" if block["ciphertext"][-4:] != "AAAA" else "BBBB")
    tampered = first.model_copy(update={"data": {**first.data, "sealed": block}})
    with pytest.raises(keys.SealBroken):
        keyring.open(session, [decode(orjson.dumps(tampered.model_dump(mode="json")))])


def test_a_sealed_block_cannot_withhold_a_reference_field():
    payload = registered()
    data = payload.model_dump(mode="json")
    data["sealed"] = {"algorithm": "AES-256-GCM", "nonce": "", "ciphertext": "", "paths": ["claimed_affiliation"]}
    envelope = {
        "specversion": "1.0",
        "id": "e1",
        "source": "/services/intake",
        "type": "CaptiveRegistered",
        "subject": CAPTIVE,
        "time": "2025-01-11T09:00:00Z",
        "recordedat": "2025-01-11T09:00:00Z",
        "streamversion": 1,
        "schemaversion": 1,
        "correlationid": "c",
        "actor": "a",
        "agency": "b",
        "data": data,
    }
    with pytest.raises(InvalidEvent, match="claimed_affiliation"):
        decode(orjson.dumps(envelope))
    envelope["data"]["sealed"] = {"paths": "surname"}
    with pytest.raises(InvalidEvent, match="paths"):
        decode(orjson.dumps(envelope))


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (RegistrationRequest, {**registration(), "surname": {"withheld": "sealed"}}, "surname"),
        (
            RegistrationRequest,
            {**registration(), "capture": {**registration()["capture"], "place": {"withheld": "erased"}}},
            "capture.place",
        ),
        (MovementRequest, {"kind": "ARRIVED_AT_CAMP", "location": {"withheld": "sealed"}}, "location"),
        (IcrcVisitRequest, {"delegate": "D", "place": {"withheld": "erased"}, "private_interview": True}, "place"),
        (
            RegistrationRequest,
            {**registration(), "armed_force": {"force": "KPA", "basis": {"withheld": "sealed"}}},
            "armed_force.basis",
        ),
        (ForceMembershipRequest, {"force": "KPA", "basis": {"withheld": "sealed"}}, "basis"),
        (MovementRequest, {"kind": "DIED", "death_certificate": {"withheld": "sealed"}}, "death_certificate"),
        (
            ProsecutionRequest,
            {"proceedings_id": "P", "stage": "OPENED", "court": "C", "offence": {"withheld": "erased"}},
            "offence",
        ),
        (
            MediaExposureRequest,
            {"kind": "IMAGES_PUBLISHED", "outlet": "TV", "details": {"withheld": "sealed"}},
            "details",
        ),
    ],
)
def test_a_client_cannot_send_the_withheld_marker(model, body, field):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    [error] = caught.value.errors()
    assert error["loc"] == tuple(field.split("."))  # a part of the capture is checked where it is
    assert f"{field.rpartition('.')[2]}: `withheld` marks data the service does not show" in error["msg"]
    assert isinstance(Withheld.model_validate({"withheld": "sealed"}), Withheld)  # events still accept it


def test_the_identity_parts_of_the_new_facts_are_sealed_opened_and_erased(session, store, keyring):
    """Each new identity-tier value (the basis of a force membership, at registration and later;
    a death certificate; the offence and outcome of proceedings; what a media exposure showed)
    is ciphertext on the topic, opened by intake, and erased with the key; the reference parts
    (which force, which stage, which kind of exposure) stay in clear for status and disposition."""
    body = registration(surname=f"김{CANARY}")
    body["armed_force"] = {"force": "Korean People's Army", "force_state": "KP", "basis": f"papers {CANARY}"}
    facts = [
        CaptiveRegistered(captive_id=CAPTIVE, **body),
        ForceMembershipRecorded(captive_id=CAPTIVE, force="Korean People's Army", basis=f"said so {CANARY}"),
        ProsecutionRecorded(
            captive_id=CAPTIVE, proceedings_id="P-1", stage="OPENED", court="Court", offence=f"charge {CANARY}"
        ),
        MediaExposureRecorded(captive_id=CAPTIVE, kind="IMAGES_PUBLISHED", outlet="TV", details=f"face {CANARY}"),
        MovementRecorded(
            captive_id=CAPTIVE,
            kind="DIED",
            death_certificate={"certificate_ref": f"DC {CANARY}", "issued_by": "Dr. B", "cause": CANARY},
        ),
    ]
    for version, payload in enumerate(facts):
        append(session, store, payload, version)
    raw = stored_rows(session)
    assert all(CANARY not in row for row in raw)

    seen = [decode(row.encode()).payload for row in raw]  # what status and disposition get
    assert seen[0].armed_force.force_state == "KP" and seen[0].armed_force.basis == SEALED
    assert seen[1].force == "Korean People's Army" and seen[1].basis == SEALED
    assert seen[2].stage == "OPENED" and seen[2].offence == SEALED
    assert seen[3].kind == "IMAGES_PUBLISHED" and seen[3].details == SEALED
    assert seen[4].kind == "DIED" and seen[4].death_certificate == SEALED
    assert orjson.loads(raw[0])["data"]["armed_force"] == {
        "force": "Korean People's Army",
        "force_state": "KP",
        "integrated_in_forces_of": None,
    }

    opened = [item.event.payload for item in keyring.open(session, store.read_stream(session, CAPTIVE))]
    assert opened == facts

    erase(session, keyring)
    erased = [item.event.payload for item in keyring.open(session, store.read_stream(session, CAPTIVE))]
    assert erased[0].armed_force.basis == ERASED and erased[0].armed_force.force == "Korean People's Army"
    assert (erased[1].basis, erased[2].offence, erased[3].details, erased[4].death_certificate) == (ERASED,) * 4
    assert erased[2].court == "Court"


def test_a_registration_without_a_force_membership_seals_no_path_through_it(session, store):
    envelope = append(session, store, registered(), 0)
    assert envelope.data["armed_force"] is None
    assert not any(path.startswith("armed_force") for path in envelope.data["sealed"]["paths"])
    assert decode(stored_rows(session)[0].encode()).payload.armed_force is None
