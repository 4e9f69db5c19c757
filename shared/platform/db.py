"""Database engines and migrations: SQLite files for a quick local run, PostgreSQL elsewhere."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker

from shared.platform.private_files import private_directory

MIGRATIONS_ENV = Path(__file__).resolve().parents[1] / "migrations"  # shared/migrations

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            path = Path(parsed.database)
            private_directory(path.parent)
            _private_files(path)
            sa.event.listen(engine, "connect", lambda _connection, _record: _private_files(path))
        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _private_files(path: Path) -> None:
    """A SQLite database file and its -wal and -shm files readable by their owner only (0600):
    the file is created so before SQLite opens it (SQLite gives the -wal and -shm the database
    file's permissions), and files made before this are narrowed."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            continue


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while the relay and the consumer write.
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before it returns. With NORMAL a power loss can undo commits the
    # relay has already published, and the same stream version would then be given to another
    # event: the log of record would contradict the topic.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(versions_dir: Path, metadata: sa.MetaData) -> Config:
    """One migration environment (shared/migrations) for all services; each service keeps its
    own revisions in services/<name>/migrations/."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ENV))
    config.set_main_option("version_locations", str(versions_dir))
    config.set_main_option("path_separator", "os")
    config.attributes["target_metadata"] = metadata
    return config


def migrate(engine: sa.Engine, versions_dir: Path, metadata: sa.MetaData) -> None:
    config = alembic_config(versions_dir, metadata)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Instances of a service starting together: one migrates, the others wait for it.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


_MIGRATION_LOCK = 0x6D696772  # "migr": held for the migrating transaction only


class UtcDateTime(sa.TypeDecorator):
    """A timestamp that is always timezone-aware UTC, on SQLite (which keeps no zone) as on
    PostgreSQL, so comparisons of event times never mix naive and aware values."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; event times are always timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rows_where_in(
    session: Session, query: sa.Select, column: sa.ColumnElement, ids: list[str] | None, chunk: int = 1000
) -> list:
    """`query` restricted to `column IN ids`, in chunks that every database accepts (all rows
    for None). Order holds within a chunk only."""
    if ids is None:
        return session.execute(query).all()
    rows = []
    for start in range(0, len(ids), chunk):
        rows.extend(session.execute(query.where(column.in_(ids[start : start + chunk]))).all())
    return rows
