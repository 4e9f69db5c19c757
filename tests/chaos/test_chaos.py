"""The short chaos runs `make test` includes (`make chaos` runs the long ones): writes under
every kind of fault on one broker, and under the faults a cluster changes on three, then the
history checker. Every
fault must fire; nothing acknowledged may be lost, duplicated or reordered; no request may get a
5xx other than the 503 of a database that is down (`tests.chaos.run.problems`, which `make chaos`
asserts too)."""

from __future__ import annotations

import pytest

from tests.chaos.run import QUICK, QUICK_CLUSTER, problems, run

# A bound on each run (it starts its own Kafka, PostgreSQL and service instances, and every fault
# waits for its effect), not a timing assertion.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


@pytest.mark.parametrize("plan", [QUICK, QUICK_CLUSTER], ids=["one broker", "three brokers"])
def test_nothing_acknowledged_is_lost_duplicated_or_reordered_under_faults(plan, tmp_path):
    report = run(plan, tmp_path, show_progress=False)
    rows = dict(report.rows())
    print(rows, [f"{fault.name}: {fault.detail}" for fault in report.injected])
    assert problems(report) == [], rows
