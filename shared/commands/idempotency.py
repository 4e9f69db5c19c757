"""Idempotent writes: a POST with an `Idempotency-Key` header answers a retry with the first
response and writes nothing new; the same key with a different request is refused (422).

The key is stored in the same transaction as the write, so a write and its key commit together;
when two requests with one key race, the database's primary key lets one commit, and the other
is rolled back whole and answered with the winner's stored response."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import Header, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.commands.pipeline import ATTEMPTS, retrying
from shared.contracts.envelope import utc_now

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="makes the POST safe to retry: the same key and body return the first response",
    ),
]


@dataclass
class Answer:
    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def response(self, *, replayed: bool = False) -> JSONResponse:
        headers = {**self.headers, **({"Idempotent-Replayed": "true"} if replayed else {})}
        return JSONResponse(self.body, status_code=self.status_code, headers=headers)


def scoped_key(caller: str, method: str, path: str, key: str | None) -> str | None:
    """The stored form of a caller's Idempotency-Key: one per authenticated caller and endpoint,
    so one caller's key never returns, nor reveals, another's answer (a digest: the table holds
    no client id, and every form has the same length)."""
    if key is None:
        return None
    return hashlib.sha256("\n".join((caller, method, path, key)).encode()).hexdigest()


def request_hash(method: str, path: str, body: Any) -> str:
    request = {"method": method, "path": path, "body": body}
    try:
        canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson stops at 64-bit integers; a client may send bigger ones
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()


def run_idempotent(
    session: Session,
    table: sa.Table,
    key: str | None,
    fingerprint: str,
    write: Callable[[Session], Answer],
    after_commit: Callable[[], None] = lambda: None,
    *,
    retry_conflicts: bool = False,
) -> JSONResponse:
    """Run `write` in one transaction, unless `key` already answered this request.

    With `retry_conflicts`, a write that lost a race for a stream version (another writer, e.g.
    the service's own consumer, appended first) is run again from a fresh read, up to 3 times:
    right for commands that add to a record rather than overwrite it (no If-Match)."""
    attempts = ATTEMPTS if retry_conflicts else 1
    return retrying(lambda: _run_once(session, table, key, fingerprint, write, after_commit), attempts)


def _run_once(
    session: Session,
    table: sa.Table,
    key: str | None,
    fingerprint: str,
    write: Callable[[Session], Answer],
    after_commit: Callable[[], None],
) -> JSONResponse:
    if key is not None and (stored := _stored(session, table, key, fingerprint)) is not None:
        return stored.response(replayed=True)
    try:
        with session.begin():
            answer = write(session)
            if key is not None:
                session.execute(
                    sa.insert(table),
                    dict(
                        key=key,
                        request_hash=fingerprint,
                        status_code=answer.status_code,
                        response=answer.body,
                        headers=answer.headers,
                        created_at=utc_now(),
                    ),
                )
    except IntegrityError:
        if key is None:
            raise
        stored = _stored(session, table, key, fingerprint)
        if stored is None:
            raise
        return stored.response(replayed=True)
    after_commit()
    return answer.response()


def _stored(session: Session, table: sa.Table, key: str, fingerprint: str) -> Answer | None:
    with session.begin():
        row = session.execute(sa.select(table).where(table.c.key == key)).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise HTTPException(
            422, f"Idempotency-Key {key!r} was already used for a different request; use a new key for a new request"
        )
    return Answer(row.status_code, jsonable(row.response), dict(row.headers))


def jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))
