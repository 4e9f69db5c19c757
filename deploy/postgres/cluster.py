"""A throwaway PostgreSQL cluster on its own port, for the tests and the benchmarks.

Uses Debian's PostgreSQL server binaries (`deploy/postgres/install.sh` installs them when they
are missing). initdb refuses to run as root, so as root the cluster belongs to the `postgres`
system user. Durability settings are off unless asked for (`durable=True`, as the chaos suite,
which kills the server, runs it): fsync, synchronous_commit and full_page_writes are then on, as
in production; off, the cluster lives as long as one test run and nothing survives a crash.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import free_port, tail

TUNING = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "300",
    "shared_buffers": "256MB",
}
DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


class PostgresError(RuntimeError):
    pass


def server_bin_dir() -> Path:
    """The newest installed server's bin dir (Debian keeps them under /usr/lib/postgresql/N/bin)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresError(
        "PostgreSQL server binaries not found: run `sudo deploy/postgres/install.sh` "
        "(Debian's postgresql package) or set DATABASE_URL to a server you have."
    )


@dataclass
class PostgresCluster:
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="captives-pg-")))
    # Production durability (a commit survives a crash of the server or the machine); off for speed.
    durable: bool = False
    started: bool = field(default=False, init=False)

    @property
    def settings(self) -> dict[str, str]:
        return TUNING | {name: "on" if self.durable else "off" for name in DURABILITY}

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_user, *command], capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}\n{tail(self.log_file)}")

    def start(self) -> PostgresCluster:
        bin_dir = server_bin_dir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        self._run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.root} {options}",
            "start",
        )
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            self._run(str(server_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            self.started = False

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def kill(self, timeout_s: float = 30.0) -> None:
        """SIGKILL the postmaster, as a crash would; its backends notice and exit on their own
        (those still alive after `timeout_s` are killed too), so `start()` finds the shared
        memory free and recovers from the WAL."""
        pid = self.postmaster_pid
        if pid is None:
            return
        backends = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(_alive(p) for p in [pid, *backends]):
            time.sleep(0.1)
        for backend in filter(_alive, backends):
            os.kill(backend, signal.SIGKILL)
        # Left unreaped (its parent, pg_ctl, is gone), the dead postmaster's pid still answers
        # kill(pid, 0), and the next postmaster would take its lock files for a live server's.
        for lock in (self.data_dir / "postmaster.pid", self.root / f".s.PGSQL.{self.port}.lock"):
            lock.unlink(missing_ok=True)
        self.started = False

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.destroy()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server behind `server_url` and return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()
