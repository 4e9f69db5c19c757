"""One relay per service database, however many instances of the service run.

Instances of a service share its database. Each runs an API and a consumer (the consumer group
splits the partitions between them), but only one may publish the outbox: two relays reading
the same rows would publish every event twice, and interleave two streams' order. The leader is
whoever holds a PostgreSQL advisory lock on a connection of its own; the lock goes with the
connection, so a leader that crashes or loses its database hands over to a standby within the
next try. On SQLite (one process, the quick local run) every instance is the leader.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
import structlog

log = structlog.get_logger(__name__)


class LeaderLock:
    def __init__(self, engine: sa.Engine, name: str):
        self.engine = engine
        self.name = name
        # Advisory locks take a 64-bit key; a stable hash of the name keeps services apart.
        self.key = zlib.crc32(f"captives:{name}".encode())
        self.shared = engine.dialect.name == "postgresql"
        self._connection: sa.Connection | None = None

    @property
    def held(self) -> bool:
        return not self.shared or self._connection is not None

    def try_hold(self) -> bool:
        """Whether this instance leads now: keeps the lock if it has it (checking that its
        connection is still alive), takes it if it is free."""
        if not self.shared:
            return True
        if self._connection is not None:
            try:
                self._connection.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.SQLAlchemyError:
                log.warning("leadership lost with the database connection", lock=self.name)
                self.release()
                return False
        # Autocommit: the lock belongs to the session, and the checks must not leave a
        # transaction open for as long as this instance leads (that would hold back VACUUM).
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        except sa.exc.SQLAlchemyError:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        log.info("leadership taken", lock=self.name)
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.exec_driver_sql(f"SELECT pg_advisory_unlock({self.key})")
        except sa.exc.SQLAlchemyError:
            pass  # the connection is gone, and the lock with it
        finally:
            # invalidate, not return to the pool: a pooled connection would keep the lock
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
