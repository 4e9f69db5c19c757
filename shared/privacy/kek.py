"""The key-encryption key (KEK) that wraps each captive's key at rest: from an environment secret or a
private file, created on first use; a copy of a database file alone decrypts nothing."""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

import structlog

from shared.platform.private_files import private_directory

log = structlog.get_logger(__name__)

KEY_BYTES = 32


class KekError(RuntimeError):
    """The key-encryption key is missing, malformed, too widely readable, or not the one the
    keys were wrapped with: the service refuses to start (or to read keys) rather than guess."""


# -- the key-encryption key ---------------------------------------------------------------------


def kek_path(configured: str, service: str) -> Path:
    return Path(configured or f"var/keys/{service}.kek")


def load_kek(*, secret: str | None, path: Path, create: bool = True) -> bytes:
    """The KEK: from `secret` (base64 of 32 bytes) when given, else from `path` (created with
    O_EXCL and mode 0600 when absent and `create`). Raises KekError."""
    if secret:
        return _decode_kek(secret, "the KEK secret")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if not create:
            raise KekError(f"no key-encryption key at {path}") from None
        return _create_kek(path)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KekError(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}): a key-encryption key must be "
            f"mode 0600 (chmod 600 {path})"
        )
    return _decode_kek(path.read_text(), str(path))


def _create_kek(path: Path) -> bytes:
    private_directory(path.parent)
    kek = os.urandom(KEY_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another instance created it meanwhile: use that one
        return load_kek(secret=None, path=path, create=False)
    with os.fdopen(descriptor, "w") as file:
        file.write(base64.b64encode(kek).decode() + "\n")
    log.info("key-encryption key created", path=str(path))
    return kek


def _decode_kek(text: str, where: str) -> bytes:
    try:
        kek = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KekError(f"{where} is not base64") from None
    if len(kek) != KEY_BYTES:
        raise KekError(f"{where} holds {len(kek)} bytes; a key-encryption key is {KEY_BYTES} bytes (base64)")
    return kek


def new_kek_text() -> str:
    """A fresh KEK as `<SERVICE>_KEK` takes it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def ensure_kek_env_file(path: Path, service: str) -> bool:
    """An env file holding `<SERVICE>_KEK=<fresh KEK>` (mode 0600, in a 0700 directory) for a
    container's environment (docker-compose.yml's `env_file`); an existing one is kept, since a
    new KEK would leave every wrapped key undecryptable. Whether it was created now."""
    private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(f"{service.upper()}_KEK={new_kek_text()}\n")
    return True
