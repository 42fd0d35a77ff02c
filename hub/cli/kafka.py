"""`hub kafka`: a local single-node Kafka broker (KRaft) for development."""

from __future__ import annotations

import json
from typing import Any

import typer

from hub.cli.common import console, err
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="A local single-node Kafka broker (KRaft) for development.")


def _local_kafka() -> Any:
    from hub.kafka.local import LocalKafka

    s = Settings()
    return LocalKafka(s.local_kafka_home, port=s.local_kafka_port, controller_port=s.local_kafka_controller_port,
                      heap_mb=s.local_kafka_heap_mb)


@app.command("up")
def kafka_up() -> None:
    """Fetch the Kafka jars (once), format storage (once), start the broker and wait until it answers."""
    kafka = _local_kafka()
    with console.status(f"starting Apache Kafka {kafka.version} ..."):
        bootstrap = kafka.start()
    console.print(f"[green]Kafka {kafka.version} is up[/] at {bootstrap} (logs: {kafka.status()['log']})")


@app.command("down")
def kafka_down() -> None:
    """Stop the local broker cleanly."""
    was_running = _local_kafka().stop()
    console.print("Kafka stopped" if was_running else "Kafka was not running")


@app.command("status")
def kafka_status() -> None:
    """Show whether the local broker runs, and where."""
    status = _local_kafka().status()
    console.print_json(json.dumps(status, default=str))
    if not status["running"]:
        err.print(f"the local broker is not running (at {status['bootstrap']}): `hub kafka up` starts it",
                  markup=False, highlight=False)
        raise typer.Exit(1)
