"""A person's time-based one-time codes (RFC 6238), for the project's own callers that sign a
person in: the demo, the `captives` command line, the benchmarks and the tests. The services
never see a code; they only read from the token that one was used (shared/auth/gate.py).

The identity provider accepts each code once (RFC 6238 section 5.2; Keycloak's
`otpPolicyCodeReusable` is false) and, besides the current 30 s step's, the previous and the next
step's. So a caller that signs the same person in twice within a step must use the next step's
code, and a third time must wait for the step to turn; a code used twice is a failed sign-in,
which counts towards the person's lockout. The steps spent are kept in a ledger file shared by
every process that reads one credentials file (locked while it is read and written), so two
processes never spend the same code.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyotp

from shared.platform.private_files import private_directory

PERIOD_S = 30
DIGITS = 6
AHEAD = 1  # steps the identity provider accepts after the current one (Keycloak's look-around)

_in_process: dict[str, int] = {}  # the ledger of callers that have no file
_in_process_lock = threading.Lock()


def authenticator_key(secret: str) -> str:
    """The base32 key an authenticator app takes: Keycloak keys the HMAC with the UTF-8 bytes of
    the secret it keeps, not with the secret read as base32."""
    return base64.b32encode(secret.encode()).decode().rstrip("=")


def new_secret() -> str:
    """A secret of 160 bits and more (RFC 4226 section 4), in characters Keycloak keeps as they are."""
    return pyotp.random_base32(32)


@dataclass
class OneTimeCodes:
    """The codes of one person: `secret` is what the identity provider keeps as his credential."""

    who: str
    secret: str = field(repr=False)
    ledger: Path | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def next_code(self) -> str:
        """A code no caller sharing the ledger has used, waiting for the step to turn if the
        current and the next step's codes are both spent."""
        while True:
            now = self.clock()
            current = int(now // PERIOD_S)
            step = self._spend(current)
            if step is not None:
                return pyotp.TOTP(authenticator_key(self.secret), digits=DIGITS, interval=PERIOD_S).at(step * PERIOD_S)
            self.sleep((current + 1) * PERIOD_S - now + 0.05)

    def _spend(self, current: int) -> int | None:
        """The first step not spent of the current and the next ones, now marked spent."""
        with self._ledger() as spent:
            step = max(current, spent.get(self.who, current - 1) + 1)
            if step > current + AHEAD:
                return None
            spent[self.who] = step
            return step

    def _ledger(self):
        return _FileLedger(self.ledger) if self.ledger is not None else _MemoryLedger()


class _MemoryLedger:
    def __enter__(self) -> dict[str, int]:
        _in_process_lock.acquire()
        return _in_process

    def __exit__(self, *exc) -> None:
        _in_process_lock.release()


class _FileLedger:
    """The ledger file, locked for the time of one read and write (0600: it names persons)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> dict[str, int]:
        private_directory(self.path.parent)
        self.descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(self.descriptor, 0o600)
        fcntl.flock(self.descriptor, fcntl.LOCK_EX)
        text = os.read(self.descriptor, 1 << 20).decode() or "{}"
        try:
            self.spent = {who: int(step) for who, step in json.loads(text).items()}
        except (ValueError, AttributeError):
            self.spent = {}  # a torn or foreign file: start again
        return self.spent

    def __exit__(self, *exc) -> None:
        try:
            os.lseek(self.descriptor, 0, os.SEEK_SET)
            os.ftruncate(self.descriptor, 0)
            os.write(self.descriptor, json.dumps(self.spent).encode())
        finally:
            os.close(self.descriptor)  # closing releases the lock
