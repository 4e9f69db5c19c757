"""Tamper evidence, part three: every record a service publishes is signed with its own key.

The hash chains (shared/evidence/chain.py) prove order and completeness; the broker's ACLs decide who may
write a topic. Neither proves who wrote a record: with a service's Kafka password alone, a record
whose `prevhash` is the true hash of the one before was applied downstream. So the relay signs
each record's exact bytes with its service's Ed25519 key (header `signature`: the key id and the
signature), and every reader of a topic (the consumers, replay, `captives audit verify`) checks
it against the keys pinned for the topic's publisher. A record that is unsigned, signed with a key
not pinned for its publisher, or whose signature does not hold is set aside exactly as a record
that breaks its chain: dead-lettered, never applied, its captive's later records parked behind it.

The key: the service's checkpoint key (shared/evidence/checkpoints.py signs with it too), kept as PKCS #8
encrypted with the service's key-encryption key, so a copy of the file alone signs nothing (the
KEK wraps the captive keys the same way). It is created on first use, beside the KEK.

The pins: `<pins dir>/<service>.pub`, the public keys (PEM, one after another) a service's
records may be signed with, oldest first. A service pins its own key when it creates it (nothing
to compare it with yet) and refuses to start with a key that its pin file, once there, does not
name. `captives keys rotate <service>` makes a new key and appends it: history stays signed with
the old one, which stays pinned, so nothing is rewritten; readers meeting a key id they do not
know read the pins again before refusing the record. Without any pin file for a publisher, a
reader cannot tell a good record from a forged one: it waits (and says so) rather than guess."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.platform.private_files import private_directory

HEADER = "signature"
# What is signed: this label, then the record's value. The label keeps a record signature from
# ever being taken for a checkpoint's, or the reverse, though the key is the same.
DOMAIN = b"captives record v1\x00"
PIN_SUFFIX = ".pub"
# A header the size of any record signature (key id, colon, base64 of 64 bytes), for measuring a
# record against the broker's limit before it is signed.
SIGNATURE_OF_ITS_SIZE = (HEADER, b"k" * 16 + b":" + b"s" * 88)
REREAD_PINS_AFTER_S = 5.0  # an unknown key id reads the pins again, at most this often


class SigningKeyError(RuntimeError):
    """The service's signing key cannot be used: unreadable with its KEK, or not pinned."""


class NoPins(RuntimeError):
    """No key is pinned for a publisher: nothing it wrote can be told from a forgery yet."""


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16]


# -- the service's own key ------------------------------------------------------------------------


def load_or_create_key(path: Path, kek: bytes) -> Ed25519PrivateKey:
    """The service's signing key at `path`, encrypted with `kek`; created (0600, O_EXCL) when
    absent. A key stored in clear before wrapping began is read, then written back wrapped."""
    try:
        stored = path.read_bytes()
    except FileNotFoundError:
        return _create(path, kek)
    try:
        key = serialization.load_pem_private_key(stored, password=kek)
    except TypeError:  # stored in clear (before wrapping began): wrap it now
        key = serialization.load_pem_private_key(stored, password=None)
        _write(path, key, kek, replace=True)
    except ValueError:
        raise SigningKeyError(f"{path} does not open with this service's key-encryption key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds no Ed25519 key")
    return key


def _create(path: Path, kek: bytes) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    try:
        _write(path, key, kek, replace=False)
    except FileExistsError:  # another instance created it meanwhile: use that one
        return load_or_create_key(path, kek)
    return key


def _write(path: Path, key: Ed25519PrivateKey, kek: bytes, *, replace: bool) -> None:
    private_directory(path.parent)
    wrapped = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(kek)
    )
    target = path.with_name(path.name + ".new") if replace else path
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(wrapped)
    if replace:
        os.replace(target, path)


class Signer:
    """Signs what one service publishes."""

    def __init__(self, key: Ed25519PrivateKey):
        self.key = key
        self.key_id = key_id(key.public_key())
        self._prefix = self.key_id.encode() + b":"

    def header(self, value: bytes) -> tuple[str, bytes]:
        return HEADER, self._prefix + base64.b64encode(self.key.sign(DOMAIN + value))


# -- the pins ----------------------------------------------------------------------------------


def pin_path(pins_dir: Path, publisher: str) -> Path:
    return pins_dir / f"{publisher}{PIN_SUFFIX}"


def read_pins(pins_dir: Path, publisher: str) -> dict[str, Ed25519PublicKey] | None:
    """The keys pinned for `publisher` by key id (None: no pin file)."""
    try:
        text = pin_path(pins_dir, publisher).read_bytes()
    except FileNotFoundError:
        return None
    keys = {}
    for block in text.split(b"-----END PUBLIC KEY-----"):
        if b"-----BEGIN PUBLIC KEY-----" not in block:
            continue
        public = serialization.load_pem_public_key(block + b"-----END PUBLIC KEY-----\n")
        if isinstance(public, Ed25519PublicKey):
            keys[key_id(public)] = public
    return keys


def pin(pins_dir: Path, publisher: str, public: Ed25519PublicKey) -> bool:
    """Append `public` to `publisher`'s pins (created 0600 in a 0700 folder); whether it was new."""
    if key_id(public) in (read_pins(pins_dir, publisher) or {}):
        return False
    private_directory(pins_dir)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    descriptor = os.open(pin_path(pins_dir, publisher), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "ab") as file:
        file.write(pem)
    return True


def ensure_pinned(pins_dir: Path, publisher: str, key: Ed25519PrivateKey) -> None:
    """A service's own key must be among its pins: pinned now when it has none (its first start),
    refused when its pins name other keys only (SigningKeyError: what it signed would be refused)."""
    pinned = read_pins(pins_dir, publisher)
    if pinned is None:
        pin(pins_dir, publisher, key.public_key())
    elif key_id(key.public_key()) not in pinned:
        raise SigningKeyError(
            f"the signing key of {publisher} ({key_id(key.public_key())}) is not among its pinned keys "
            f"{sorted(pinned)} in {pin_path(pins_dir, publisher)}: every record it signed would be refused. "
            f"A new key is pinned by `captives keys rotate {publisher}`."
        )


def rotate(path: Path, kek: bytes, pins_dir: Path, service: str) -> tuple[str, str]:
    """A new signing key for `service` in place of the one at `path`, pinned before it replaces
    it (readers accept it before anything is signed with it); the old key stays pinned, so what it
    signed still verifies and nothing is rewritten. Returns the old and the new key ids."""
    old = load_or_create_key(path, kek)
    ensure_pinned(pins_dir, service, old)
    new = Ed25519PrivateKey.generate()
    pin(pins_dir, service, new.public_key())
    _write(path, new, kek, replace=True)
    return key_id(old.public_key()), key_id(new.public_key())


# -- checking a record -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a record's signature does not hold (its reason goes on the dead letter)."""

    reason: str

    def __str__(self) -> str:
        return self.reason


class PinnedKeys:
    """The pinned keys of every publisher a reader reads (`publishers`: topic -> service)."""

    def __init__(self, pins_dir: Path, publishers: Mapping[str, str]):
        self.pins_dir = pins_dir
        self.publishers = dict(publishers)
        self._keys: dict[str, dict[str, Ed25519PublicKey]] = {}
        self._read_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def keys_of(self, publisher: str, *, unknown: str | None = None) -> dict[str, Ed25519PublicKey]:
        """`publisher`'s pinned keys, read again when `unknown` (a key id) is not among them and
        they were not read in the last few seconds. Raises NoPins when it has none."""
        with self._lock:
            keys = self._keys.get(publisher)
            stale = keys is None or (
                unknown is not None
                and unknown not in keys
                and time.monotonic() - self._read_at.get(publisher, 0.0) > REREAD_PINS_AFTER_S
            )
            if stale:
                keys = read_pins(self.pins_dir, publisher)
                self._read_at[publisher] = time.monotonic()
                if keys is None:
                    raise NoPins(
                        f"no key is pinned for {publisher} ({pin_path(self.pins_dir, publisher)} is missing): "
                        "its records cannot be told from forgeries"
                    )
                self._keys[publisher] = keys
            return keys

    def refusal(self, topic: str, value: bytes | None, headers: Iterable[tuple[str, bytes]] | None) -> Refusal | None:
        """None when the record was signed by its topic's publisher with a pinned key; otherwise
        why not. Raises NoPins when nothing is pinned for the publisher (wait, do not refuse)."""
        publisher = self.publishers.get(topic)
        if publisher is None:
            return Refusal(f"{topic} has no known publisher: nothing can vouch for its records")
        signature = next((raw for name, raw in headers or () if name == HEADER), None)
        if signature is None:
            return Refusal(f"unsigned: no record on {topic} is {publisher}'s unless its key signed it")
        kid, _, encoded = signature.partition(b":")
        kid_text = kid.decode("ascii", "replace")[:32]
        public = self.keys_of(publisher, unknown=kid_text).get(kid_text)
        if public is None:
            return Refusal(f"signed with key {kid_text!r}, which is not pinned for {publisher}: forged")
        try:
            public.verify(base64.b64decode(encoded, validate=True), DOMAIN + (value or b""))
        except (InvalidSignature, binascii.Error, ValueError):
            return Refusal(f"its signature by {publisher}'s key {kid_text} does not hold: forged or altered")
        return None
