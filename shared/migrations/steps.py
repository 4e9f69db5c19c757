"""The changes to the tables every service has, each written once: the event store's (events, outbox,
inbox, idempotency keys, discarded events), access control's, the captives' keys and tombstones, and
the consumer's (chain links, parked records, dead-letter decisions).

Each service keeps its own chain of revisions (services/<name>/migrations/): it has its own database,
and deployed databases and tests name those revisions. A revision that changes the shared tables
names the steps it applies (`shared_steps`) and its upgrade() and downgrade() apply them with
upgrade(shared_steps) and downgrade(shared_steps), next to any change of its own service's tables.
tests/unit/test_migrations_match_tables.py checks that every chain applies every step once, in the
order of SHARED_STEPS where the order matters, and ends with exactly the tables the code declares.

A step is what databases have run: it is never edited. A further change to the shared tables is a
new step at the end of SHARED_STEPS, applied by a new revision in each service's chain. Like the
revisions, the steps write their types and values out rather than import them from the code,
whose tables move on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an INTEGER PRIMARY KEY (shared/eventstore/tables.py Position).
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Step:
    """One change to the shared tables. `tables`: the shared tables it creates, alters or reads;
    two steps that touch one table run in the order of SHARED_STEPS in every chain.
    `irreversible`: why it cannot be undone, if it cannot."""

    tables: tuple[str, ...] = ()
    irreversible: str | None = None

    def upgrade(self) -> None:
        raise NotImplementedError

    def downgrade(self) -> None:
        raise NotImplementedError(f"{self.name} cannot be undone: {self.irreversible}")

    @property
    def name(self) -> str:
        """Its name in this module: CaptiveKeys is captive_keys."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    def __repr__(self) -> str:
        return self.name


def upgrade(applied: Sequence[Step]) -> None:
    """A revision's upgrade of the shared tables: its steps, in order."""
    for step in applied:
        step.upgrade()


def revision(*applied: Step):
    """The upgrade, downgrade and steps of a revision that only applies shared steps."""
    return (lambda: upgrade(applied)), (lambda: downgrade(applied)), applied


def downgrade(applied: Sequence[Step]) -> None:
    """A revision's downgrade of the shared tables: its steps undone, last first. One that cannot be
    undone stops it before anything is dropped, so that no revision is left half undone."""
    for step in applied:
        if step.irreversible:
            step.downgrade()  # raises
    for step in reversed(applied):
        step.downgrade()


class EventStore(Step):
    """The log of record, what the relay publishes from it, and what the consumer has applied."""

    tables = ("events", "inbox", "outbox")

    def upgrade(self) -> None:
        op.create_table(
            "events",
            sa.Column("position", POSITION, autoincrement=True, nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("stream_id", sa.String(length=64), nullable=False),
            sa.Column("stream_version", sa.Integer(), nullable=False),
            sa.Column("event_type", sa.String(length=100), nullable=False),
            sa.Column("schema_version", sa.Integer(), nullable=False),
            sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("envelope", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("position", name=op.f("pk_events")),
            sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
            sa.UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
        )
        op.create_table(
            "inbox",
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("event_type", sa.String(length=100), nullable=False),
            sa.Column("topic", sa.String(length=200), nullable=False),
            sa.Column("kafka_partition", sa.Integer(), nullable=False),
            sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
            sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbox")),
        )
        op.create_table(
            "outbox",
            sa.Column("id", POSITION, autoincrement=True, nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("topic", sa.String(length=200), nullable=False),
            sa.ForeignKeyConstraint(["event_id"], ["events.event_id"], name=op.f("fk_outbox_event_id_events")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
            sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        )

    def downgrade(self) -> None:
        op.drop_table("outbox")
        op.drop_table("inbox")
        op.drop_table("events")


class IdempotencyKeys(Step):
    """A client's retried write (same Idempotency-Key) gets the first answer back."""

    tables = ("idempotency_keys",)

    def upgrade(self) -> None:
        op.create_table(
            "idempotency_keys",
            sa.Column("key", sa.String(length=200), nullable=False),
            sa.Column("request_hash", sa.String(length=64), nullable=False),
            sa.Column("status_code", sa.Integer(), nullable=False),
            sa.Column("response", sa.JSON(), nullable=False),
            sa.Column("headers", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
        )

    def downgrade(self) -> None:
        op.drop_table("idempotency_keys")


class AccessControl(Step):
    """Partner-state visibility and the access log. Both are read models rebuilt from events; a
    deployment that already holds wishes and consents rebuilds partner_visibility with
    `captives replay <service>`."""

    tables = ("partner_visibility", "access_log")

    def upgrade(self) -> None:
        op.create_table(
            "partner_visibility",
            sa.Column("captive_id", sa.String(length=64), nullable=False),
            sa.Column("state", sa.String(length=2), nullable=False),
            sa.Column("wish", sa.Boolean(), nullable=False),
            sa.Column("consent", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("captive_id", "state", name=op.f("pk_partner_visibility")),
        )
        op.create_table(
            "access_log",
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("captive_id", sa.String(length=64), nullable=False),
            sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("client_id", sa.String(length=200), nullable=False),
            sa.Column("actor", sa.String(length=200), nullable=False),
            sa.Column("agency", sa.String(length=200), nullable=False),
            sa.Column("purpose", sa.String(length=500), nullable=True),
            sa.Column("method", sa.String(length=10), nullable=False),
            sa.Column("path", sa.String(length=2000), nullable=False),
            sa.Column("tiers", sa.String(length=200), nullable=False),
            sa.PrimaryKeyConstraint("event_id", "captive_id", name=op.f("pk_access_log")),
        )
        op.create_index("ix_access_log_captive", "access_log", ["captive_id", "accessed_at"])
        op.create_index("ix_access_log_agency", "access_log", ["agency", "accessed_at"])

    def downgrade(self) -> None:
        op.drop_table("access_log")
        op.drop_table("partner_visibility")


class OutboxTraceContext(Step):
    """The W3C trace context of what appended each event, sent with it as Kafka headers."""

    tables = ("outbox",)

    def upgrade(self) -> None:
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.add_column(sa.Column("traceparent", sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column("tracestate", sa.String(length=512), nullable=True))

    def downgrade(self) -> None:
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.drop_column("tracestate")
            batch_op.drop_column("traceparent")


class ChainLinks(Step):
    """The consumer's view of the upstream streams' hash chains (shared/evidence/chain.py): one row
    per upstream event consumed, the hash of its bytes, which the stream's next event must name as
    its prevhash; a record that does not is dead-lettered."""

    tables = ("chain_links", "inbox")  # inbox: read, for the mark below

    # shared/eventstore/tables.py CHECKED_AFTER_LEGACY, and the hash of no event before the first
    LEGACY = "*"
    GENESIS = "0" * 64

    def upgrade(self) -> None:
        links = op.create_table(
            "chain_links",
            sa.Column("stream", sa.String(length=200), nullable=False),
            sa.Column("stream_version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.Column("chained", sa.Boolean(), nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("stream", "stream_version", name=op.f("pk_chain_links")),
        )
        # Events applied before this step left no links: their streams' next records cannot be
        # checked against them, so a database whose consumer has applied any is marked, and such a
        # stream's chain is checked from the first record it gets after the upgrade. A database
        # whose consumer applied nothing (a new one; intake's, which consumed nothing before
        # intake_0009) is not marked: every stream's chain is checked from its first event.
        if op.get_bind().execute(sa.text("SELECT 1 FROM inbox LIMIT 1")).first():
            op.bulk_insert(
                links,
                [
                    {
                        "stream": self.LEGACY,
                        "stream_version": 0,
                        "hash": self.GENESIS,
                        "chained": False,
                        "event_id": "before-chain-checks",
                    }
                ],
            )

    def downgrade(self) -> None:
        op.drop_table("chain_links")


class CaptiveKeys(Step):
    """One AES-256 key per captive, sealing his personal data (crypto-shredding), wrapped with the
    service's key-encryption key (shared/privacy/keyring.py)."""

    tables = ("captive_keys",)
    irreversible = "the table holds the only copies of the captives' keys; restore a backup to go back"

    def upgrade(self) -> None:
        op.create_table(
            "captive_keys",
            sa.Column("captive_id", sa.String(length=64), nullable=False),
            sa.Column("key", sa.LargeBinary(length=32), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_captive_keys")),
        )


class ErasedCaptives(Step):
    """Tombstones: whose key IdentityErased destroyed (later writes about him are refused)."""

    tables = ("erased_captives",)

    def upgrade(self) -> None:
        op.create_table(
            "erased_captives",
            sa.Column("captive_id", sa.String(length=64), nullable=False),
            sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("captive_id", name=op.f("pk_erased_captives")),
        )

    def downgrade(self) -> None:
        op.drop_table("erased_captives")


class OutboxParking(Step):
    """A row the broker refuses for good is set aside with its error; discarded events are kept."""

    tables = ("outbox", "outbox_discarded")

    def upgrade(self) -> None:
        # Parked: the broker refused the row for a reason retrying cannot cure; it and the later rows
        # of its stream wait for an operator (captives outbox retry), other streams go on.
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.add_column(sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column("parked_error", sa.String(length=2000), nullable=True))
        # What an operator discarded (captives outbox discard): the event as stored, and who, when, why.
        op.create_table(
            "outbox_discarded",
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("stream_id", sa.String(length=64), nullable=False),
            sa.Column("stream_version", sa.Integer(), nullable=False),
            sa.Column("event_type", sa.String(length=100), nullable=False),
            sa.Column("topic", sa.String(length=200), nullable=False),
            sa.Column("envelope", sa.Text(), nullable=False),
            sa.Column("error", sa.String(length=2000), nullable=False),
            sa.Column("reason", sa.String(length=2000), nullable=False),
            sa.Column("discarded_by", sa.String(length=200), nullable=False),
            sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("event_id", name=op.f("pk_outbox_discarded")),
        )

    def downgrade(self) -> None:
        op.drop_table("outbox_discarded")
        with op.batch_alter_table("outbox", schema=None) as batch_op:
            batch_op.drop_column("parked_error")
            batch_op.drop_column("parked_at")


class DeadLetterParking(Step):
    """The consumer's dead letters and what it holds behind them, per captive, in order
    (shared/eventstore/consumer.py): what survives a restart while offsets move on; and operators'
    decisions about them."""

    tables = ("parked_records", "dead_letter_decisions")

    def upgrade(self) -> None:
        op.create_table(
            "parked_records",
            sa.Column("position", POSITION, autoincrement=True, nullable=False),
            sa.Column("captive", sa.String(length=200), nullable=False),
            sa.Column("topic", sa.String(length=200), nullable=False),
            sa.Column("kafka_partition", sa.Integer(), nullable=False),
            sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=True),
            sa.Column("event_type", sa.String(length=100), nullable=True),
            sa.Column("schema_version", sa.Integer(), nullable=True),
            sa.Column("record_key", sa.LargeBinary(), nullable=True),
            sa.Column("value", sa.LargeBinary(), nullable=True),
            sa.Column("headers", sa.JSON(), nullable=False),
            sa.Column("state", sa.String(length=20), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("request", sa.String(length=20), nullable=True),
            sa.Column("requested_by", sa.String(length=200), nullable=True),
            sa.Column("request_reason", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("position", name=op.f("pk_parked_records")),
            sa.UniqueConstraint("topic", "kafka_partition", "kafka_offset", name="uq_parked_records_record"),
        )
        op.create_index(op.f("ix_parked_records_captive"), "parked_records", ["captive"], unique=False)
        # Who redrove or discarded which dead letter, why, and what came of it (replay skips the discarded).
        op.create_table(
            "dead_letter_decisions",
            sa.Column("id", POSITION, autoincrement=True, nullable=False),
            sa.Column("action", sa.String(length=20), nullable=False),
            sa.Column("outcome", sa.Text(), nullable=False),
            sa.Column("captive", sa.String(length=200), nullable=False),
            sa.Column("topic", sa.String(length=200), nullable=False),
            sa.Column("kafka_partition", sa.Integer(), nullable=False),
            sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=True),
            sa.Column("event_type", sa.String(length=100), nullable=True),
            sa.Column("record_hash", sa.String(length=64), nullable=True),
            sa.Column("decided_by", sa.String(length=200), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_decisions")),
        )

    def downgrade(self) -> None:
        op.drop_table("dead_letter_decisions")
        op.drop_index(op.f("ix_parked_records_captive"), table_name="parked_records")
        op.drop_table("parked_records")


event_store = EventStore()
idempotency_keys = IdempotencyKeys()
access_control = AccessControl()
outbox_trace_context = OutboxTraceContext()
chain_links = ChainLinks()
captive_keys = CaptiveKeys()
erased_captives = ErasedCaptives()
outbox_parking = OutboxParking()
dead_letter_parking = DeadLetterParking()

# The order the steps were made in, which status's and disposition's chains follow. Intake's chain
# took some in another order where none mattered: it sealed identities before the others (captive
# keys in intake_0003, before access control) and became a consumer after them (chain links and
# dead-letter parking in intake_0009, after outbox parking). Two steps that touch the same table
# run in this order in every chain.
SHARED_STEPS: tuple[Step, ...] = (
    event_store,
    idempotency_keys,
    access_control,
    outbox_trace_context,
    chain_links,
    captive_keys,
    erased_captives,
    outbox_parking,
    dead_letter_parking,
)
