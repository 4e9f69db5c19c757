"""Failpoints: named places in the code where a fault-injection run may make the process crash,
to prove that a crash exactly there loses and duplicates nothing (the chaos suite, tests/chaos).

Off unless CAPTIVES_FAILPOINTS names them, e.g. `relay.after_publish=3` (exit on the 3rd time
the relay has published a batch but not yet removed it from the outbox). Reading the variable
once, at import, keeps the cost of an unarmed failpoint to a dictionary lookup.
"""

from __future__ import annotations

import os
import threading

import structlog

log = structlog.get_logger(__name__)

CRASH_EXIT_CODE = 86  # what the chaos suite recognises as "crashed on purpose"


def _armed(spec: str) -> dict[str, int]:
    armed = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("=")
        armed[name] = int(nth or 1)
    return armed


_ARMED = _armed(os.environ.get("CAPTIVES_FAILPOINTS", ""))
_reached: dict[str, int] = {}
_lock = threading.Lock()


def failpoint(name: str) -> None:
    """Crash the process here (no cleanup, like kill -9) if this failpoint is armed and due."""
    if name not in _ARMED:
        return
    with _lock:
        _reached[name] = _reached.get(name, 0) + 1
        due = _reached[name] == _ARMED[name]
    if due:
        log.warning("failpoint reached: crashing", failpoint=name)
        os._exit(CRASH_EXIT_CODE)
