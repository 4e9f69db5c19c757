"""`captives`: the operators' command line.

captives up               Kafka + the three services on SQLite, until Ctrl-C (what `make up` runs)
captives serve intake     one service in the foreground (what the container image runs)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from deploy.kafka.node import KafkaNode, fetch
from deploy.processes import die_with_parent, tail
from shared.logs import configure_logging

app = typer.Typer(help="Captives: records, legal status and disposition of captured soldiers.", no_args_is_help=True)
console = Console()


class Service(StrEnum):
    intake = "intake"
    status = "status"
    disposition = "disposition"


def service_module(service: Service):
    if service is Service.intake:
        from services.intake import app as module
    elif service is Service.status:
        from services.status import app as module
    else:
        from services.disposition import app as module
    return module


def service_settings(service: Service):
    module = service_module(service)
    return {
        "intake": module.__dict__.get("IntakeSettings"),
        "status": module.__dict__.get("StatusSettings"),
        "disposition": module.__dict__.get("DispositionSettings"),
    }[service.value]()


@app.command()
def serve(service: Service) -> None:
    """Run one service in the foreground (HTTP API, outbox relay and consumers)."""
    settings = service_settings(service)
    configure_logging(service.value, level=settings.log_level, json=settings.log_json)
    uvicorn.run(
        service_module(service).build(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=True,
    )


@app.command()
def up(
    var: Path = typer.Option(Path("var"), help="where the SQLite files, Kafka's data and the logs live"),
    kafka_port: int = typer.Option(9092, envvar="CAPTIVES_KAFKA_PORT"),
    controller_port: int = typer.Option(9093, envvar="CAPTIVES_KAFKA_CONTROLLER_PORT"),
) -> None:
    """Start Kafka and the three services on SQLite; Ctrl-C stops everything."""
    var = var.resolve()
    logs = var / "log"
    logs.mkdir(parents=True, exist_ok=True)
    broker: KafkaNode | None = None
    children: dict[Service, subprocess.Popen] = {}
    stopping = False

    def stop(*_signal) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        console.print("\n[bold]Stopping[/] the services, then Kafka...")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for service, child in children.items():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                console.print(f"{service} did not stop in 20 s: killing it")
                child.kill()
        if broker is not None:
            broker.stop()
        console.print("Stopped. Nothing is left running.")

    # Ctrl-C and SIGTERM both end in the orderly stop below (SIGINT is set explicitly because a
    # shell that starts us in the background leaves it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap:
            console.print(f"Using the Kafka broker at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
        else:
            with console.status("Fetching Apache Kafka from Maven Central (cached after the first run)..."):
                fetch()
            with console.status(f"Starting Kafka on 127.0.0.1:{kafka_port}..."):
                broker = KafkaNode(var / "kafka", port=kafka_port, controller_port=controller_port).start()
            bootstrap = broker.bootstrap_servers
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        urls = {}
        for service in Service:
            settings = service_settings(service)
            env.setdefault(f"{service.value.upper()}_DATABASE_URL", f"sqlite:///{var / service.value}.db")
            urls[service] = f"http://{settings.host}:{settings.port}"
            log_file = (logs / f"{service.value}.log").open("ab")
            children[service] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", service.value],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            log_file.close()
        with console.status("Waiting for the services to be ready..."):
            for service, url in urls.items():
                wait_ready(service, url, children[service], logs / f"{service.value}.log")
        table = Table(title="Captives stack is up", show_lines=False)
        table.add_column("service")
        table.add_column("API")
        table.add_column("docs")
        for service, url in urls.items():
            table.add_row(service.value, url, f"{url}/docs")
        table.add_row("kafka", bootstrap, "")
        console.print(table)
        console.print(f"Logs: {logs}/<service>.log   Data: {var}   [bold]Ctrl-C[/] stops everything.")
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        dead = [service.value for service, child in children.items() if child.poll() is not None]
        console.print(f"[red]{', '.join(dead)} exited[/]; see {logs}")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def wait_ready(service: Service, url: str, child: subprocess.Popen, log_file: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise typer.BadParameter(f"{service} exited during start-up:\n{tail(log_file)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise typer.BadParameter(f"{service} was not ready within {timeout_s}s:\n{tail(log_file)}")


if __name__ == "__main__":
    app()
