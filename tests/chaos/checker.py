"""After a chaos run: every write compared with what each service stored, each store with its
topic, and each topic with every consumer of it. Nothing here reads logs; each finding names the
write (its unique marker) or the event it is about.

Every write carries a unique marker, its `op`: sent as its Idempotency-Key and as its
X-Correlation-ID, which becomes the `correlationid` of the event it appends and of every event
that event causes downstream. So a write stored twice shows as two events with one marker,
whatever its body (every registration's body is the same).

- lost: an acknowledged write missing from intake's events or from the intake topic, or never
  applied downstream (no status decided for a registration; a wish not in force); an event of a
  service's store missing from its topic; an event of a topic that a consumer of it never saw
  (neither applied, in its inbox, nor passed over as of a type it does not use, in its chain).
- duplicated: more than one event with one write's marker, in a store or (distinct events) on a
  topic; a status decided twice for one registration.
- reordered: a captive's events stored, published or applied in another order than their writes
  were acknowledged in (the last acknowledged wish is not the one in force downstream); a stream's
  events on a topic out of version order.
- gaps: a stream whose versions skip a number, in any service's store.
- strays: an event on a topic that its service's store does not hold.
- stuck: anything still held once the run is over (a dead letter, a parked or waiting record, a
  parked outbox row), counted with the lost; and the poison fault's records (a poison record, a
  forged event), which must be on intake's topic, discarded by every consumer, applied by none.

Records the relay sent twice (it crashed between the broker's ack and its bookkeeping) are
counted as `republished`: at-least-once publication is the design, and the consumers' inboxes
must absorb it, which the duplicated/applied-twice checks verify.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa

from shared.contracts import decode
from shared.contracts.topics import DISPOSITION_EVENTS, INTAKE_EVENTS, STATUS_EVENTS
from tests.chaos.workload import History, Write
from tests.support import read_topic

TOPICS = {"intake": INTAKE_EVENTS, "status": STATUS_EVENTS, "disposition": DISPOSITION_EVENTS}
CONSUMERS = {"status": (INTAKE_EVENTS,), "disposition": (INTAKE_EVENTS, STATUS_EVENTS)}


@dataclass
class Findings:
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    republished: int = 0
    events: dict[str, int] = field(default_factory=dict)  # service -> events in its store, all on its topic
    markers: int = 0  # writes whose marker was counted in intake's store and topic
    injected: int = 0  # the poison fault's records on intake's topic (each discarded by every consumer)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered or self.gaps or self.strays)

    def problems(self) -> list[str]:
        return [*self.lost, *self.duplicated, *self.reordered, *self.gaps, *self.strays]

    def summary(self) -> dict:
        return {
            "acknowledged": self.acknowledged,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "reordered": len(self.reordered),
            "gaps": len(self.gaps),
            "strays": len(self.strays),
            "republished": self.republished,
        }


@dataclass
class Published:
    """A topic read from offset 0: each distinct event once (its first copy), and how many
    copies were sent again."""

    envelopes: list = field(default_factory=list)
    copies: Counter = field(default_factory=Counter)
    out_of_order: set[str] = field(default_factory=set)

    injected: int = 0  # records of the poison fault, which no store holds and no consumer applies

    @classmethod
    def read(cls, bootstrap: str, topic: str, injected: dict[bytes, str | None]) -> Published:
        published = cls()
        last_version: dict[bytes, int] = {}
        for record in read_topic(bootstrap, topic, timeout_s=120):  # partition by partition, in offset order
            if record.value in injected:
                published.injected += 1
                continue
            envelope = decode(record.value).envelope
            published.copies[envelope.id] += 1
            if published.copies[envelope.id] > 1:
                continue  # a republished record: its first copy already stood in its place
            if envelope.stream_version <= last_version.get(record.key, 0):
                published.out_of_order.add(envelope.id)
            last_version[record.key] = envelope.stream_version
            published.envelopes.append(envelope)
        return published

    @property
    def ids(self) -> set[str]:
        return set(self.copies)

    @property
    def republished(self) -> int:
        return sum(count - 1 for count in self.copies.values())


def check(history: History, database_urls: dict[str, str], bootstrap: str, topic_prefix: str) -> Findings:
    acknowledged = history.acknowledged()
    findings = Findings(acknowledged=len(acknowledged))
    by_captive: dict[str, list[Write]] = defaultdict(list)
    for write in acknowledged:
        by_captive[write.captive_id].append(write)
    for writes in by_captive.values():
        writes.sort(key=lambda write: write.version)

    stores = {service: _events(database_urls[service]) for service in TOPICS}
    topics = {
        service: Published.read(bootstrap, topic_prefix + topic, history.injected) for service, topic in TOPICS.items()
    }
    for service in TOPICS:
        _check_store_against_topic(findings, service, stores[service], topics[service])
        _check_versions(findings, service, stores[service])
    _check_intake_store(findings, acknowledged, stores["intake"])
    _check_markers(findings, history.writes, stores["intake"], topics["intake"])
    _check_status(findings, acknowledged, stores["status"])
    for service in ("status", "disposition"):
        _check_latest_wish(findings, by_captive, database_urls[service], service)
    _check_consumers(findings, acknowledged, topics, database_urls)
    findings.injected = topics["intake"].injected
    _check_injected(findings, history.injected, topics["intake"], database_urls, topic_prefix + INTAKE_EVENTS)
    _check_nothing_held(findings, database_urls)
    return findings


def _events(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT event_id, stream_id, stream_version, event_type, envelope FROM events ORDER BY position"
                )
            ).all()
    finally:
        engine.dispose()
    events = []
    for row in rows:
        envelope = orjson.loads(row.envelope)
        events.append(
            {
                "id": row.event_id,
                "stream": row.stream_id,
                "version": row.stream_version,
                "type": row.event_type,
                "marker": envelope.get("correlationid"),
                "cause": envelope.get("causationid"),
            }
        )
    return events


def _check_store_against_topic(findings: Findings, service: str, events: list[dict], published: Published) -> None:
    """The store and its topic hold the same events, each stream's in version order on the topic."""
    stored = {event["id"]: event for event in events}
    findings.events[service] = len(stored)
    findings.republished += published.republished
    for event_id, event in stored.items():
        if event_id not in published.ids:
            findings.lost.append(f"{service} topic: {event['type']} {event_id} (v{event['version']}) never published")
    for envelope in published.envelopes:
        if envelope.id not in stored:
            findings.strays.append(f"{service} topic: {envelope.type} {envelope.id} is in no store")
        elif envelope.id in published.out_of_order:
            findings.reordered.append(f"{service} topic: {envelope.id} published after a later version")


def _check_versions(findings: Findings, service: str, events: list[dict]) -> None:
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event["stream"]].append(event["version"])
    for stream, found in versions.items():
        if sorted(found) != list(range(1, len(found) + 1)):
            findings.gaps.append(f"{service} store: {stream} has versions {sorted(found)[:10]}...")


def _check_intake_store(findings: Findings, acknowledged: list[Write], events: list[dict]) -> None:
    stored = {event["id"]: event for event in events}
    for write in acknowledged:
        event = stored.get(write.event_id)
        if event is None:
            findings.lost.append(f"intake store: {write.kind} {write.op}")
        elif (event["stream"], event["version"]) != (write.captive_id, write.version):
            findings.reordered.append(
                f"intake store: {write.op} acknowledged as v{write.version}, stored v{event['version']}"
            )
        elif event["marker"] != write.op:
            findings.lost.append(f"intake store: {write.op}'s event {write.event_id} carries {event['marker']}")


def _check_markers(findings: Findings, writes: list[Write], events: list[dict], published: Published) -> None:
    """Every write, answered or not, is at most one event in intake's store and on its topic;
    an acknowledged one exactly one (the store holds it by id: `_check_intake_store`)."""
    stored = Counter(event["marker"] for event in events)
    on_topic = Counter(envelope.correlation_id for envelope in published.envelopes)
    for write in writes:
        for where, counted in (("store", stored), ("topic", on_topic)):
            if counted[write.op] > 1:
                findings.duplicated.append(f"intake {where}: {write.kind} {write.op} is {counted[write.op]} events")
            elif write.acknowledged and counted[write.op] == 0:
                findings.lost.append(f"intake {where}: no event carries {write.kind} {write.op}")
    findings.markers = sum(1 for write in writes if write.acknowledged and stored[write.op] == on_topic[write.op] == 1)


def _check_status(findings: Findings, acknowledged: list[Write], events: list[dict]) -> None:
    """One decision per registration: caused by its event, and carrying its marker."""
    decisions = [event for event in events if event["type"] == "StatusDetermined"]
    caused = Counter(event["cause"] for event in decisions)
    marked = Counter(event["marker"] for event in decisions)
    for write in acknowledged:
        if write.kind != "register":
            continue
        for how, counted in (("caused by", caused[write.event_id]), ("marked", marked[write.op])):
            if counted == 0:
                findings.lost.append(f"status: no decision {how} registration {write.op}")
            elif counted > 1:
                findings.duplicated.append(f"status: {counted} decisions {how} registration {write.op}")


def _check_latest_wish(findings: Findings, by_captive, url: str, service: str) -> None:
    """Applied in order downstream: the wish in force is the captive's last acknowledged one."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            wished = dict(
                connection.execute(sa.text("SELECT captive_id, state FROM partner_visibility WHERE wish")).all()
            )
    finally:
        engine.dispose()
    for captive_id, writes in by_captive.items():
        wishes = [write for write in writes if write.kind == "wish"]
        if wishes and wished.get(captive_id) != wishes[-1].state:
            problem = "lost" if captive_id not in wished else "reordered"
            getattr(findings, problem).append(
                f"{service}: last wish of {captive_id} is {wishes[-1].state}, in force {wished.get(captive_id)}"
            )


def _check_consumers(findings: Findings, acknowledged: list[Write], topics: dict[str, Published], urls) -> None:
    """Every event of a topic reached every consumer of it: applied (in its inbox) or, of a type
    it does not use, passed over (in its chain of the upstream stream). The writes the downstream
    services use are applied, not passed over."""
    by_topic = {TOPICS[service]: published for service, published in topics.items()}
    for consumer, consumed in CONSUMERS.items():
        engine = sa.create_engine(urls[consumer])
        try:
            with engine.connect() as connection:
                inbox = set(connection.execute(sa.text("SELECT event_id FROM inbox")).scalars())
                chained = set(connection.execute(sa.text("SELECT event_id FROM chain_links")).scalars())
        finally:
            engine.dispose()
        for topic in consumed:
            for envelope in by_topic[topic].envelopes:
                if envelope.id not in inbox and envelope.id not in chained:
                    findings.lost.append(f"{consumer} never saw {topic} {envelope.type} {envelope.id}")
        for write in acknowledged:
            if write.kind in ("register", "wish") and write.event_id not in inbox:
                findings.lost.append(f"{consumer} inbox: {write.kind} {write.op}")


def _check_injected(
    findings: Findings, injected: dict[bytes, str | None], published: Published, urls, topic: str
) -> None:
    """Every record the poison fault injected is on intake's topic, and every consumer set it
    aside and an operator discarded it: never applied."""
    if published.injected < len(injected):
        findings.lost.append(f"intake topic: {published.injected} of the {len(injected)} injected records")
    for consumer in CONSUMERS:
        engine = sa.create_engine(urls[consumer])
        try:
            with engine.connect() as connection:
                discarded = connection.execute(
                    sa.text("SELECT count(*) FROM dead_letter_decisions WHERE action = 'discard' AND topic = :t"),
                    {"t": topic},
                ).scalar()
                ids = [event_id for event_id in injected.values() if event_id]
                applied = connection.execute(
                    sa.text("SELECT count(*) FROM inbox WHERE event_id = ANY(:ids)"), {"ids": ids}
                ).scalar()
        finally:
            engine.dispose()
        if discarded < len(injected):
            findings.lost.append(f"{consumer}: {discarded} of the {len(injected)} injected records discarded")
        if applied:
            findings.duplicated.append(f"{consumer} applied {applied} injected (forged) records")


def _check_nothing_held(findings: Findings, urls) -> None:
    """Once the run is over nothing is stuck: no consumer holds a record (dead letter, parked or
    waiting), no outbox row is parked."""
    for service, url in urls.items():
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                parked_rows = connection.execute(
                    sa.text("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL")
                ).scalar()
                held = (
                    connection.execute(sa.text("SELECT state, count(*) FROM parked_records GROUP BY state")).all()
                    if service in CONSUMERS
                    else []
                )
        finally:
            engine.dispose()
        if parked_rows:
            findings.lost.append(f"{service}: {parked_rows} outbox rows parked")
        for state, count in held:
            findings.lost.append(f"{service}: {count} records still held ({state})")
