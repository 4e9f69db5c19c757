"""`BatchedRows`: the rows of the read models while replay rebuilds them, held for a batch and
written once at its end (how, and why a batch leaves the same rows: shared/eventstore/rows.py)."""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.eventstore.rows import BATCHED, LiveRows, matching
from shared.platform.db import UtcDateTime


class _Unknown:
    """A value the in-memory copy does not hold exactly (a server default, a value of a type it
    cannot normalise): reading it writes the table and reloads the row."""

    def __repr__(self) -> str:
        return "<unknown until written>"


UNKNOWN = _Unknown()
_NOT_NORMALISED = object()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given; event times are always timezone-aware")
    return value.astimezone(UTC)


def _normaliser(column: sa.Column):
    """value -> the value the database gives back for it, or _NOT_NORMALISED where that is not
    certain. What it returns is also what is written, so reads and writes agree."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return lambda value: _utc(value) if isinstance(value, datetime) else _NOT_NORMALISED
    if isinstance(kind, sa.JSON):  # stored as text (json, not jsonb) and parsed back
        return lambda value: json.loads(json.dumps(value))
    if isinstance(kind, sa.Boolean):
        return lambda value: value if type(value) is bool else _NOT_NORMALISED
    if isinstance(kind, sa.Integer):
        return lambda value: value if type(value) is int else _NOT_NORMALISED
    if isinstance(kind, sa.String) and not isinstance(kind, sa.Enum):  # also Text
        return _text
    return lambda value: _NOT_NORMALISED


def _text(value: Any) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, str) and not isinstance(value, Enum):
        return str.__str__(value)  # e.g. a CountryAlpha2: its characters, as a plain str
    return _NOT_NORMALISED


# The columns a batch may look rows up by (hashable, compared by value like the database does).
_LOOKUP_TYPES = (sa.String, sa.Integer, sa.Boolean)


def _batchable(table: sa.Table) -> bool:
    """Whether writes to `table` may be held and coalesced per key: rows of it are independent
    of each other and of other tables' rows, and an UPDATE does nothing but set its values."""
    if not table.primary_key.columns:
        return False
    if table.foreign_keys or any(
        fk.references(table) for other in table.metadata.tables.values() for fk in other.foreign_keys
    ):
        return False
    primary = set(table.primary_key.columns)
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and set(constraint.columns) != primary:
            return False
    if any(index.unique for index in table.indexes):
        return False
    return not any(
        column.onupdate is not None or column.server_onupdate is not None or column.computed is not None
        for column in table.columns
    )


class _TableBatch:
    """The batch's copy of one table: rows by key (None: known not to be there), the new rows
    and the changed columns still to write, and the column values whose rows are all here."""

    def __init__(self, table: sa.Table):
        self.table = table
        self.key_columns = tuple(column.name for column in table.primary_key.columns)
        self.normalisers = {column.name: _normaliser(column) for column in table.columns}
        self.defaults = {column.name: _default(column) for column in table.columns}
        self.json_columns = [column.name for column in table.columns if isinstance(column.type, sa.JSON)]
        self.batchable = _batchable(table)
        self.forget()

    def forget(self) -> None:
        self.rows: dict[tuple, dict | None] = {}
        self.inserted: dict[tuple, dict] = {}
        self.changed: dict[tuple, dict] = {}
        self.complete: set[tuple[str, Any]] = set()
        self.indexes: dict[str, dict[Any, set[tuple]]] = {}

    @property
    def pending(self) -> bool:
        return bool(self.inserted or self.changed)

    def normalised(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        normal = self.normalisers[name](value)
        return UNKNOWN if normal is _NOT_NORMALISED else normal

    def split(self, values: Mapping[str, Any]) -> tuple[dict, dict]:
        """`values` as written (normalised where that is exact, else as given) and as held."""
        written, held = {}, {}
        normalisers = self.normalisers
        for name, value in values.items():
            normal = None if value is None else normalisers[name](value)
            if normal is _NOT_NORMALISED:
                written[name], held[name] = value, UNKNOWN
            else:
                written[name] = held[name] = normal
        return written, held

    def key(self, values: Mapping[str, Any], *, only: bool = False) -> tuple | None:
        """The normalised primary key in `values` (which must hold nothing else if `only`), or
        None if it cannot be held exactly."""
        if (
            not self.batchable
            or not set(self.key_columns) <= set(values)
            or (only and len(values) != len(self.key_columns))
        ):
            return None
        key = tuple(self.normalised(name, values[name]) for name in self.key_columns)
        return None if any(part is UNKNOWN or part is None for part in key) else key

    def known_absent(self, key: tuple) -> bool:
        return any((name, part) in self.complete for name, part in zip(self.key_columns, key, strict=True))

    def hold(self, key: tuple, row: dict | None) -> None:
        """Keep `row` as the copy of `key` (and in the indexes of the columns looked up by value)."""
        previous = self.rows.get(key)
        self.rows[key] = row
        for name, index in self.indexes.items():
            if previous is not None:
                index[previous[name]].discard(key)
            if row is not None:
                index[row[name]].add(key)

    def index(self, name: str) -> dict[Any, set[tuple]]:
        if name not in self.indexes:
            index: dict[Any, set[tuple]] = defaultdict(set)
            for key, row in self.rows.items():
                if row is not None:
                    index[row[name]].add(key)
            self.indexes[name] = index
        return self.indexes[name]


def _default(column: sa.Column) -> Any:
    """What a row inserted without `column` holds in it, as far as it can be known here: NULL,
    unless there is a default (the database's may not be the one the metadata names); that is
    read back from the database."""
    if column.server_default is not None or column.default is not None:
        return UNKNOWN
    return None


class BatchedRows:
    """A batch of replay's writes, held per key and written at `flush()`; see the module's text."""

    def __init__(self, session: Session):
        self.session = session
        self.live = LiveRows(session)
        self.tables: dict[sa.Table, _TableBatch] = {}
        self.prefetching: set[tuple[sa.Table, str]] = set()  # (table, column) rows are looked up by
        self.subjects: list[str] = []
        self._busy = False  # running our own statements
        session.info[BATCHED] = self
        sa.event.listen(session, "do_orm_execute", self._other_statement)

    def close(self) -> None:
        sa.event.remove(self.session, "do_orm_execute", self._other_statement)
        self.session.info.pop(BATCHED, None)

    # -- the batch ---------------------------------------------------------------------------

    def prefetch(self, values: Iterable[str]) -> None:
        """Load ahead the rows whose key starts with one of `values` (replay passes the subjects
        of the batch's events), one query per table, for each table the batch looks up rows of;
        afterwards a key among them that was not found is known to be absent. Until a table's
        first lookup it is not known which tables those are: that lookup loads its table's rows."""
        self.subjects = sorted(set(values))
        for table, name in sorted(self.prefetching, key=lambda pair: (pair[0].name, pair[1])):
            self._prefetch(table, name)

    def _prefetch(self, table: sa.Table, name: str) -> None:
        batch = self._batch(table)
        todo = [value for value in self.subjects if (name, value) not in batch.complete]
        for start in range(0, len(todo), 1000):
            chunk = todo[start : start + 1000]
            self._load(batch, table.c[name].in_(chunk))
            batch.complete.update((name, value) for value in chunk)

    def flush(self) -> None:
        """Write what the batch changed: per table, the new rows, then the changed ones."""
        for batch in self.tables.values():
            self._flush(batch)

    def forget(self) -> None:
        """Drop the copies (after a commit): the next batch loads what it needs again."""
        for batch in self.tables.values():
            if batch.pending:
                raise RuntimeError(f"{batch.table.name}: forgetting rows that were not written")
            batch.forget()

    # -- Rows --------------------------------------------------------------------------------

    def get(self, table, key):
        batch = self._batch(table)
        found = batch.key(key, only=True)
        if found is None:
            return self._live(batch, "get", key)
        row = self._row(batch, found)
        if row is None:
            return None
        if any(value is UNKNOWN for value in row.values()):
            # Written as given; the database says what it holds.
            self._flush(batch)
            self._load(batch, *matching(table, dict(zip(batch.key_columns, found, strict=True))), replace=True)
            row = batch.rows[found]
        shown = dict(row)
        for name in batch.json_columns:  # the caller's to change, as a row from the database is
            if isinstance(shown[name], (dict, list)):
                shown[name] = copy.deepcopy(shown[name])
        return MappingProxyType(shown)

    def insert(self, table, *rows):
        batch = self._batch(table)
        for values in rows:
            if batch.batchable and not values.keys() - batch.normalisers.keys():
                written, held = batch.split(values)
                found = tuple(held.get(name) for name in batch.key_columns)
                if None not in found and UNKNOWN not in found and batch.rows.get(found) is None:
                    batch.inserted[found] = written
                    batch.hold(found, {**batch.defaults, **held})
                    continue
            # Not held exactly, or a duplicate key: the database decides (and refuses).
            self._live(batch, "insert", values)

    def update(self, table, key, **values):
        batch = self._batch(table)
        found = batch.key(key, only=True)
        if found is None or not values or set(values) & set(batch.key_columns) or set(values) - set(batch.normalisers):
            return self._live(batch, "update", key, **values)
        row = self._row(batch, found)
        if row is None:
            return False
        self._change(batch, found, row, values)
        return True

    def upsert(self, table, key, **values):
        if not self.update(table, key, **values):
            self.insert(table, {**key, **values})

    def update_where(self, table, where, **values):
        batch = self._batch(table)
        if batch.batchable and set(where) == set(batch.key_columns):
            self.update(table, where, **values)
            return
        if (
            not batch.batchable
            or len(where) != 1
            or not values
            or set(values) & set(batch.key_columns)
            or set(values) - set(batch.normalisers)
        ):
            self._live(batch, "update_where", where, **values)
            return
        ((name, value),) = where.items()
        normal = batch.normalised(name, value)
        if (
            normal is None
            or normal is UNKNOWN
            or not isinstance(table.c[name].type, _LOOKUP_TYPES)
            or batch.defaults[name] is UNKNOWN
            or UNKNOWN in batch.index(name)
        ):
            self._live(batch, "update_where", where, **values)
            return
        if (name, normal) not in batch.complete and not (self._learn(table, name) and (name, normal) in batch.complete):
            self._load(batch, table.c[name] == normal)
            batch.complete.add((name, normal))
        for found in sorted(batch.index(name).get(normal, ())):
            self._change(batch, found, batch.rows[found], values)

    # -- inside ------------------------------------------------------------------------------

    def _learn(self, table: sa.Table, name: str) -> bool:
        """Note that rows of `table` are looked up by `name` (from now on loaded ahead for the
        subjects), and load them for this batch's; whether that was new."""
        kind = table.c[name].type
        if (table, name) in self.prefetching or not isinstance(kind, sa.String) or isinstance(kind, sa.Enum):
            return False
        self.prefetching.add((table, name))
        self._prefetch(table, name)
        return True

    def _batch(self, table: sa.Table) -> _TableBatch:
        if table not in self.tables:
            self.tables[table] = _TableBatch(table)
        return self.tables[table]

    def _row(self, batch: _TableBatch, key: tuple) -> dict | None:
        if key in batch.rows:
            return batch.rows[key]
        if batch.known_absent(key):
            return None
        if self._learn(batch.table, batch.key_columns[0]) and (key in batch.rows or batch.known_absent(key)):
            return batch.rows.get(key)
        self._load(batch, *matching(batch.table, dict(zip(batch.key_columns, key, strict=True))))
        if key not in batch.rows:
            batch.hold(key, None)
        return batch.rows[key]

    def _load(self, batch: _TableBatch, *where, replace: bool = False) -> None:
        """Hold the rows of the database that match `where` and are not held yet (the database
        has the current version of every row the batch has not touched), or all of them after
        a flush (`replace`)."""
        self._busy = True
        try:
            found = self.session.execute(sa.select(batch.table).where(*where)).mappings().all()
        finally:
            self._busy = False
        for values in found:
            key = batch.key(values)
            if key is not None and (replace or key not in batch.rows):
                batch.hold(key, dict(values))  # as the database gives it

    def _change(self, batch: _TableBatch, key: tuple, row: dict, values: Mapping[str, Any]) -> None:
        written, held = batch.split(values)
        if key in batch.inserted:
            batch.inserted[key].update(written)
        else:
            batch.changed.setdefault(key, {}).update(written)
        batch.hold(key, {**row, **held})

    def _flush(self, batch: _TableBatch) -> None:
        if not batch.pending:
            return
        table = batch.table
        self._busy = True
        try:
            groups: dict[tuple, list[dict]] = defaultdict(list)
            for values in batch.inserted.values():
                groups[tuple(sorted(values))].append(values)
            for names, group in groups.items():
                self._insert(table, names, group)
            groups = defaultdict(list)
            for key, values in batch.changed.items():
                groups[tuple(sorted(values))].append(
                    {
                        **{f"set_{name}": value for name, value in values.items()},
                        **{f"key_{name}": part for name, part in zip(batch.key_columns, key, strict=True)},
                    }
                )
            for names, group in groups.items():
                statement = (
                    sa.update(table)
                    .where(*(table.c[name] == sa.bindparam(f"key_{name}") for name in batch.key_columns))
                    .values({name: sa.bindparam(f"set_{name}") for name in names})
                )
                self.session.execute(statement, group)
        finally:
            self._busy = False
        batch.inserted, batch.changed = {}, {}

    def _insert(self, table: sa.Table, names: tuple[str, ...], rows: list[dict]) -> None:
        """New rows: on PostgreSQL with COPY (a third of the client's time of an executemany
        INSERT, half the server's), the values bound as SQLAlchemy binds them; else executemany."""
        connection = self.session.connection()
        dialect = connection.dialect
        if dialect.name != "postgresql" or dialect.driver != "psycopg":
            self.session.execute(sa.insert(table), rows)
            return
        from psycopg import sql

        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(*((table.schema,) if table.schema else ()), table.name),
            sql.SQL(", ").join(sql.Identifier(name) for name in names),
        )
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        value if process is None else process(value)
                        for value, process in zip((row[name] for name in names), processors, strict=True)
                    ]
                )

    def _live(self, batch: _TableBatch, method: str, *args, **values):
        """Run one call as LiveRows would, after writing what the batch holds for that table; the
        table's copies are dropped if it wrote."""
        self._flush(batch)
        self._busy = True
        try:
            result = getattr(self.live, method)(batch.table, *args, **values)
        finally:
            self._busy = False
        if method != "get":
            batch.forget()
        return result

    def _other_statement(self, state) -> None:
        """A statement that did not come through here: it sees every write before it, and if it
        may write, nothing held may be stale afterwards."""
        if self._busy:
            return
        self.flush()
        if not state.is_select:
            for batch in self.tables.values():
                batch.forget()
