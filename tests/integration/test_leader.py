"""One relay per service database: the advisory lock that elects it, on real PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared.eventstore.leader import LeaderLock
from shared.platform.db import create_engine

pytestmark = pytest.mark.integration


def test_one_leader_at_a_time_and_a_standby_takes_over_when_it_goes(new_database):
    url = new_database("leader")
    first_engine, second_engine = create_engine(url), create_engine(url)
    first, second = LeaderLock(first_engine, "status-relay"), LeaderLock(second_engine, "status-relay")
    other_service = LeaderLock(second_engine, "intake-relay")
    try:
        assert first.try_hold() and first.try_hold()  # taken, then kept
        assert not second.try_hold() and not second.held
        assert other_service.try_hold()  # another lock name is another election
        # Leading leaves no transaction open (that would hold back VACUUM for hours).
        others = "SELECT state FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        with first_engine.connect() as connection:
            states = connection.execute(sa.text(others)).scalars().all()
        assert "idle in transaction" not in states, states
        first.release()
        assert second.try_hold() and not first.try_hold()
    finally:
        for lock in (first, second, other_service):
            lock.release()
        first_engine.dispose()
        second_engine.dispose()


def test_on_sqlite_the_one_process_always_leads(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert LeaderLock(engine, "intake-relay").try_hold()
    engine.dispose()
