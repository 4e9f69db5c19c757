"""The load of a chaos run and the history it leaves: every write carries a unique marker (its
`op`), sent as its Idempotency-Key and as its X-Correlation-ID, so it lands in the event the
write appends (`correlationid`) and in every event that one causes downstream; every answer is
recorded, acknowledged or not.

Each writer owns its captives and writes to each in turn (register, then ICRC visits and wishes
based on the version the last answer gave), so the order of one captive's acknowledged writes
is known exactly and the checker can tell a reordering. A write that gets no answer (the
service was killed mid-request) is retried with the same Idempotency-Key, so it is applied at
most once whatever happened to the first attempt; the retries are bounded in count and time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.support import DELEGATE, registration, signed_in

STATES = ("KR", "DE", "CA")  # the third states the wishes alternate between
PROVENANCE = {
    "interviewer": "ICRC delegate",
    "interviewer_agency": "ICRC",
    "interpreter": "Korean interpreter",
    "setting": "PRIVATE_ICRC_INTERVIEW",
    "free_and_informed": True,
}


@dataclass
class Write:
    op: str  # the unique value this write carries
    kind: str  # register | visit | wish
    captive_id: str | None = None
    state: str | None = None  # the wish's third state
    status: int | None = None  # the final answer; None: never answered
    event_id: str | None = None
    version: int | None = None
    attempts: int = 0

    @property
    def acknowledged(self) -> bool:
        return self.status in (200, 201)


@dataclass
class History:
    writes: list[Write] = field(default_factory=list)
    server_errors: Counter = field(default_factory=Counter)  # (status, kind of write) -> count
    # 503s: the database was down (the PostgreSQL fault); retried like a dropped connection.
    unavailable: Counter = field(default_factory=Counter)  # kind of write -> count
    # Records put on intake's topic that no consumer may apply (the poison fault): their bytes,
    # and the event id each claims (None: not an event at all).
    injected: dict[bytes, str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, value: bytes, event_id: str | None) -> None:
        with self.lock:
            self.injected[value] = event_id

    def add(self, write: Write) -> None:
        with self.lock:
            self.writes.append(write)

    def server_error(self, status: int, kind: str) -> None:
        with self.lock:
            if status == 503:
                self.unavailable[kind] += 1
            else:
                self.server_errors[(status, kind)] += 1

    def acknowledged(self) -> list[Write]:
        with self.lock:
            return [write for write in self.writes if write.acknowledged]


TRICKLE_S = 1.0  # between captives once a writer has written its share, while faults go on


class Writer(threading.Thread):
    """Registers `captives` captives and makes `follow_ups` writes to each; then, so that the
    last faults too are injected under load, goes on at a trickle (one captive a second) until
    `faults_done` is set: at most ten times as many captives in all, and never past `deadline`."""

    def __init__(
        self,
        url: str,
        history: History,
        *,
        captives: int,
        follow_ups: int,
        deadline: float,
        stop: threading.Event,
        faults_done: threading.Event,
    ):
        super().__init__(daemon=True, name="chaos-writer")
        self.client = signed_in(httpx.Client(base_url=url, timeout=15))
        self.history, self.captives, self.follow_ups = history, captives, follow_ups
        self.deadline, self.stop_requested, self.faults_done = deadline, stop, faults_done

    def run(self) -> None:
        try:
            for number in range(10 * self.captives):
                if number >= self.captives:
                    self.faults_done.wait(TRICKLE_S)
                if self._over() or (number >= self.captives and self.faults_done.is_set()):
                    return
                written = self.register()
                if written is None:
                    continue
                captive_id, version = written
                for number in range(self.follow_ups):
                    if self._over():
                        return
                    kind = "visit" if number % 2 == 0 else "wish"
                    version = self.follow_up(kind, captive_id, version, number) or version
        finally:
            self.client.close()

    def _over(self) -> bool:
        return self.stop_requested.is_set() or time.monotonic() > self.deadline

    def register(self) -> tuple[str, int] | None:
        write = Write(op=f"op-{uuid.uuid4().hex}", kind="register")
        self.history.add(write)
        answer = self.send(write, "/v1/captives", registration(), {})
        if answer is None or not write.acknowledged:
            return None
        write.captive_id = answer["captive_id"]
        return write.captive_id, write.version

    def follow_up(self, kind: str, captive_id: str, version: int, number: int) -> int | None:
        write = Write(op=f"op-{uuid.uuid4().hex}", kind=kind, captive_id=captive_id)
        if kind == "visit":
            path = f"/v1/captives/{captive_id}/icrc-visits"
            body = {"delegate": write.op, "place": "Camp No. 1", "private_interview": True}
        else:
            write.state = STATES[number % len(STATES)]
            path = f"/v1/captives/{captive_id}/wishes"
            body = {"wish": "THIRD_STATE", "third_state": write.state, "provenance": PROVENANCE}
        self.history.add(write)
        # A wish weighs (and opens a partner state's view, which the checker reads) only as the ICRC
        # delegate records it herself; visits are recorded by the operator's system.
        author = dict(DELEGATE) if kind == "wish" else {}
        answer = self.send(write, path, body, {"If-Match": f'"{version}"', **author})
        return write.version if answer is not None and write.acknowledged else None

    def send(self, write: Write, path: str, body: dict, headers: dict, *, give_up_after_s: float = 120) -> dict | None:
        """POST until answered (bounded): a dropped connection or a 5xx is retried with the
        same Idempotency-Key, so the write lands once however often it is sent."""
        headers = {**headers, **marked(write)}
        backoff, started = 0.1, time.monotonic()
        while time.monotonic() - started < give_up_after_s and not self.stop_requested.is_set():
            write.attempts += 1
            try:
                answer = self.client.post(path, json=body, headers=headers)
            except httpx.HTTPError:
                time.sleep(backoff)  # the service is restarting
                backoff = min(backoff * 2, 2.0)
                continue
            if answer.status_code >= 500:
                self.history.server_error(answer.status_code, write.kind)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            write.status = answer.status_code
            if write.acknowledged:
                found = answer.json()
                write.event_id, write.version = found["event_id"], found["stream_version"]
                return found
            return None
        return None


def marked(write: Write) -> dict[str, str]:
    """The headers that carry a write's marker: its retries are answered once, and its events
    (and theirs downstream) carry it as their correlation id."""
    return {"Idempotency-Key": write.op, "X-Correlation-ID": write.op}


def conflicting_writes(url: str, history: History, *, writers: int = 100) -> Counter:
    """`writers` clients write to one captive at once, all based on the same version: exactly one
    may win, the others must get 409. Returns the count of each answer's status."""
    first = Write(op=f"op-{uuid.uuid4().hex}", kind="register", attempts=1)
    with signed_in(httpx.Client(base_url=url, timeout=30)) as client:
        answer = client.post("/v1/captives", json=registration(), headers=marked(first))
        answer.raise_for_status()
        registered = answer.json()
    first.captive_id, first.status = registered["captive_id"], answer.status_code
    first.event_id, first.version = registered["event_id"], registered["stream_version"]
    history.add(first)
    captive_id, statuses = registered["captive_id"], Counter()
    start = threading.Barrier(writers)

    def one() -> None:
        write = Write(op=f"op-{uuid.uuid4().hex}", kind="visit", captive_id=captive_id)
        body = {"delegate": write.op, "place": "Camp No. 1", "private_interview": True}
        with signed_in(httpx.Client(base_url=url, timeout=60)) as client:
            start.wait()
            write.attempts = 1
            answer = client.post(
                f"/v1/captives/{captive_id}/icrc-visits",
                json=body,
                headers={"If-Match": '"1"', **marked(write)},
            )
        write.status = answer.status_code
        if answer.status_code >= 500:
            history.server_error(answer.status_code, "visit")
        if write.acknowledged:
            write.event_id, write.version = answer.json()["event_id"], answer.json()["stream_version"]
        history.add(write)
        with history.lock:
            statuses[answer.status_code] += 1

    threads = [threading.Thread(target=one, daemon=True) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return statuses
