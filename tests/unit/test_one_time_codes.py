"""The one-time codes the project's own callers compute for a person (shared/auth/one_time_codes.py):
Keycloak's key, each step spent once by every process sharing a ledger, a wait when both the
current and the next step are spent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

from shared.auth.one_time_codes import PERIOD_S, OneTimeCodes, authenticator_key


class Clock:
    def __init__(self, now: float):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def rfc6238(secret: str, step: int) -> str:
    """RFC 6238 by hand, keyed as Keycloak keys it: the UTF-8 bytes of the secret it keeps."""
    digest = hmac.new(secret.encode(), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**6:06d}"


def test_the_authenticator_key_is_the_kept_secret_s_bytes_in_base32():
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert base64.b32decode(authenticator_key(secret) + "=" * (-len(authenticator_key(secret)) % 8)) == secret.encode()


def test_a_code_is_never_given_twice_and_the_third_in_a_step_waits_for_the_next(tmp_path):
    secret = "S" * 32
    clock = Clock(1_000 * PERIOD_S + 3.0)
    codes = OneTimeCodes("c.favre", secret, None, clock=clock, sleep=clock.sleep)
    first, second = codes.next_code(), codes.next_code()
    assert (first, second) == (rfc6238(secret, 1_000), rfc6238(secret, 1_001))
    assert clock.slept == []
    third = codes.next_code()
    assert third == rfc6238(secret, 1_002) and clock.slept and 1_001 * PERIOD_S <= clock.now < 1_001 * PERIOD_S + 1


def test_processes_sharing_a_ledger_file_never_spend_the_same_step(tmp_path):
    ledger = tmp_path / "credentials.json.codes-spent"
    clock = Clock(2_000 * PERIOD_S)
    one = OneTimeCodes("m.shevchenko", "A" * 32, ledger, clock=clock, sleep=clock.sleep)
    other = OneTimeCodes("m.shevchenko", "A" * 32, ledger, clock=clock, sleep=clock.sleep)
    assert one.next_code() != other.next_code()
    assert ledger.stat().st_mode & 0o777 == 0o600
    # Another person's steps are his own.
    assert OneTimeCodes("c.favre", "B" * 32, ledger, clock=clock, sleep=clock.sleep).next_code() == rfc6238(
        "B" * 32, 2_000
    )


def test_a_torn_ledger_is_started_again(tmp_path):
    ledger = tmp_path / "ledger"
    ledger.write_text("{not json")
    clock = Clock(3_000 * PERIOD_S)
    assert OneTimeCodes("x", "C" * 32, ledger, clock=clock, sleep=clock.sleep).next_code() == rfc6238("C" * 32, 3_000)
