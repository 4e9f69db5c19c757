"""A service at run time: its database and migrations, its event store, the outbox relay, the
consumer of upstream topics, its keys; started and stopped as one. No FastAPI here: the web
wing (shared/web/) serves it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
import structlog
from kafka.errors import KafkaError
from sqlalchemy.orm import Session, sessionmaker

from shared.auth.gate import Gate
from shared.broker import clients as kafka_clients
from shared.broker.access import KafkaAccess, KafkaCredentialsMissing
from shared.commands.pipeline import Pipeline
from shared.contracts.topics import PUBLISHERS
from shared.eventstore.consumer import EventConsumer, Handler
from shared.eventstore.leader import LeaderLock
from shared.eventstore.received import RetryLater
from shared.eventstore.relay import OutboxRelay
from shared.evidence import checkpoints, signing
from shared.evidence.checkpoints import checkpoint_topic
from shared.platform.db import create_engine, migrate, session_factory
from shared.privacy.kek import kek_path, load_kek
from shared.privacy.keyring import Keyring
from shared.runtime.definition import ServiceDefinition
from shared.runtime.settings import ServiceSettings

log = structlog.get_logger(__name__)


class ServiceRuntime:
    """The running parts of one service instance."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings):
        self.definition = definition
        self.settings = settings
        kafka = settings.kafka
        self.topic = kafka.topic(definition.topic)
        self.consumed_topics = [kafka.topic(name) for name in definition.consumes]
        self.engine = create_engine(settings.database_url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.keyring = keyring_of(definition, settings)
        self.store = definition.event_store(self.topic, self.keyring)
        # Its policies, with the privacy wing's: on IdentityErased each service destroys its own key.
        self.policies = definition.policies
        if self.keyring is not None:
            self.policies += self.keyring.key_destruction(lambda: self.engine)
        # How its commands are carried out: appended, projected, reacted to (shared/commands/pipeline.py).
        self.pipeline = Pipeline(self.store, self.policies)
        client_id = f"{kafka.topic_prefix}{definition.name}"
        self.relay = OutboxRelay(
            self.sessions,
            definition.store_tables,
            producer_factory=lambda: kafka_clients.producer(
                self.kafka_access(),
                f"{client_id}-relay",
                transactional_id=kafka_clients.relay_transactional_id(kafka.topic_prefix, definition.name),
            ),
            prepare=self.ensure_topics,
            leader=LeaderLock(self.engine, f"{definition.name}-relay"),
            sign=lambda value: self.signer.header(value),
        )
        self.consumer = None
        if definition.consumes:
            self.consumer = EventConsumer(
                sessions=self.sessions,
                inbox=definition.store_tables.inbox,
                handlers=self.handlers(),
                consumer_factory=lambda: kafka_clients.consumer(
                    self.kafka_access(),
                    group_id=client_id,
                    client_id=f"{client_id}-consumer",
                    topics=self.consumed_topics,
                ),
                producer_factory=lambda: kafka_clients.producer(self.kafka_access(), f"{client_id}-dlq"),
                group_id=client_id,
                after_commit=self.relay.wake,
                prepare=self.prepare_consumer,
                chain_links=definition.store_tables.chain_links,
                pins=pinned_keys(settings, definition.name, definition.consumes),
                parked=definition.store_tables.parked,
                decisions=definition.store_tables.dead_letter_decisions,
                stall_after_s=settings.consumer_stall_after_s,
            )
        self.gate = Gate(settings.auth, audience=definition.name)
        self._broker_checked_at = 0.0
        self._broker_ok = False
        self._stopping = threading.Event()
        self._checkpointed: dict[int, int] | None = None
        self._signer: signing.Signer | None = None
        self.topic_differences: list[str] = []  # from the last check of the topics (ensure_topics)

    def kafka_access(self) -> KafkaAccess:
        """The service connects to the broker as its own principal (read when a client is made,
        so a missing secret is reported where the client is needed, and retried)."""
        return self.settings.kafka.access(self.definition.name)

    def handlers(self) -> dict[str, Handler]:
        return self.definition.consumer_handlers(self.store, self.policies)

    def reveal(self, session: Session, events: list) -> list:
        """`events` with what this service sealed in them opened (erased: marked so)."""
        return self.keyring.open(session, events) if self.keyring is not None else list(events)

    def ensure_topics(self) -> None:
        """Its own topic (with its dead-letter and checkpoint topics) and the dead-letter topics of
        those it consumes, created if missing and checked against the settings; never the topics
        it consumes, which their producers create and check. The relay and the consumer call it
        before they work: while a topic differs, neither does (and /readyz says why)."""
        kafka = self.settings.kafka
        try:
            kafka_clients.ensure_topics(
                self.kafka_access(),
                [self.topic],
                kafka.partitions,
                dead_letters_of=tuple(self.consumed_topics),
                client_id=f"{kafka.topic_prefix}{self.definition.name}-admin",
                single=(checkpoint_topic(self.topic),),
                replication_factor=kafka.replication_factor,
                min_insync_replicas=kafka.min_insync_replicas,
            )
        except kafka_clients.TopicsDiffer as error:
            self.topic_differences = error.differences
            log.error("topics differ from the settings", differences=error.differences)
            raise
        self.topic_differences = []

    def prepare_consumer(self) -> None:
        """Before the consumer subscribes: the service's topics, as for the relay, and every topic
        it consumes there already. Subscribed to a topic its publisher has not created yet, a
        consumer may be given no partition of it for minutes (kafka-python asks again for the
        metadata of a topic it does not know only now and then): it waits instead, saying which
        (RetryLater: the consumer's stuck reason, and /readyz once past its bound)."""
        self.ensure_topics()
        admin_id = f"{self.settings.kafka.topic_prefix}{self.definition.name}-admin"
        missing = kafka_clients.missing_topics(self.kafka_access(), self.consumed_topics, client_id=admin_id)
        if missing:
            raise RetryLater(f"{', '.join(missing)} not created yet (each publisher creates its topic at its start)")

    def check_topics_at_start(self) -> None:
        """Refuse to start on a topic that differs from the settings (raises TopicsDiffer). A
        broker that does not answer yet does not stop the start: writes go to the outbox, and the
        relay and consumer create and check the topics once it answers."""
        try:
            self.ensure_topics()
        except (KafkaError, OSError, KafkaCredentialsMissing) as error:
            log.warning("broker not reachable at start; topics are checked when it answers", error=repr(error))

    @property
    def signer(self) -> signing.Signer:
        """The service's signing key (loaded at start, when `check_keys` fails early without it)."""
        if self._signer is None:
            self._signer = signer_of(self.settings, self.definition.name)
        return self._signer

    def publish_checkpoint(self) -> dict[int, int] | None:
        """Sign and publish a checkpoint of this service's topic (None: nothing new since the last)."""
        sizes = checkpoints.publish(
            self.kafka_access(),
            self.topic,
            self.signer.key,
            last_sizes=self._checkpointed,
        )
        if sizes is not None:
            self._checkpointed = sizes
            log.info("checkpoint published", topic=self.topic, records=sum(sizes.values()))
        return sizes

    def _checkpoint_loop(self) -> None:
        while not self._stopping.wait(self.settings.checkpoint_interval_s):
            if not self.relay.leading:
                continue  # the instance that publishes the topic also checkpoints it
            try:
                self.publish_checkpoint()
            except Exception:  # the broker may be away; the next round tries again
                log.warning("checkpoint not published; will retry", exc_info=True)

    def migrate(self) -> None:
        migrate(self.engine, self.definition.migrations, self.definition.metadata)

    def check_keys(self) -> None:
        """Refuse to start without a usable key-encryption key and a signing key among the
        service's pins; wrap keys stored unwrapped."""
        log.info("signing key", key_id=self.signer.key_id)
        if self.keyring is not None:
            with self.sessions.begin() as session:
                wrapped = self.keyring.check(session)
            if wrapped:
                log.info("captive keys wrapped at start", keys=wrapped)

    def start(self) -> None:
        self.migrate()
        self.check_keys()
        self.check_topics_at_start()
        self.relay.start()
        if self.consumer:
            self.consumer.start(name=f"{self.definition.name}-consumer")
        if self.settings.checkpoint_interval_s:
            threading.Thread(target=self._checkpoint_loop, name="checkpoints", daemon=True).start()
        log.info("service started", topic=self.topic, consumes=self.consumed_topics)

    def stop(self) -> None:
        self._stopping.set()
        if self.consumer:
            self.consumer.stop()
        self.relay.stop()
        self.engine.dispose()

    def database_ok(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def broker_ok(self) -> bool:
        """Asks the broker for its cluster description and whether enough of its brokers are up
        to acknowledge a record (min.insync.replicas), at most every 2 s (readiness probes are
        frequent; a new admin connection each time would load the broker for nothing). Writes are
        still recorded while it says no: they wait in the outbox."""
        if time.monotonic() - self._broker_checked_at < 2.0:
            return self._broker_ok
        try:
            self._broker_ok = kafka_clients.accepts_writes(
                self.kafka_access(), f"{self.definition.name}-ready", self.settings.kafka.min_insync_replicas or 1
            )
        except (KafkaError, OSError, KafkaCredentialsMissing):
            self._broker_ok = False
        self._broker_checked_at = time.monotonic()
        return self._broker_ok


def kek_of(settings: ServiceSettings, service: str) -> bytes:
    """The service's key-encryption key, from its secret or its file (created when absent)."""
    secret = settings.kek.get_secret_value() if settings.kek is not None else None
    return load_kek(secret=secret, path=kek_path(settings.kek_file, service))


def keyring_of(definition: ServiceDefinition, settings: ServiceSettings) -> Keyring | None:
    """The service's keyring, its KEK read (or created) when first needed."""
    if definition.key_tables is None:
        return None
    return Keyring(definition.name, definition.key_tables, lambda: kek_of(settings, definition.name))


def signing_key_path(settings: ServiceSettings, service: str) -> Path:
    """Where the service's signing key is: as configured, or beside its KEK file."""
    if settings.signing_key_file:
        return Path(settings.signing_key_file)
    return kek_path(settings.kek_file, service).parent / f"{service}.pem"


def pins_dir(settings: ServiceSettings, service: str) -> Path:
    """Where the pinned public keys are: as configured, or `pinned/` beside the signing key."""
    return (
        Path(settings.signing_pins_dir)
        if settings.signing_pins_dir
        else signing_key_path(settings, service).parent / "pinned"
    )


def signer_of(settings: ServiceSettings, service: str) -> signing.Signer:
    """The service's signer: its key opened with its KEK (created and pinned on first use), and
    refused (SigningKeyError) when its pins name other keys only."""
    key = signing.load_or_create_key(signing_key_path(settings, service), kek_of(settings, service))
    signing.ensure_pinned(pins_dir(settings, service), service, key)
    return signing.Signer(key)


def pinned_keys(settings: ServiceSettings, service: str, topics: Iterable[str]) -> signing.PinnedKeys:
    """The pins that `service` (whose `settings` say where they are) checks the records of
    `topics` (unprefixed) against, by prefixed topic."""
    publishers = {settings.kafka.topic(topic): PUBLISHERS[topic] for topic in topics}
    return signing.PinnedKeys(pins_dir(settings, service), publishers)
