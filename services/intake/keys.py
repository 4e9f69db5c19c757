"""Crypto-shredding of identity-tier data: one key per captive, and erasure by destroying it.

Intake seals the identity-tier values of every event it appends (names, date of birth, where
he was taken and is held, documents, consented details; shared/contracts/withheld.py says
which) with the captive's own AES-256-GCM key, kept only in intake's `captive_keys` table. The
sealing happens in the event store's append (`seal` is intake's `EventStore` sealer), so the
events table, the hash chain, the outbox and the topic all hold ciphertext. Other services never
see the values: `decode` gives them `Withheld("sealed")` and the reference tier in clear.

- `open_events(session, events)`: intake's own reads put the values back with the key; where the
  key was destroyed they become `Withheld("erased")`.
- `erase(...)` (`captives erase <id>`): deletes the key and appends `IdentityErased`. Every
  sealed copy, in the database, on the topic and in any backup of either, is then unreadable,
  and the log of record (its bytes, its chain, its checkpoints) is unchanged.

Events recorded before sealing began (before migration intake_0003) keep their values in clear;
`erase` counts them in its answer, since destroying the key cannot reach them.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session, sessionmaker

from services.intake.projections import project
from services.intake.tables import captive_keys
from shared.contracts import DecodedEvent, EventEnvelope, EventMetadata, InvalidEvent
from shared.contracts.envelope import utc_now
from shared.contracts.intake import CaptiveRegistered, IdentityErased
from shared.contracts.withheld import ERASED, SEALED_KEY, identity_paths, put, sealed_paths, split, withhold
from shared.db import rows_where_in
from shared.errors import DomainConflict
from shared.eventstore import ConcurrencyConflict, EventStore, StoredEvent, Unsealed

ALGORITHM = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12  # 96 bits, random per event: a key seals at most a few thousand events


class IdentityWasErased(DomainConflict):
    """An identity-tier value for a captive whose key was destroyed (the API answers 409)."""

    def __init__(self, captive_id: str, fields: list[str]):
        self.captive_id = captive_id
        super().__init__(
            f"the identity of {captive_id} was erased with his key (captives erase): nothing that "
            f"identifies him can be recorded or amended any more (this request carries: {', '.join(fields)})"
        )


class SealBroken(InvalidEvent):
    """A sealed event that does not open with its captive's key: altered, or moved from another event."""


class UnknownCaptive(LookupError):
    pass


# -- sealing (the event store's hook) -----------------------------------------------------------


def seal(session: Session, events: Sequence[Unsealed]) -> list[dict[str, Any]]:
    """Intake's `EventStore` sealer: each event's data with its identity-tier values (all of
    them, None included, so the sealed form does not tell which were given) replaced by one
    `sealed` object. A registration creates the captive's key, in the caller's transaction;
    other events use it, and are refused (IdentityWasErased) if it was destroyed."""
    datas = [event.data for event in events]
    to_seal = [(index, event) for index, event in enumerate(events) if identity_paths(type(event.payload))]
    if not to_seal:
        return datas
    new = {event.subject for _, event in to_seal if isinstance(event.payload, CaptiveRegistered)}
    keys = _keys(session, {event.subject for _, event in to_seal} - new)
    if new:
        created = {captive_id: os.urandom(KEY_BYTES) for captive_id in sorted(new)}
        now = utc_now()
        session.execute(
            sa.insert(captive_keys),
            [{"captive_id": captive_id, "key": key, "created_at": now} for captive_id, key in created.items()],
        )
        keys.update(created)
    for index, event in to_seal:
        paths = identity_paths(type(event.payload))
        clear, values = split(event.data, paths)
        key = keys.get(event.subject)
        if key is None:
            given = [path for path, value in values.items() if value is not None]
            if given:
                raise IdentityWasErased(event.subject, given)
            continue  # nothing identifying to keep (e.g. a release without a place)
        sealed_at = sorted(values)
        nonce = os.urandom(NONCE_BYTES)
        aad = _associated_data(event.event_id, event.subject, event.payload.event_type, sealed_at)
        ciphertext = AESGCM(key).encrypt(nonce, orjson.dumps(values, option=orjson.OPT_SORT_KEYS), aad)
        datas[index] = {
            **clear,
            SEALED_KEY: {
                "algorithm": ALGORITHM,
                "nonce": _b64(nonce),
                "ciphertext": _b64(ciphertext),
                "paths": sealed_at,
            },
        }
    return datas


def _associated_data(event_id: str, captive_id: str, event_type: str, paths: list[str]) -> bytes:
    """What the ciphertext is bound to: it opens only in this event, of this captive and type,
    at these paths (copying it into another event or captive's record makes it fail to open)."""
    return orjson.dumps(
        {"id": event_id, "subject": captive_id, "type": event_type, "paths": paths}, option=orjson.OPT_SORT_KEYS
    )


def _keys(session: Session, captive_ids: set[str]) -> dict[str, bytes]:
    if not captive_ids:
        return {}
    query = sa.select(captive_keys.c.captive_id, captive_keys.c.key)
    return {
        captive_id: bytes(key)
        for captive_id, key in rows_where_in(session, query, captive_keys.c.captive_id, sorted(captive_ids))
    }


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# -- opening (intake's reads) -------------------------------------------------------------------

E = TypeVar("E", StoredEvent, DecodedEvent)


def open_events(session: Session, events: Sequence[E]) -> list[E]:
    """`events` (StoredEvents from `store.read_stream` / `read_all`, or DecodedEvents from the
    topic) with their sealed identity values put back: same kinds, same order, one key query
    (chunked) for all the captives among them. Where a captive's key was destroyed, the values
    are `Withheld(withheld="erased")`. An event with nothing sealed comes back as it is.

    The opened events are for reading and answering: their `data` is no longer the bytes the
    hash chain covers (verify chains on what was stored or published, never on opened events).
    Raises SealBroken if a sealed value does not open with its captive's key."""
    decoded = [item.event if isinstance(item, StoredEvent) else item for item in events]
    keys = _keys(session, {event.envelope.subject for event in decoded if SEALED_KEY in event.envelope.data})
    opened: list[E] = []
    for item, event in zip(events, decoded, strict=True):
        if SEALED_KEY not in event.envelope.data:
            opened.append(item)
            continue
        event = _open(event, keys.get(event.envelope.subject))
        opened.append(StoredEvent(item.position, event) if isinstance(item, StoredEvent) else event)
    return opened


def _open(event: DecodedEvent, key: bytes | None) -> DecodedEvent:
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
                f"event {envelope.id} ({envelope.type} of {envelope.subject}): its sealed identity does not "
                f"open with the captive's key ({type(error).__name__}): altered, or copied from another event"
            ) from None
        data = put(envelope.data, orjson.loads(plain))
    payload = type(event.payload).model_validate(data)
    return DecodedEvent(envelope.model_copy(update={"data": data}), payload)


# -- erasure ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    captive_id: str
    event: EventEnvelope  # the IdentityErased event (the earlier one if he was already erased)
    already: bool  # erased before: nothing was done
    clear_events: int  # his events recorded before sealing began, whose identity stays in clear


def erase(
    sessions: sessionmaker[Session],
    store: EventStore,
    captive_id: str,
    *,
    reason: str | None,
    actor: str,
    agency: str,
    attempts: int = 3,
) -> Erasure:
    """Destroy the captive's key and append `IdentityErased` (with its outbox row, so the
    running relay publishes it), in one transaction. A second erasure changes nothing.
    Raises UnknownCaptive. Call `scrub_deleted_keys` afterwards (outside any transaction)."""
    for attempt in range(1, attempts + 1):
        try:
            with sessions.begin() as session:
                stored = store.read_stream(session, captive_id)
                if not stored or not isinstance(stored[0].event.payload, CaptiveRegistered):
                    raise UnknownCaptive(f"no captive {captive_id} in intake's records")
                clear = sum(_in_clear(item.event) for item in stored)
                for item in stored:
                    if isinstance(item.event.payload, IdentityErased):
                        return Erasure(captive_id, item.envelope, already=True, clear_events=clear)
                if session.get_bind().dialect.name == "sqlite":
                    # Overwrite the deleted row's bytes in the file instead of only unlinking them.
                    session.execute(sa.text("PRAGMA secure_delete = ON"))
                session.execute(sa.delete(captive_keys).where(captive_keys.c.captive_id == captive_id))
                event = IdentityErased(captive_id=captive_id, reason=reason, erased_by=actor)
                metadata = EventMetadata(actor=actor, agency=agency)
                [envelope] = store.append(session, captive_id, stored[-1].envelope.stream_version, [event], metadata)
                project(session, envelope, event)
                return Erasure(captive_id, envelope, already=False, clear_events=clear)
        except ConcurrencyConflict:  # a write about him landed meanwhile: read again and redo
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def scrub_deleted_keys(engine: sa.Engine) -> str:
    """After a key was deleted: make the database drop the deleted row's bytes now rather than
    whenever it gets round to it. PostgreSQL: VACUUM (FULL) rewrites the keys table without the
    dead row (a plain VACUUM only marks its space free, and the bytes stay in the page until
    overwritten). SQLite: secure_delete overwrote the row; a checkpoint clears it from the WAL.
    Neither reaches WAL archives or backups taken while the key existed (see README)."""
    table = captive_keys.name
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # VACUUM (FULL) copies a deleted row that a transaction open since before the delete
            # may still see: wait (bounded) until every such transaction has ended.
            deleted_at = connection.exec_driver_sql("SELECT clock_timestamp()").scalar()
            waited = _wait_for_older_transactions(connection, deleted_at)
            connection.exec_driver_sql(f"VACUUM (FULL) {table}")
            if waited is not None:
                return (
                    f"VACUUM (FULL) {table}; WARNING: {waited} transaction(s) older than the erasure were still "
                    f"open and may have kept the deleted row: run VACUUM (FULL) {table} once they end"
                )
        return f"VACUUM (FULL) {table}"
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return "PRAGMA wal_checkpoint(TRUNCATE)"
    return "nothing (unknown database)"


def _in_clear(event: DecodedEvent) -> bool:
    """An event recorded before sealing began, with identity values in clear."""
    if SEALED_KEY in event.envelope.data:
        return False
    _, values = split(event.envelope.data, identity_paths(type(event.payload)))
    return any(value is not None for value in values.values())


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
