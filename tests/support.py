"""Helpers the integration and end-to-end tests share."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from kafka import TopicPartition

from services.disposition.app import DispositionSettings
from services.intake.app import IntakeSettings
from services.status.app import StatusSettings
from shared.auth.tokens import BearerAuth, BearerHeaders, TokenSource
from shared.broker import clients as kafka_clients
from shared.broker.access import ADMIN, AUDITOR
from shared.broker.settings import KafkaSettings
from tests.broker import grant_prefix, kafka_access, producer  # noqa: F401  (the tests' broker helpers)
from tests.realm import CLOCK_LEEWAY_S, realm

T = TypeVar("T")

# `make chaos` sets CHAOS_FULL=1: the fuzz tests run their long versions (far more examples).
CHAOS_FULL = os.environ.get("CHAOS_FULL") == "1"


def wait_until(
    probe: Callable[[], T], *, timeout_s: float = 60.0, interval_s: float = 0.2, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after the deadline.
    A correctness deadline, not a performance assertion: it only bounds how long we wait."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 30.0, principal: str = AUDITOR) -> list:
    """Every record of `topic` from offset 0 to its current end, in partition order."""
    consumer = kafka_clients.reader(kafka_access(bootstrap, principal))
    try:
        partitions = wait_until(
            lambda: consumer.partitions_for_topic(topic), timeout_s=timeout_s, what=f"metadata of {topic}"
        )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        records = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout_s}s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def settings_for(service: str, *, database_url: str, bootstrap: str, prefix: str, port: int = 0, partitions: int = 3):
    grant_prefix(bootstrap, prefix)
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=partitions)
    cls = {"intake": IntakeSettings, "status": StatusSettings, "disposition": DispositionSettings}[service]
    return cls(database_url=database_url, port=port or 1, kafka=kafka, log_json=False)


def registration(
    surname: str = "리",
    romanised: str = "Ri",
    *,
    captured_at: str = "2025-01-11T09:00:00Z",
    affiliation: str = "INTEGRATED_IN_COBELLIGERENT_FORCES",
    armed_force: dict | None = None,
) -> dict:
    """A registration body as an intake officer would send it (fictional person); with
    `armed_force` (e.g. KPA_MEMBERSHIP), the force he belongs to, which status reads for R3."""
    extra = {"armed_force": armed_force} if armed_force is not None else {}
    return {
        "surname": {"answer": "GIVEN", "value": surname, "romanised": romanised},
        "first_names": {"answer": "DECLINED"},
        "rank": {"answer": "GIVEN", "value": "전사", "romanised": "Private"},
        "date_of_birth": {"answer": "UNKNOWN"},
        "service_number": {"answer": "DECLINED"},
        "nationality": "KP",
        "claimed_affiliation": affiliation,
        "capture": {"captured_at": captured_at, "place": "Kursk oblast", "capturing_unit": "Special operations unit"},
        **extra,
    }


# Membership of the Korean People's Army, as recorded at registration (GC III Art. 4A(1)).
KPA_MEMBERSHIP = {"force": "Korean People's Army", "force_state": "KP", "basis": "KPA service booklet"}


def build_app(service: str, settings, *, background: bool = True, verify_tokens: bool = True):
    """The real service app (its database, relay and consumer threads when `background`),
    verifying tokens against the test realm (`verify_tokens=False`: no identity provider, so every
    request with a token is a 503, for tests that only look at the routes)."""
    from services.disposition.app import build as build_disposition
    from services.intake.app import build as build_intake
    from services.status.app import build as build_status

    builder = {"intake": build_intake, "status": build_status, "disposition": build_disposition}[service]
    if verify_tokens:
        test_realm = realm()
        settings.auth.oidc_issuer = test_realm.credentials.issuer
        settings.auth.agencies_file = str(test_realm.agencies_file)
        settings.auth.clock_leeway_s = CLOCK_LEEWAY_S
    return builder(settings, start_background=background)


class _Lazy(TokenSource):
    """A token source that starts the test realm at its first token, not at import, and then keeps
    the source it picked: its token is reused until it is about to expire, so a module does not
    sign the same person in again at every request (the identity provider guards sign-ins)."""

    def __init__(self, pick):
        self._pick = pick
        self._source: TokenSource | None = None
        self._picking = threading.Lock()

    def token(self) -> str:
        with self._picking:
            if self._source is None:
                self._source = self._pick(realm())
        return self._source.token()

    @property
    def who(self) -> str:
        return "a test identity"


def as_person(username: str) -> BearerHeaders:
    """Headers of a demo person of the test realm (deploy/keycloak/demo-persons.toml)."""
    return BearerHeaders(_Lazy(lambda test_realm: test_realm.person(username)))


def as_client(client_id: str) -> BearerHeaders:
    """Headers of a demo agency's system (a client of deploy/auth/demo-agencies.toml)."""
    return BearerHeaders(_Lazy(lambda test_realm: test_realm.client(client_id)))


# Tests that are not about authorization act as the operator client: every role but a partner
# state's. Each read of the headers carries a current token.
HEADERS = BearerHeaders(_Lazy(lambda test_realm: test_realm.operator))


def signed_in(client, headers: BearerHeaders | None = None):
    """`client` (an httpx client or TestClient) sends a current token of `headers`' identity (the
    operator's by default) on every request: headers given to its constructor would be copied
    once, and the token in them would run out during a long module."""
    client.auth = BearerAuth((headers or HEADERS).source)
    return client


# The two persons of the two-person rule: a disposition officer proposes, an approver approves.
OFFICER = as_person("i.bondarenko")
APPROVER = as_person("m.shevchenko")
# The persons whose own record gives a fact its legal weight (shared/contracts/standing.py): the
# ICRC delegate who hears wishes and consents in private, a member of the mixed medical commission,
# and a legal officer of the detaining state who may clear a destination.
DELEGATE = as_person("c.favre")
COMMISSION_DOCTOR = as_person("h.lindqvist")
LEGAL_OFFICER = as_person("d.lysenko")


class Unsettled:
    """Why an end-to-end stack is not settled yet: falsy, and its repr says what is in flight
    (so a wait that gives up names the group, topic or outbox that held it)."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "not settled: " + "; ".join(self.reasons)


def settled(stack: dict) -> bool | Unsettled:
    """Whether an end-to-end stack (tests/e2e/conftest.py) has nothing in flight: every outbox
    drained (before and after, so an event a consumer appended is counted) and every consumer
    group past the last record of every topic it reads. Groups alone are not enough: an event
    still in intake's outbox is on no topic yet, so every group looks caught up."""
    prefix, bootstrap = stack["topic_prefix"], stack["bootstrap"]
    services = ("intake", "status", "disposition")

    def undrained() -> list[str]:
        reasons = []
        for service in services:
            answer = stack[service].get("/readyz")
            body = answer.json()
            if answer.status_code != 200 or body.get("outbox_backlog") != 0:
                reasons.append(f"{service} /readyz {answer.status_code} {body}")
        return reasons

    reasons = undrained()
    if reasons:
        return Unsettled(reasons)
    for group, topic in (
        ("status", "intake.events.v1"),
        ("disposition", "intake.events.v1"),
        ("disposition", "status.events.v1"),
        ("intake", "disposition.events.v1"),
    ):
        behind = lag_of(bootstrap, f"{prefix}{group}", f"{prefix}{topic}")
        if behind:
            return Unsettled([f"group {group} on {topic}: {behind}"])
    reasons = undrained()
    return Unsettled(reasons) if reasons else True


def wait_settled(stack: dict, timeout_s: float = 120) -> None:
    """Wait until `settled`; when it gives up, the services' last warnings and errors go with it."""
    try:
        wait_until(lambda: settled(stack), timeout_s=timeout_s, interval_s=0.5, what="every consumer to catch up")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{service_warnings(stack)}") from None


def service_warnings(stack: dict, lines: int = 15) -> str:
    """The last warning and error lines of each service's log in an end-to-end stack."""
    out = []
    for service in ("intake", "status", "disposition"):
        log = stack["logs"] / f"{service}.log"
        text = log.read_text(errors="replace").splitlines() if log.exists() else []
        worrying = [line for line in text if '"warning"' in line or '"error"' in line or "Traceback" in line]
        out.append(f"--- {service}: {len(worrying)} warnings or errors, the last {lines}:")
        out.extend(line[:400] for line in worrying[-lines:])
    return "\n".join(out)


def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    return not lag_of(bootstrap, group, topic)


def lag_of(bootstrap: str, group: str, topic: str) -> str:
    """What consumer group `group` has not yet got past in `topic` ("": nothing). Caught up is:
    consumer group `group` has committed, in every partition, an offset past the last
    record. (Not the end offset itself: the relay publishes in transactions, and a transaction's
    commit marker takes an offset after its records that no consumer is handed, so a consumer
    that has applied everything may have committed the marker's offset, or not.)"""
    from kafka.errors import KafkaError

    admin = kafka_clients.admin(kafka_access(bootstrap, ADMIN), "test")
    consumer = kafka_clients.reader(kafka_access(bootstrap, ADMIN))
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        committed = admin.list_group_offsets(group).get(group, {})
        ends = consumer.end_offsets(partitions)
        behind = [tp for tp, end in ends.items() if end > 0 and (tp not in committed or committed[tp].offset < end)]
        uncommitted = [tp.partition for tp in behind if tp not in committed]
        if uncommitted:
            return f"nothing committed in partitions {uncommitted} (ends {_ends(ends)})"
        # A partition whose committed offset is short of its end is caught up if no record lies
        # between them (only commit markers, which the reader skips).
        if behind:
            consumer.assign(behind)
            for tp in behind:
                consumer.seek(tp, committed[tp].offset)
            deadline = time.monotonic() + 10
            while any(consumer.position(tp) < ends[tp] for tp in behind):
                if any(consumer.poll(timeout_ms=200).values()) or time.monotonic() > deadline:
                    at = {tp.partition: committed[tp].offset for tp in behind}
                    return f"records after the committed offsets {at} (ends {_ends(ends)})"
        return ""
    except KafkaError as error:  # e.g. the group coordinator is still being elected: not caught up yet
        return f"the broker did not answer: {error!r}"
    finally:
        admin.close()
        consumer.close()


def _ends(ends: dict) -> dict[int, int]:
    return {tp.partition: end for tp, end in sorted(ends.items())}
