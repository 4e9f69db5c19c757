"""The shape of the house holds (pyproject.toml, [tool.importlinter]): tools over services over
shared, deploy/ importing only shared, the three services independent, no import circle among
the modules of a package. Type-checking imports count: a circle through them is still a circle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_contract_is_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "5 kept, 0 broken" in done.stdout, done.stdout[-2000:]
