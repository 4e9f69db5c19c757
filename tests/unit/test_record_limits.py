"""The largest record is one number, set explicitly everywhere it matters: the producers'
max_request_size, the broker's message.max.bytes (deploy/kafka/node.py and docker-compose.yml),
and the event store's refusal of an append whose record would be larger (the API's 413)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from deploy.kafka.node import KafkaNode
from services.intake import tables
from shared.broker import clients as kafka_clients
from shared.broker.access import KafkaAccess
from shared.broker.clients import MAX_MESSAGE_BYTES
from shared.contracts import EventMetadata
from shared.contracts.intake import IdentityAmended
from shared.eventstore import EventStore, EventTooLarge
from shared.platform.db import create_engine, migrate, session_factory

ROOT = Path(__file__).resolve().parents[2]


def test_the_producers_and_the_broker_are_set_to_the_same_limit(tmp_path, monkeypatch):
    made = {}
    monkeypatch.setattr(kafka_clients, "KafkaProducer", lambda **options: made.update(options))
    kafka_clients.producer(KafkaAccess("127.0.0.1:1", "intake", "secret"), "test")
    assert made["max_request_size"] == MAX_MESSAGE_BYTES  # set, not kafka-python's default
    node = KafkaNode(tmp_path / "kafka")
    node.data_dir.mkdir(parents=True)
    from shared.broker.access import ensure_credentials

    ensure_credentials(node.credentials_dir)
    node._write_properties()
    properties = dict(line.split("=", 1) for line in node.properties_file.read_text().splitlines())
    assert properties["message.max.bytes"] == str(MAX_MESSAGE_BYTES)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["kafka"]["environment"]["KAFKA_MESSAGE_MAX_BYTES"] == str(MAX_MESSAGE_BYTES)


def test_consumers_and_readers_read_committed_only():
    access = KafkaAccess("127.0.0.1:1", "auditor", "secret")
    reader = kafka_clients.reader(access, api_version=(4, 0))
    try:
        assert reader.config["isolation_level"] == "read_committed"
    finally:
        reader.close()


def test_an_append_whose_record_is_larger_than_the_limit_is_refused_and_stores_nothing(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    migrate(engine, Path(tables.__file__).parent / "migrations", tables.metadata)
    store = EventStore(tables.store_tables, source="/services/intake", topic="t", max_record_bytes=2048)
    sessions = session_factory(engine)
    metadata = EventMetadata(actor="officer", agency="UA-HQ", occurred_at=datetime(2025, 1, 12, tzinfo=UTC))

    def amendment(reason: str) -> IdentityAmended:
        return IdentityAmended(
            captive_id="CAP-0000-0000-0001",
            field="rank",
            previous={"answer": "GIVEN", "value": "전사"},
            current={"answer": "GIVEN", "value": "상등병"},
            reason=reason,
        )

    with sessions.begin() as session:
        store.append(session, "CAP-0000-0000-0001", 0, [amendment("unit papers")], metadata)
    with pytest.raises(EventTooLarge) as refused, sessions.begin() as session:
        store.append(session, "CAP-0000-0000-0001", 1, [amendment("r" * 3000)], metadata)
    assert refused.value.limit == 2048 and refused.value.size > 2048
    assert "2,048 bytes" in str(refused.value) and "nothing was recorded" in str(refused.value)
    with sessions() as session:
        assert store.stream_version(session, "CAP-0000-0000-0001") == 1
        assert len(store.read_all(session)) == 1
    engine.dispose()
