"""Small process helpers shared by the broker, the database cluster and the local stack."""

from __future__ import annotations

import ctypes
import signal
import socket
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def die_with_parent() -> None:
    """Runs in the child before exec: on Linux, ask the kernel to SIGTERM the child when the
    process that started it dies, so a killed test run or `make up` leaves no broker behind."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def wait_port_free(port: int, timeout_s: float = 10.0) -> None:
    """Until nothing listens on 127.0.0.1:`port` (a stopped server's socket can outlive its
    process for a moment), so the next start on the same port does not find it taken."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)
