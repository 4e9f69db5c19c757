"""Replay skips what the live consumer holds back or discarded (shared/eventstore/replay.py `Held`), as the
live consumer did: parked and discarded records by their place in the log, exact copies of a
discarded event by id and bytes (an altered copy under its id is not it), and a discarded event
still takes its place in its stream's chain, so the events after it follow on."""

from __future__ import annotations

from collections import namedtuple

import sqlalchemy as sa

from services.status.app import definition as status
from services.status.tables import force_memberships
from shared.contracts.intake import ForceMembershipRecorded
from shared.eventstore import replay as replaying
from shared.evidence.chain import chain_fields, event_hash
from tests.unit.test_replay_batches import A, B, Log, registered

Placed = namedtuple("Placed", "topic partition offset value")
TOPIC = "intake.events.v1"


def membership(captive_id: str, force: str) -> ForceMembershipRecorded:
    return ForceMembershipRecorded(captive_id=captive_id, force=force, force_state="KP")


def placed(log: Log) -> list[Placed]:
    return [Placed(TOPIC, 0, offset, record.value) for offset, record in enumerate(log.records)]


def replay(tmp_path, records: list[Placed], held: replaying.Held, name: str):
    url = f"sqlite:///{tmp_path / name}.db"
    result = replaying.rebuild(url, status.migrations, status.metadata, status.projector, iter(records), held=held)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = sorted(
            (row.captive_id, row.force)
            for row in connection.execute(sa.select(force_memberships.c.captive_id, force_memberships.c.force))
        )
    engine.dispose()
    return result, rows


def log_of_two() -> list[Placed]:
    log = Log()
    log.add(registered(A), A, 0)  # offset 0
    log.add(registered(B), B, 0)  # 1
    log.add(membership(A, "discarded force"), A, 1)  # 2: the dead letter
    log.add(membership(A, "parked force"), A, 2)  # 3: parked behind it (names 2 as its prevhash)
    log.add(membership(B, "his force"), B, 1)  # 4
    return placed(log)


def test_records_held_live_are_not_applied_and_others_are(tmp_path):
    records = log_of_two()
    held = replaying.Held(frozenset({(TOPIC, 0, 2), (TOPIC, 0, 3)}))
    result, rows = replay(tmp_path, records, held, "held")
    assert rows == [(B, "his force")]
    assert (result.held, result.chain_breaks) == (2, 0)
    everything, all_rows = replay(tmp_path, records, replaying.Held(), "all")
    assert len(all_rows) == 3 and everything.held == 0


def test_a_discarded_event_takes_its_place_in_its_chain_so_the_next_one_applies(tmp_path):
    records = log_of_two()
    discarded = records[2]
    event_id = chain_fields(discarded.value)[3]
    held = replaying.Held(frozenset({(TOPIC, 0, 2)}), frozenset({(event_id, event_hash(discarded.value))}))
    result, rows = replay(tmp_path, records, held, "discarded")
    assert rows == [(A, "parked force"), (B, "his force")]
    assert (result.held, result.chain_breaks) == (1, 0)


def test_a_copy_of_a_discarded_event_elsewhere_is_discarded_too_an_altered_one_is_not_it(tmp_path):
    records = log_of_two()
    discarded = records[2]
    event_id = chain_fields(discarded.value)[3]
    copy = Placed(TOPIC, 0, 5, discarded.value)  # a relay's re-send
    altered = Placed(TOPIC, 0, 6, discarded.value.replace(b"discarded force", b"altered force!!"))
    held = replaying.Held(frozenset({(TOPIC, 0, 2)}), frozenset({(event_id, event_hash(discarded.value))}))
    result, rows = replay(tmp_path, [*records, copy, altered], held, "copies")
    assert rows == [(A, "parked force"), (B, "his force")]
    assert result.held == 2  # the discarded one and its exact copy
    assert result.chain_breaks == 1  # the altered copy: seen with other bytes
