"""How projections reach the rows of their read models: `rows(session)`, then get / insert /
update / upsert / update_where.

Where an event is applied as it happens (the API, the consumers, a migration), each call is one
statement on the session, run at once: `LiveRows`. Where replay rebuilds the read models
(shared/eventstore/replay.py) the session carries a `BatchedRows` instead, and the calls change no SQL until
the batch ends:

- every row an event reads or writes is kept in memory for the batch, loaded on first use (or
  ahead, for the batch's subjects); a write lands on that copy, in event order, so a later read
  sees every earlier write and the last write to a column wins, exactly as one statement per call;
- at the end of the batch each changed row is written once: the new rows of a table with one
  COPY on PostgreSQL (an executemany INSERT elsewhere), the changed ones with one executemany
  UPDATE (a row inserted and then updated in the same batch is inserted with its final values).

So a batch leaves the same rows as its events applied one at a time. The copy holds each value as
the database gives it back (times in UTC, JSON as parsed from its text); a value it cannot hold
exactly (a default, a type it does not know) is read back from the database after the table is
written. Where the table itself could make the order of writes matter (foreign keys, unique
constraints besides the key, defaults on update), `BatchedRows` writes what it holds and runs the
call as `LiveRows` would. Any statement run on the session by other code first sees the batch
written, and if it may write, the copies are dropped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

BATCHED = "shared.eventstore.batched"  # the key of the session's BatchedRows in `session.info`


class Rows(Protocol):
    def get(self, table: sa.Table, key: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The row whose primary key is `key`, or None."""

    def insert(self, table: sa.Table, *rows: Mapping[str, Any]) -> None:
        """New rows; a key that is already there is an error."""

    def update(self, table: sa.Table, key: Mapping[str, Any], **values: Any) -> bool:
        """Set `values` in the row whose primary key is `key`; whether there was one."""

    def upsert(self, table: sa.Table, key: Mapping[str, Any], **values: Any) -> None:
        """Set `values` in the row with this key, or insert one with the key and `values`."""

    def update_where(self, table: sa.Table, where: Mapping[str, Any], **values: Any) -> None:
        """Set `values` in every row whose columns equal `where`."""


def rows(session: Session) -> Rows:
    """The rows of `session`'s read models: batched while replay rebuilds them, else live."""
    return session.info.get(BATCHED) or LiveRows(session)


def matching(table: sa.Table, where: Mapping[str, Any]) -> list:
    return [table.c[name] == value for name, value in where.items()]


class LiveRows:
    """One statement per call, on the session, at once."""

    def __init__(self, session: Session):
        self.session = session

    def get(self, table, key):
        found = self.session.execute(sa.select(table).where(*matching(table, key))).first()
        return None if found is None else found._mapping

    def insert(self, table, *rows):
        if rows:
            self.session.execute(sa.insert(table), rows[0] if len(rows) == 1 else list(rows))

    def update(self, table, key, **values):
        return bool(self.session.execute(sa.update(table).where(*matching(table, key)).values(**values)).rowcount)

    def upsert(self, table, key, **values):
        if not self.update(table, key, **values):
            self.insert(table, {**key, **values})

    def update_where(self, table, where, **values):
        self.session.execute(sa.update(table).where(*matching(table, where)).values(**values))


# -- batched --------------------------------------------------------------------------------------
