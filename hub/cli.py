"""The `hub` command. Thin: every command calls the same functions the consumers and tests use."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="notice-hub: county domain events in, Korean notices out.")
kafka_app = typer.Typer(no_args_is_help=True, help="A local single-node Kafka broker (KRaft) for development.")
schemas_app = typer.Typer(no_args_is_help=True, help="JSON Schemas of the event catalogue.")
templates_app = typer.Typer(no_args_is_help=True, help="Check and preview message templates.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(schemas_app, name="schemas")
app.add_typer(templates_app, name="templates")
dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter topic: what could not be processed, and why.")
app.add_typer(dlq_app, name="dlq")

console = Console()
err = Console(stderr=True)


def configure_logging(level: str = "INFO") -> None:
    from hub.masking import install_redaction

    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiokafka", "hub.kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    install_redaction()


# --------------------------------------------------------------------------- run


@app.command()
def run(
    role: Annotated[list[str] | None, typer.Option("--role", help="router, sender:kakao, sender:sms, sender:email or all (repeatable)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run the hub: every role in one process by default."""
    from hub.runtime import Hub

    configure_logging(log_level)
    try:
        hub = Hub(Settings(), role)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    asyncio.run(hub.run_until_signalled())


# --------------------------------------------------------------------------- kafka


def _local_kafka() -> Any:
    from hub.kafka_local import LocalKafka

    s = Settings()
    return LocalKafka(s.local_kafka_home, port=s.local_kafka_port, controller_port=s.local_kafka_controller_port,
                      heap_mb=s.local_kafka_heap_mb)


@kafka_app.command("up")
def kafka_up() -> None:
    """Fetch the Kafka jars (once), format storage (once), start the broker and wait until it answers."""
    kafka = _local_kafka()
    with console.status(f"starting Apache Kafka {kafka.version} ..."):
        bootstrap = kafka.start()
    console.print(f"[green]Kafka {kafka.version} is up[/] at {bootstrap} (logs: {kafka.status()['log']})")


@kafka_app.command("down")
def kafka_down() -> None:
    """Stop the local broker cleanly."""
    was_running = _local_kafka().stop()
    console.print("Kafka stopped" if was_running else "Kafka was not running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Show whether the local broker runs, and where."""
    status = _local_kafka().status()
    console.print_json(json.dumps(status, default=str))
    raise typer.Exit(0 if status["running"] else 1)


# --------------------------------------------------------------------------- publish


@app.command()
def publish(
    event_type: Annotated[str, typer.Argument(help="e.g. waste.large_item.received.v1")],
    data: Annotated[Path | None, typer.Option("--data", help="JSON file with the event data")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="use the catalogue's example data")] = False,
    event_id: Annotated[str | None, typer.Option("--id", help="event id (default: a new UUID)")] = None,
    source: Annotated[str, typer.Option(help="CloudEvents source of the publishing system")] = "/cli",
    subject: Annotated[str | None, typer.Option(help="CloudEvents subject")] = None,
    dedup_key: Annotated[str | None, typer.Option("--dedup-key", help="events sharing it are one notice")] = None,
    mode: Annotated[str, typer.Option(help="binary or structured (CloudEvents Kafka binding)")] = "binary",
) -> None:
    """Publish one event to its domain topic, as a department system would."""
    from hub.events import CATALOGUE, new_event, sample_data, validate_event
    from hub.publisher import publish_event

    if event_type not in CATALOGUE:
        raise typer.BadParameter(f"unknown event type {event_type!r}; known: {', '.join(CATALOGUE)}")
    if (data is None) == (not sample):
        raise typer.BadParameter("give --data FILE or --sample")
    payload = sample_data(event_type) if sample else json.loads(Path(data).read_text(encoding="utf-8"))  # type: ignore[arg-type]
    event = new_event(event_type, payload, source=source, id=event_id or str(uuid.uuid4()), subject=subject,
                      dedupkey=dedup_key)
    validate_event(event)  # refuse locally what the router would dead-letter
    settings = Settings()
    topic, partition, offset = asyncio.run(publish_event(settings, event, structured=(mode == "structured")))
    console.print(f"published {event.type} id={event.id} to {topic}[{partition}]@{offset}")


# --------------------------------------------------------------------------- schemas


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path | None, typer.Option("--dir")] = None) -> None:
    """Write schemas/<type>.json for every event type, generated from the models."""
    from hub import schemas

    written = schemas.export(directory or schemas.SCHEMA_DIR)
    console.print(f"wrote {len(written)} schema files to {(directory or schemas.SCHEMA_DIR)}")


@schemas_app.command("list")
def schemas_list() -> None:
    """The event catalogue: type, topic and what it means."""
    from hub.events import CATALOGUE
    from hub.topics import Topics

    topics = Topics.of(Settings())
    table = Table("type", "topic", "meaning", "urgent")
    for column in table.columns[:2]:
        column.no_wrap = True
    for spec in CATALOGUE.values():
        table.add_row(spec.type, topics.events(spec.domain), spec.title, "yes" if spec.urgent else "")
    console.print(table)


# --------------------------------------------------------------------------- templates


def _sample_events() -> list[Any]:
    from hub.events import CATALOGUE, new_event, sample_data, validate_event

    out = []
    for event_type in CATALOGUE:
        event = validate_event(new_event(event_type, sample_data(event_type), source="/sample", id="sample-1"))
        out.append((event, event.data.recipients[0]))
    return out


@templates_app.command("check")
def templates_check() -> None:
    """Render every template against the catalogue's sample events; report every violation."""
    from hub.rendering import Renderer, check_all

    problems = check_all(Renderer(), _sample_events())
    for problem in problems:
        err.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]all templates render within the channel limits[/] ({len(_sample_events())} event types)")


@templates_app.command("preview")
def templates_preview(
    event_type: str,
    channel: Annotated[str, typer.Option(help="kakao, sms or email")] = "sms",
    data: Annotated[Path | None, typer.Option("--data", help="event data JSON (default: the sample)")] = None,
    locale: Annotated[str, typer.Option()] = "ko",
) -> None:
    """Show one rendered message, with its byte count for SMS/LMS."""
    from hub.errors import HubError
    from hub.events import CATALOGUE, Recipient, new_event, sample_data, validate_event
    from hub.rendering import Renderer

    if event_type not in CATALOGUE:
        raise typer.BadParameter(f"unknown event type {event_type!r}; known: {', '.join(CATALOGUE)}")
    payload = json.loads(data.read_text(encoding="utf-8")) if data else sample_data(event_type)
    try:
        event = validate_event(new_event(event_type, payload, source="/preview", id="preview"))
        recipient = event.data.recipients[0] if event.data.recipients else Recipient(resident_id="preview")
        message = Renderer().render(event, recipient.model_copy(update={"locale": locale}), channel)  # type: ignore[arg-type]
    except HubError as e:
        err.print(f"[red]{type(e).__name__}[/]: {e}")
        raise typer.Exit(1) from e
    console.print_json(message.model_dump_json())
    if hasattr(message, "text"):
        console.rule(message.kind)
        console.print(message.text, markup=False, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- ledger


@app.command()
def deliveries(
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    resident: Annotated[str | None, typer.Option("--resident", help="resident id")] = None,
    limit: Annotated[int, typer.Option()] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per outcome")] = False,
) -> None:
    """List delivery outcomes for an event or a resident (addresses masked)."""
    from hub.masking import redact
    from hub.store import Store

    if not event and not resident:
        raise typer.BadParameter("give --event ID or --resident ID")

    async def query() -> list[Any]:
        store = Store(Settings().database_url)
        try:
            await store.init()
            return await store.history(event_id=event, resident_id=resident, limit=limit)
        finally:
            await store.close()

    rows = asyncio.run(query())
    if as_json:
        for r in rows:
            console.print_json(json.dumps({
                "at": r.at.isoformat(), "event_id": r.event_id, "resident_id": r.resident_id, "channel": r.channel,
                "state": r.state, "attempt": r.attempt, "provider": r.provider, "to": r.to_masked,
                "delivery_id": r.delivery_id, "reason": redact(r.reason or ""),
            }, ensure_ascii=False))
        return
    table = Table("at (UTC)", "event", "resident", "channel", "state", "attempt", "provider", "to", "reason")
    for r in rows:
        table.add_row(r.at.strftime("%Y-%m-%d %H:%M:%S"), r.event_id, r.resident_id, r.channel or "-", r.state,
                      str(r.attempt), r.provider or "", r.to_masked, redact(r.reason or ""))
    console.print(table if rows else "no deliveries recorded")


# --------------------------------------------------------------------------- dead letters


def _select(letters: list[Any], refs: list[str] | None, stage: str | None, error_class: str | None,
            event: str | None) -> list[Any]:
    chosen = letters
    if refs:
        chosen = [d for d in chosen if d.ref in set(refs)]
    if stage:
        chosen = [d for d in chosen if d.stage == stage]
    if error_class:
        chosen = [d for d in chosen if d.error_class == error_class]
    if event:
        chosen = [d for d in chosen if d.event_id == event]
    return chosen


@dlq_app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per dead letter")] = False,
    stage: Annotated[str | None, typer.Option(help="router, sender:kakao, ...")] = None,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
) -> None:
    """What is in the dead-letter topic: where each record came from and why it failed."""
    from hub.consumers.dlq import read_dead_letters
    from hub.masking import redact

    letters = _select(asyncio.run(read_dead_letters(Settings())), None, stage, error_class, event)
    if as_json:
        for d in letters:
            console.print_json(json.dumps({
                "ref": d.ref, "replay_to": d.replay_topic, "stage": d.stage, "error_class": d.error_class,
                "reason": redact(d.reason), "event_id": d.event_id, "delivery_id": d.delivery_id,
                "failed_at": d.headers.get("dlq_failed_at"),
            }, ensure_ascii=False))
        return
    table = Table("ref", "failed at", "stage", "event", "error", "reason")
    for d in letters:
        table.add_row(d.ref, d.headers.get("dlq_failed_at", "")[:19], d.stage, d.event_id or "-", d.error_class,
                      redact(d.reason)[:160])
    console.print(table if letters else "the dead-letter topic is empty")


@dlq_app.command("replay")
def dlq_replay(
    ref: Annotated[list[str] | None, typer.Option("--ref", help="PARTITION:OFFSET in the dead-letter topic (repeatable)")] = None,
    stage: Annotated[str | None, typer.Option(help="only those that failed at this stage")] = None,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be replayed")] = False,
) -> None:
    """Send dead letters back to the topic they failed on. Replayed deliveries still deduplicate."""
    from hub.consumers.dlq import read_dead_letters, replay

    if not (ref or stage or error_class or event or replay_all):
        raise typer.BadParameter("choose what to replay: --ref, --stage, --error-class, --event or --all")
    settings = Settings()
    letters = _select(asyncio.run(read_dead_letters(settings)), ref, stage, error_class, event)
    if dry_run:
        for d in letters:
            console.print(f"would replay {d.ref} -> {d.replay_topic} ({d.error_class})")
        return
    count = asyncio.run(replay(settings, letters))
    console.print(f"replayed {count} dead letter(s)")


if __name__ == "__main__":
    app()
