"""Small process helpers shared by the broker, the database cluster and the local stack."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Ports this process has handed out, so two calls never return the same one even when the first
# has not been bound yet.
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections. A listening port chosen inside it can be
    taken by any client connection (a Kafka or PostgreSQL client's, say) between the moment it
    is chosen and the moment the server binds it, which is how a chaos run once lost a service."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; other systems use 49152-65535, above it too


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the ephemeral range, so
    no outgoing connection can take it before its server binds it."""
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 below {low}")


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


def launch(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server in a session of its own, its output appended to `log_path`, dying with us."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def wait_ready(
    process: subprocess.Popen,
    ready: Callable[[], bool],
    *,
    what: str,
    waiting_for: str,
    log_path: Path,
    timeout_s: float,
    error: type[Exception] = RuntimeError,
    interval_s: float = 0.2,
    stop: Callable[[], None] = lambda: None,
) -> None:
    """Until `ready()`; `error` naming `what` and the log's tail if the process exits first, or
    if `timeout_s` passes (`waiting_for`: what it did not do in time), after `stop()`: a server
    that did not come up is not left running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise error(f"{what} exited with {process.returncode}:\n{tail(log_path)}")
        if ready():
            return
        time.sleep(interval_s)
    stop()
    raise error(f"{what} did not {waiting_for} within {timeout_s}s:\n{tail(log_path)}")


class Supervised:
    """A server process this code started (`process`, listening on `port`): whether it runs, and
    a stop that waits until the port is free again, so the next start on it does not find it taken."""

    process: subprocess.Popen | None
    port: int

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM), then SIGKILL if it does not finish in time."""
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        wait_port_free(self.port)

    def kill(self) -> None:
        if self.running:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        wait_port_free(self.port)
