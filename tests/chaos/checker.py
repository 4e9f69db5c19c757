"""After a chaos run: every acknowledged write compared with what each service stored and with
the topics. Nothing here reads logs; each finding names the write (its unique op) it is about.

- lost: an acknowledged write missing from intake's events, from the intake topic, or never
  applied downstream (no status decided for a registration; a wish status or disposition did
  not record).
- duplicated: one write stored as two events (its unique value twice), or a status decided
  twice for one registration (two decisions caused by one event).
- reordered: a captive's events stored, published or applied in another order than their
  writes were acknowledged in (the last acknowledged wish is not the one in force downstream).
- gaps: a stream whose versions skip a number.

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
from shared.contracts.topics import INTAKE_EVENTS, STATUS_EVENTS
from tests.chaos.workload import History, Write
from tests.support import read_topic


@dataclass
class Findings:
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    republished: int = 0

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered or self.gaps)

    def summary(self) -> dict:
        return {
            "acknowledged": self.acknowledged,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "reordered": len(self.reordered),
            "gaps": len(self.gaps),
            "republished": self.republished,
        }


def check(history: History, database_urls: dict[str, str], bootstrap: str, topic_prefix: str) -> Findings:
    acknowledged = history.acknowledged()
    findings = Findings(acknowledged=len(acknowledged))
    by_captive: dict[str, list[Write]] = defaultdict(list)
    for write in acknowledged:
        by_captive[write.captive_id].append(write)
    for writes in by_captive.values():
        writes.sort(key=lambda write: write.version)

    intake = _events(database_urls["intake"])
    _check_intake_store(findings, acknowledged, by_captive, intake)
    _check_topic(findings, acknowledged, read_topic(bootstrap, topic_prefix + INTAKE_EVENTS, timeout_s=120))
    _check_status(findings, acknowledged, database_urls["status"])
    status_records = read_topic(bootstrap, topic_prefix + STATUS_EVENTS, timeout_s=120)
    decided = [decode(record.value).envelope for record in status_records]
    status_ids = {envelope.id for envelope in decided if envelope.type == "StatusDetermined"}
    for service in ("status", "disposition"):
        _check_latest_wish(findings, by_captive, database_urls[service], service)
    _check_applied_downstream(findings, acknowledged, status_ids, database_urls)
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
    return [
        {"id": r.event_id, "stream": r.stream_id, "version": r.stream_version, "type": r.event_type, "raw": r.envelope}
        for r in rows
    ]


def _check_intake_store(findings: Findings, acknowledged, by_captive, events: list[dict]) -> None:
    stored = {event["id"]: event for event in events}
    # The unique value of an ICRC visit is its delegate (reference tier: stored in clear).
    delegates = Counter(
        orjson.loads(event["raw"])["data"].get("delegate") for event in events if event["type"] == "IcrcVisitRecorded"
    )
    for write in acknowledged:
        event = stored.get(write.event_id)
        if event is None:
            findings.lost.append(f"intake store: {write.kind} {write.op}")
        elif (event["stream"], event["version"]) != (write.captive_id, write.version):
            findings.reordered.append(
                f"intake store: {write.op} acknowledged as v{write.version}, stored v{event['version']}"
            )
        if write.kind == "visit" and delegates[write.op] > 1:
            findings.duplicated.append(f"intake store: visit {write.op} stored {delegates[write.op]} times")
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event["stream"]].append(event["version"])
    for stream, found in versions.items():
        if sorted(found) != list(range(1, len(found) + 1)):
            findings.gaps.append(f"intake store: {stream} has versions {sorted(found)[:10]}...")


def _check_topic(findings: Findings, acknowledged, records) -> None:
    seen: Counter = Counter()
    last_version: dict[bytes, int] = {}
    out_of_order: set[str] = set()
    for record in records:  # partition by partition, in offset order
        envelope = decode(record.value).envelope
        seen[envelope.id] += 1
        if seen[envelope.id] > 1:
            continue  # a republished record: its first copy already stood in its place
        if envelope.stream_version <= last_version.get(record.key, 0):
            out_of_order.add(envelope.id)
        last_version[record.key] = envelope.stream_version
    findings.republished += sum(count - 1 for count in seen.values())
    for write in acknowledged:
        if seen[write.event_id] == 0:
            findings.lost.append(f"intake topic: {write.kind} {write.op}")
        elif write.event_id in out_of_order:
            findings.reordered.append(f"intake topic: {write.op} published after a later version")


def _check_status(findings: Findings, acknowledged, url: str) -> None:
    decisions = Counter(
        orjson.loads(event["raw"]).get("causationid") for event in _events(url) if event["type"] == "StatusDetermined"
    )
    for write in acknowledged:
        if write.kind != "register":
            continue
        decided = decisions[write.event_id]
        if decided == 0:
            findings.lost.append(f"status: no decision for registration {write.op}")
        elif decided > 1:
            findings.duplicated.append(f"status: {decided} decisions caused by registration {write.op}")


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


def _check_applied_downstream(findings: Findings, acknowledged, status_ids: set[str], urls: dict[str, str]) -> None:
    """Every intake event the downstream services use is in their inbox, and disposition has
    applied every status decision published (an event is in an inbox once it is applied)."""
    inboxes = {}
    for service in ("status", "disposition"):
        engine = sa.create_engine(urls[service])
        try:
            with engine.connect() as connection:
                inboxes[service] = set(connection.execute(sa.text("SELECT event_id FROM inbox")).scalars())
        finally:
            engine.dispose()
    for write in acknowledged:
        if write.kind in ("register", "wish"):
            for service, inbox in inboxes.items():
                if write.event_id not in inbox:
                    findings.lost.append(f"{service} inbox: {write.kind} {write.op}")
    missing = status_ids - inboxes["disposition"]
    findings.lost.extend(f"disposition inbox: status event {event_id}" for event_id in sorted(missing))
