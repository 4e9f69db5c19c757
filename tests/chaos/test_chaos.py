"""The short chaos runs `make test` includes (`make chaos` runs the long ones): writes under
every kind of fault, on one broker and on a cluster of three, then the history checker. Every
fault must fire; nothing acknowledged may be lost, duplicated or reordered; no request may get a
5xx other than the 503 of a database that is down (`tests.chaos.run.problems`, which `make chaos`
asserts too)."""

from __future__ import annotations

import pytest

from tests.chaos.run import QUICK, problems, run

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("brokers", [1, 3], ids=["one broker", "three brokers"])
def test_nothing_acknowledged_is_lost_duplicated_or_reordered_under_faults(brokers, tmp_path):
    report = run(QUICK, tmp_path, brokers=brokers, show_progress=False)
    rows = dict(report.rows())
    print(rows, [f"{fault.name}: {fault.detail}" for fault in report.injected])
    assert problems(report) == [], rows
