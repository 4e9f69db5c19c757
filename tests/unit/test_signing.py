"""Records signed by the service that wrote them (shared/evidence/signing.py): the key is kept wrapped with
the service's KEK, pinned on first use, and a reader refuses whatever its topic's publisher did
not sign with a pinned key, unsigned, signed by another service, or altered after signing."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.evidence import signing

KEK, OTHER_KEK = os.urandom(32), os.urandom(32)
TOPIC = "p.intake.events.v1"
VALUE = b'{"specversion": "1.0", "type": "CaptiveRegistered"}'


def test_the_key_is_created_once_private_and_wrapped_with_the_kek(tmp_path):
    path = tmp_path / "keys" / "intake.pem"
    first = signing.load_or_create_key(path, KEK)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    with pytest.raises(TypeError):  # a copy of the file alone opens nothing
        serialization.load_pem_private_key(path.read_bytes(), password=None)
    again = signing.load_or_create_key(path, KEK)
    assert again.public_key().public_bytes_raw() == first.public_key().public_bytes_raw()
    with pytest.raises(signing.SigningKeyError, match="does not open"):
        signing.load_or_create_key(path, OTHER_KEK)


def test_a_key_kept_in_clear_before_wrapping_began_is_wrapped_when_read(tmp_path):
    path, key = tmp_path / "status.pem", Ed25519PrivateKey.generate()
    clear = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(clear)
    path.chmod(0o600)
    loaded = signing.load_or_create_key(path, KEK)
    assert loaded.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_service_pins_its_first_key_and_refuses_to_sign_with_another(tmp_path):
    pins, first, other = tmp_path / "pinned", Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signing.ensure_pinned(pins, "intake", first)
    assert set(signing.read_pins(pins, "intake")) == {signing.key_id(first.public_key())}
    assert oct(signing.pin_path(pins, "intake").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(signing.SigningKeyError, match="not among its pinned keys"):
        signing.ensure_pinned(pins, "intake", other)
    signing.ensure_pinned(pins, "intake", first)  # its own key: fine


@pytest.fixture
def keys(tmp_path):
    intake, status = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signing.ensure_pinned(tmp_path, "intake", intake)
    signing.ensure_pinned(tmp_path, "status", status)
    return signing.PinnedKeys(tmp_path, {TOPIC: "intake"}), intake, status


def test_a_record_its_publisher_signed_holds(keys):
    pins, intake, _ = keys
    assert pins.refusal(TOPIC, VALUE, [("traceparent", b"00-x"), signing.Signer(intake).header(VALUE)]) is None


def test_an_unsigned_record_is_refused(keys):
    pins, _, _ = keys
    assert "unsigned" in str(pins.refusal(TOPIC, VALUE, [("traceparent", b"00-x")]))
    assert "unsigned" in str(pins.refusal(TOPIC, VALUE, None))


def test_a_record_signed_by_another_service_is_refused(keys):
    pins, _, status = keys
    refusal = pins.refusal(TOPIC, VALUE, [signing.Signer(status).header(VALUE)])
    assert "not pinned for intake: forged" in str(refusal)


def test_a_record_altered_after_signing_or_with_a_garbled_signature_is_refused(keys):
    pins, intake, _ = keys
    header = signing.Signer(intake).header(VALUE)
    assert "does not hold" in str(pins.refusal(TOPIC, VALUE.replace(b"Registered", b"Released"), [header]))
    kid = header[1].split(b":")[0]
    assert "does not hold" in str(pins.refusal(TOPIC, VALUE, [("signature", kid + b":not base64!")]))
    assert "does not hold" in str(pins.refusal(TOPIC, VALUE, [("signature", kid + b":" + b"A" * 88)]))
    # Claiming the real key id does not make another key's signature hold.
    forged = signing.Signer(Ed25519PrivateKey.generate()).header(VALUE)[1].split(b":")[1]
    assert "does not hold" in str(pins.refusal(TOPIC, VALUE, [("signature", kid + b":" + forged)]))


def test_a_checkpoint_signature_is_never_taken_for_a_record_signature(keys):
    pins, intake, _ = keys
    kid = signing.Signer(intake).key_id.encode()
    bare = base64.b64encode(intake.sign(VALUE))  # what a checkpoint's signature over these bytes would be
    assert "does not hold" in str(pins.refusal(TOPIC, VALUE, [("signature", kid + b":" + bare)]))


def test_a_topic_without_a_pinned_publisher_waits_and_one_without_a_publisher_is_refused(tmp_path):
    pins = signing.PinnedKeys(tmp_path, {TOPIC: "intake"})
    with pytest.raises(signing.NoPins, match="no key is pinned for intake"):
        pins.refusal(TOPIC, VALUE, [signing.Signer(Ed25519PrivateKey.generate()).header(VALUE)])
    assert "no known publisher" in str(pins.refusal("p.other.v1", VALUE, []))


def test_after_a_rotation_both_keys_hold_and_readers_learn_the_new_one_without_a_restart(keys, tmp_path, monkeypatch):
    pins, old, _ = keys
    monkeypatch.setattr(signing, "REREAD_PINS_AFTER_S", 0.0)
    assert pins.refusal(TOPIC, VALUE, [signing.Signer(old).header(VALUE)]) is None  # pins read now
    new = Ed25519PrivateKey.generate()
    assert signing.pin(tmp_path, "intake", new.public_key())
    assert not signing.pin(tmp_path, "intake", new.public_key())  # pinned once
    assert pins.refusal(TOPIC, VALUE, [signing.Signer(new).header(VALUE)]) is None
    assert pins.refusal(TOPIC, VALUE, [signing.Signer(old).header(VALUE)]) is None  # history still holds


def test_rotate_pins_the_new_key_keeps_the_old_one_pinned_and_replaces_the_key_file(tmp_path):
    path, pins = tmp_path / "intake.pem", tmp_path / "pinned"
    old = signing.load_or_create_key(path, KEK)
    signing.ensure_pinned(pins, "intake", old)
    old_id, new_id = signing.rotate(path, KEK, pins, "intake")
    assert old_id == signing.key_id(old.public_key()) and new_id != old_id
    assert list(signing.read_pins(pins, "intake")) == [old_id, new_id]  # oldest first
    new = signing.load_or_create_key(path, KEK)
    assert signing.key_id(new.public_key()) == new_id
    signing.ensure_pinned(pins, "intake", new)  # the restarted service starts with it
    assert oct(path.stat().st_mode & 0o777) == "0o600"
