"""B10: what signing records costs (shared/evidence/signing.py): CPU per event for the relay to sign one
and for a reader (a consumer, replay, `captives audit verify`) to check its signature, side by side
with what a consumer already spends on every record before signatures: decoding it and hashing its
bytes for its stream's chain. Registrations as intake publishes them, one process, no broker: the
figures are the signature's own cost, which every record pays once per publisher and once per
reader."""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.harness import Harness
from bench.results import BenchResult
from bench.samples import envelope, registration_body
from shared.contracts import decode, encode
from shared.contracts.intake import CaptiveRegistered
from shared.evidence import chain, signing

ID = "B10"
TITLE = "Record signatures: CPU per event to sign and to verify, beside decoding and hashing it"
SIZES = {"quick": {"events": 5_000}, "full": {"events": 50_000}}
TOPIC = "bench.intake.events.v1"


def cpu_per_event_us(values: list[bytes], work: Callable[[bytes], object]) -> float:
    started = time.process_time()
    for value in values:
        work(value)
    return (time.process_time() - started) / len(values) * 1e6


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    events = sizes["events"]
    values = [
        encode(envelope(CaptiveRegistered(captive_id=f"CAP-B10{n:05d}", **registration_body()), f"CAP-B10{n:05d}"))
        for n in range(events)
    ]
    result.sizes["event_bytes"] = sum(map(len, values)) // len(values)
    key = Ed25519PrivateKey.generate()
    signer = signing.Signer(key)
    signing.ensure_pinned(harness.workdir / "b10-pins", "intake", key)
    pins = signing.PinnedKeys(harness.workdir / "b10-pins", {TOPIC: "intake"})
    headers = {value: [signer.header(value)] for value in values[:100]}  # warm both paths
    for value, header in headers.items():
        pins.refusal(TOPIC, value, header)
    headers = {value: [signer.header(value)] for value in values}

    baseline = cpu_per_event_us(values, lambda value: (decode(value), chain.event_hash(value)))
    sign = cpu_per_event_us(values, signer.header)
    verify = cpu_per_event_us(values, lambda value: pins.refusal(TOPIC, value, headers[value]))
    if any(pins.refusal(TOPIC, value, headers[value]) is not None for value in values[:100]):
        raise AssertionError("a signature made here did not verify")
    result.add("decode and hash (before signatures)", baseline, "µs CPU/event", digits=1)
    result.add("sign (relay)", sign, "µs CPU/event", digits=1, ratio=sign / baseline, ratio_to="decode and hash")
    result.add(
        "verify (each reader)", verify, "µs CPU/event", digits=1, ratio=verify / baseline, ratio_to="decode and hash"
    )
    result.notes.append(
        f"{result.sizes['event_bytes']:,}-byte registrations. Per event published and read once, signatures add "
        f"{sign + verify:.0f} µs of CPU ({(sign + verify) / baseline:.2f}× decoding and hashing it)."
    )
