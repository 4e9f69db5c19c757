"""Sealing personal data with a key per captive, in every service, and crypto-shredding it.

Each service keeps, in its own database, one random AES-256 data key per captive
(`captive_keys`), and seals with it, inside every event it appends, the values that say who he
is or what was written about him: every identity-tier value and every free text marked
`tiered(..., sealed=True)` (shared/contracts/withheld.py lists the paths of each event type).
The sealing happens in the event store's append (the `Keyring` is the store's `Sealer`), so the
events table, the hash chain, the outbox, the topic and every read model copied from events hold
ciphertext. Readers without the key (other services, replays) decode `{"withheld": "sealed"}`.

Keys at rest are wrapped (AES-256-GCM, bound to the service and the captive) with a
key-encryption key (KEK) kept outside the database: an environment secret
(`<SERVICE>_KEK`, 32 bytes in base64) or a file (`<SERVICE>_KEK_FILE`, default
`var/keys/<service>.kek`, created on first use with O_EXCL and mode 0600; a file that group or
others may read is refused). A copy of a database file alone decrypts nothing.

Erasure: intake's `captives erase` destroys intake's key and publishes `IdentityErased`; status and
disposition consume it and destroy theirs (`Keyring.erase`). A tombstone (`erased_captives`)
remains, so a later write that would carry sealed data about him is refused (`PersonalDataErased`,
the API's 409), and reads show `{"withheld": "erased"}`.

Formats (both versioned, so old data stays readable):
- a sealed event: its `data` without the sealed values plus `sealed: {algorithm: "AES-256-GCM",
  nonce, ciphertext, paths}`, the ciphertext bound to the event id, subject, type and paths
  (the format intake has published since intake_0003, unchanged);
- a wrapped key: b"\\x01" + 12-byte nonce + AES-GCM(KEK, key, aad="captives-key|<service>|<captive>").
  A stored value of exactly 32 bytes is a key from before wrapping began: `rewrap_legacy` (run at
  every start) wraps it in place.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.commands.policy import Policies, Policy
from shared.contracts import DecodedEvent, InvalidEvent
from shared.contracts.envelope import Causes, cause_of, utc_now
from shared.contracts.withheld import ERASED, SEALED_KEY, Withheld, identity_paths, put, sealed_paths, split, withhold
from shared.platform.db import rows_where_in
from shared.platform.errors import DomainConflict
from shared.privacy.kek import KEY_BYTES, KekError
from shared.privacy.tables import KeyTables

log = structlog.get_logger(__name__)

ALGORITHM = "AES-256-GCM"
NONCE_BYTES = 12  # 96 bits, random per event: a key seals at most a few thousand events
WRAP_VERSION = 1


# -- errors ---------------------------------------------------------------------------------------


class PersonalDataErased(DomainConflict):
    """Sealed data about a captive whose key was destroyed (the API answers 409)."""

    def __init__(self, captive_id: str, fields: list[str]):
        self.captive_id = captive_id
        super().__init__(
            f"the identity of {captive_id} was erased with his key (captives erase): nothing that identifies "
            f"him or is written about him can be recorded any more (this request carries: {', '.join(fields)})"
        )


class SealBroken(InvalidEvent):
    """A sealed event that does not open with its captive's key: altered, or moved from another event."""


# -- the keyring -----------------------------------------------------------------------------------

E = TypeVar("E")


class Keyring:
    """One service's captive keys: the event store's `Sealer` (call it), `open` for reads, `erase`."""

    def __init__(self, service: str, tables: KeyTables, kek: Callable[[], bytes] | bytes):
        self.service = service
        self.tables = tables
        self._kek_source = kek
        self._kek: bytes | None = kek if isinstance(kek, bytes) else None
        self._lock = threading.Lock()

    # The KEK is read when first needed, so building an app (e.g. to write the contract
    # documents) touches no key file; `ServiceRuntime.start` calls `check` to fail early.
    @property
    def kek(self) -> bytes:
        if self._kek is None:
            with self._lock:
                if self._kek is None:
                    self._kek = self._kek_source()  # type: ignore[operator]
        return self._kek

    def check(self, session: Session) -> int:
        """Load the KEK, wrap keys stored before wrapping began, and prove the KEK opens the
        keys there are (KekError otherwise). Returns how many keys were wrapped now."""
        if not self.kek:  # read (or created) now: a missing or too widely readable KEK stops the start
            raise KekError(f"{self.service}: no key-encryption key")
        wrapped = self.rewrap_legacy(session)
        row = session.execute(sa.select(self.tables.keys.c.captive_id, self.tables.keys.c.key).limit(1)).first()
        if row is not None:
            self.unwrap(row.captive_id, bytes(row.key))
        return wrapped

    # -- wrapping --

    def _aad(self, captive_id: str) -> bytes:
        return f"captives-key|{self.service}|{captive_id}".encode()

    def wrap(self, captive_id: str, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return bytes([WRAP_VERSION]) + nonce + AESGCM(self.kek).encrypt(nonce, key, self._aad(captive_id))

    def unwrap(self, captive_id: str, stored: bytes) -> bytes:
        if len(stored) == KEY_BYTES:  # stored before wrapping began (rewrap_legacy wraps it)
            return stored
        if not stored or stored[0] != WRAP_VERSION or len(stored) != 1 + NONCE_BYTES + KEY_BYTES + 16:
            raise KekError(f"{self.service}: the key of {captive_id} is in no known format")
        try:
            nonce, sealed = stored[1 : 1 + NONCE_BYTES], stored[1 + NONCE_BYTES :]
            return AESGCM(self.kek).decrypt(nonce, sealed, self._aad(captive_id))
        except InvalidTag:
            raise KekError(
                f"{self.service}: the key of {captive_id} does not unwrap with this key-encryption key "
                "(a different KEK, or the stored key was altered or copied from another captive)"
            ) from None

    def rewrap_legacy(self, session: Session) -> int:
        keys = self.tables.keys
        legacy = [
            (captive_id, bytes(key))
            for captive_id, key in session.execute(sa.select(keys.c.captive_id, keys.c.key))
            if len(bytes(key)) == KEY_BYTES
        ]
        for captive_id, key in legacy:
            session.execute(
                sa.update(keys).where(keys.c.captive_id == captive_id).values(key=self.wrap(captive_id, key))
            )
        if legacy:
            log.info("captive keys wrapped with the key-encryption key", service=self.service, keys=len(legacy))
        return len(legacy)

    # -- keys --

    def keys(self, session: Session, captive_ids: set[str]) -> dict[str, bytes]:
        if not captive_ids:
            return {}
        keys = self.tables.keys
        query = sa.select(keys.c.captive_id, keys.c.key)
        return {
            captive_id: self.unwrap(captive_id, bytes(key))
            for captive_id, key in rows_where_in(session, query, keys.c.captive_id, sorted(captive_ids))
        }

    def erased(self, session: Session, captive_ids: set[str]) -> set[str]:
        if not captive_ids:
            return set()
        erased = self.tables.erased
        query = sa.select(erased.c.captive_id)
        return {captive_id for (captive_id,) in rows_where_in(session, query, erased.c.captive_id, sorted(captive_ids))}

    def _create(self, session: Session, captive_ids: set[str]) -> None:
        """A key for each of `captive_ids` that has none; a concurrent writer's key wins."""
        keys = self.tables.keys
        now = utc_now()
        rows = [
            {"captive_id": captive_id, "key": self.wrap(captive_id, os.urandom(KEY_BYTES)), "created_at": now}
            for captive_id in sorted(captive_ids)
        ]
        dialect = session.get_bind().dialect.name
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
        if insert is None:
            session.execute(sa.insert(keys), rows)
        else:
            session.execute(insert(keys).on_conflict_do_nothing(index_elements=[keys.c.captive_id]), rows)

    # -- sealing (the event store's hook) --

    def __call__(self, session: Session, events: Sequence[Any]) -> list[dict[str, Any]]:
        """The `Sealer`: each event's data with its sealed values (all of them, None included,
        so the sealed form does not tell which were given) replaced by one `sealed` object. The
        captive's key is created with his first such event, in the caller's transaction; an
        event carrying a value about an erased captive is refused (PersonalDataErased)."""
        datas = [event.data for event in events]
        to_seal = [(index, event) for index, event in enumerate(events) if identity_paths(type(event.payload))]
        if not to_seal:
            return datas
        subjects = {event.subject for _, event in to_seal}
        keys = self.keys(session, subjects)
        missing = subjects - set(keys)
        erased = self.erased(session, missing)
        if missing - erased:
            self._create(session, missing - erased)
            keys.update(self.keys(session, missing - erased))
        for index, event in to_seal:
            paths = identity_paths(type(event.payload))
            clear, values = split(event.data, paths)
            key = keys.get(event.subject)
            if key is None:
                given = [path for path, value in values.items() if value not in (None, [])]
                if given:
                    raise PersonalDataErased(event.subject, given)
                continue  # nothing about him to keep (e.g. a release without a place)
            datas[index] = seal_data(key, event.event_id, event.subject, event.payload.event_type, clear, values)
        return datas

    # -- opening (reads) --

    def open(self, session: Session, events: Sequence[E]) -> list[E]:
        """`events` (StoredEvents or DecodedEvents) with their sealed values put back: same
        kinds, same order, one key query (chunked) for all the captives among them. Where a
        captive's key was destroyed, the values are `Withheld("erased")`; events sealed by
        another service (whose keys this one does not hold) stay as they are.

        The opened events are for reading and answering: their `data` is no longer the bytes
        the hash chain covers. Raises SealBroken if a sealed value does not open."""
        from shared.eventstore import StoredEvent

        decoded = [item.event if isinstance(item, StoredEvent) else item for item in events]
        mine = [self.holds(event) for event in decoded]
        subjects = {event.envelope.subject for event, own in zip(decoded, mine, strict=True) if own}
        keys = self.keys(session, subjects)
        opened: list[E] = []
        for item, event, own in zip(events, decoded, mine, strict=True):
            if not own:
                opened.append(item)
                continue
            event = open_event(event, keys.get(event.envelope.subject))
            opened.append(StoredEvent(item.position, event) if isinstance(item, StoredEvent) else event)  # type: ignore[arg-type]
        return opened

    def holds(self, event: DecodedEvent) -> bool:
        """Whether `event` is one this service sealed (its source), with something sealed in it."""
        return SEALED_KEY in event.envelope.data and event.envelope.source == f"/services/{self.service}"

    # -- erasure --

    def erase(self, session: Session, captive_id: str, *, event_id: str, erased_at: datetime) -> bool:
        """Destroy the captive's key and leave a tombstone, in the caller's transaction. False
        if he was erased before (nothing done). Call `scrub` once the transaction committed."""
        erased = self.tables.erased
        if self.erased(session, {captive_id}):
            return False
        if session.get_bind().dialect.name == "sqlite":
            # Overwrite the deleted row's bytes in the file instead of only unlinking them.
            session.execute(sa.text("PRAGMA secure_delete = ON"))
        session.execute(sa.delete(self.tables.keys).where(self.tables.keys.c.captive_id == captive_id))
        session.execute(sa.insert(erased).values(captive_id=captive_id, erased_at=erased_at, event_id=event_id))
        return True

    def scrub(self, engine: sa.Engine) -> str:
        """After a key was deleted: make the database drop the deleted row's bytes now.
        PostgreSQL: VACUUM (FULL) rewrites the keys table without the dead row (a plain VACUUM
        only marks its space free). SQLite: secure_delete overwrote the row; a checkpoint clears
        it from the WAL. Neither reaches WAL archives or backups taken while the key existed."""
        table = self.tables.keys.name
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                # VACUUM (FULL) copies a deleted row that a transaction open since before the
                # delete may still see: wait (bounded) until every such transaction has ended.
                deleted_at = connection.exec_driver_sql("SELECT clock_timestamp()").scalar()
                waited = _wait_for_older_transactions(connection, deleted_at)
                connection.exec_driver_sql(f"VACUUM (FULL) {table}")
                if waited is not None:
                    return (
                        f"VACUUM (FULL) {table}; WARNING: {waited} transaction(s) older than the erasure were "
                        f"still open and may have kept the deleted row: run VACUUM (FULL) {table} once they end"
                    )
            return f"VACUUM (FULL) {table}"
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return "PRAGMA wal_checkpoint(TRUNCATE)"
        return "nothing (unknown database)"

    def key_destruction(self, engine: Callable[[], sa.Engine] | None) -> Policies:
        """The privacy wing's policy on `IdentityErased`: this service destroys its own key for him
        (intake as it records the erasure, status and disposition as they consume it), then, with
        an `engine`, scrubs the keys table once that committed (without one, the caller scrubs).
        It appends nothing."""
        return Policies(KeyDestruction(self, engine))

    def _scrub_later(self, engine: sa.Engine) -> None:
        def scrub() -> None:
            try:
                log.info("keys table scrubbed", service=self.service, how=self.scrub(engine))
            except Exception:  # the key row is gone already; the bytes go at the next checkpoint
                log.warning("keys table not scrubbed now", service=self.service, exc_info=True)

        threading.Thread(target=scrub, name=f"{self.service}-scrub", daemon=True).start()


# -- the sealed form of one event's data ----------------------------------------------------------


def seal_data(
    key: bytes, event_id: str, subject: str, event_type: str, clear: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    sealed_at = sorted(values)
    nonce = os.urandom(NONCE_BYTES)
    aad = _associated_data(event_id, subject, event_type, sealed_at)
    ciphertext = AESGCM(key).encrypt(nonce, orjson.dumps(values, option=orjson.OPT_SORT_KEYS), aad)
    return {
        **clear,
        SEALED_KEY: {"algorithm": ALGORITHM, "nonce": _b64(nonce), "ciphertext": _b64(ciphertext), "paths": sealed_at},
    }


def open_event(event: DecodedEvent, key: bytes | None) -> DecodedEvent:
    """`event` with its sealed values in clear, or `Withheld("erased")` where `key` is None."""
    envelope = event.envelope
    if key is None:
        data = withhold(envelope.data, ERASED)
    else:
        block = envelope.data[SEALED_KEY]
        aad = _associated_data(envelope.id, envelope.subject, envelope.type, sealed_paths(envelope.data))
        try:
            if block.get("algorithm") != ALGORITHM:
                raise ValueError(f"unknown algorithm {block.get('algorithm')!r}")
            plain = AESGCM(key).decrypt(
                base64.b64decode(block["nonce"], validate=True),
                base64.b64decode(block["ciphertext"], validate=True),
                aad,
            )
        except (InvalidTag, KeyError, TypeError, ValueError, binascii.Error) as error:
            raise SealBroken(
                f"event {envelope.id} ({envelope.type} of {envelope.subject}): its sealed values do not "
                f"open with the captive's key ({type(error).__name__}): altered, or copied from another event"
            ) from None
        data = put(envelope.data, orjson.loads(plain))
    payload = type(event.payload).model_validate(data)
    return DecodedEvent(envelope.model_copy(update={"data": data}), payload)


def as_published(envelope, payload):
    """The payload as every reader without the key decodes it (`{"withheld": "sealed"}` at the
    sealed paths): what a read model copies from an event, so the live service and a replay
    from the topic write the same rows, and no read model holds clear text."""
    if SEALED_KEY not in envelope.data:
        return payload
    if any(isinstance(_at(payload, path), Withheld) for path in sealed_paths(envelope.data)):
        return payload  # decoded from the published bytes already
    return type(payload).model_validate(withhold(envelope.data))


def _at(value: Any, path: str) -> Any:
    for name in path.split("."):
        value = getattr(value, name, None)
    return value


def _associated_data(event_id: str, captive_id: str, event_type: str, paths: list[str]) -> bytes:
    """What the ciphertext is bound to: it opens only in this event, of this captive and type,
    at these paths (copying it into another event or captive's record makes it fail to open)."""
    return orjson.dumps(
        {"id": event_id, "subject": captive_id, "type": event_type, "paths": paths}, option=orjson.OPT_SORT_KEYS
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _wait_for_older_transactions(connection, since, timeout_s: float = 60.0) -> int | None:
    """None once no other transaction in this database began before `since`; otherwise, after
    `timeout_s`, how many still are open."""
    deadline = time.monotonic() + timeout_s
    while True:
        older = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start < :since"
            ),
            {"since": since},
        ).scalar()
        if not older:
            return None
        if time.monotonic() > deadline:
            return older
        time.sleep(0.2)


class KeyDestruction(Policy):
    """Erasure reaches every service: intake destroys its key as it records IdentityErased, and
    every service that consumes intake's topic destroys its own."""

    name = "key destruction"
    reacts_to = frozenset({"IdentityErased"})

    def __init__(self, keyring: Keyring, engine: Callable[[], sa.Engine] | None):
        self.keyring, self.engine = keyring, engine

    def react(self, session: Session, store, captive_ids: list[str] | None, causes: Causes) -> list:
        for captive_id in captive_ids or []:
            cause = cause_of(causes, captive_id)
            destroyed = self.keyring.erase(session, captive_id, event_id=cause.id, erased_at=cause.recorded_at)
            if destroyed:
                log.info("captive key destroyed", service=self.keyring.service, captive_id=captive_id)
            if destroyed and self.engine is not None:
                sa.event.listen(
                    session, "after_commit", lambda _session: self.keyring._scrub_later(self.engine()), once=True
                )
        return []
