"""The short chaos run `make test` includes (`make chaos` is the long one): writes under every
kind of fault, then the history checker. Nothing acknowledged may be lost, duplicated or
reordered, and no request may get a 5xx."""

from __future__ import annotations

import pytest

from tests.chaos.run import QUICK, run

pytestmark = pytest.mark.integration


def test_nothing_acknowledged_is_lost_duplicated_or_reordered_under_faults(postgres_server, tmp_path):
    report = run(QUICK, tmp_path, postgres_server, show_progress=False)
    rows = dict(report.rows())
    print(rows)
    findings = report.findings
    assert findings.acknowledged >= QUICK.writes * 0.9, rows
    assert (findings.lost, findings.duplicated, findings.reordered, findings.gaps) == ([], [], [], []), rows
    assert report.server_errors == {}, rows
    assert len(report.injected) >= 10, [f.detail for f in report.injected] + report.skipped
    assert report.under_load == len(report.injected), rows  # every fault with writes in flight
    # 100 writers at one version: exactly one wins, every other one is told it lost.
    assert report.conflicts == [{201: 1, 409: 99}], report.conflicts
