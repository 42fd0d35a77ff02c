"""The `hub` command. Thin: every command calls the same functions the consumers and tests use."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hub.cli_errors import Failed, HubGroup, UsageProblem
from hub.core.masking import redact
from hub.core.topics import Topics
from hub.kafka.clients import reach_broker
from hub.settings import Settings

app = typer.Typer(cls=HubGroup, no_args_is_help=True, help="notice-hub: county domain events in, Korean notices out.")
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


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="on failure, show the traceback and the libraries' logs "
                                                        "(anywhere on the command line; or HUB_DEBUG=1)")] = False,
) -> None:
    """notice-hub: county domain events in, Korean notices out. A command that fails says why in a line or
    two: exit 2 for a usage error, 1 for any other."""


def read_json(path: Path, what: str) -> Any:
    """A JSON file the user named on the command line; a file that is not JSON is a usage error (exit 2)."""
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UsageProblem(f"{what} {path}: not valid JSON ({str(e)[:160]})",
                           "give a file holding one JSON object (schemas/<event type>.json describes the data)") from e


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    from hub.core.masking import install_redaction
    from hub.logs import demote_group_forming, install_repeat_limit

    if level.upper() not in LOG_LEVELS:
        raise typer.BadParameter(f"{level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"{log_format!r} is not text or json", param_hint="--log-format")
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True,
    )
    if log_format == "json":  # one JSON object per line (hub/logs.py)
        from hub.logs import JsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    for noisy in ("aiokafka", "hub.kafka.faststream"):  # FastStream logs as hub.kafka.faststream (new_broker)
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    install_redaction()
    install_repeat_limit()
    demote_group_forming()


# --------------------------------------------------------------------------- run


@app.command()
def run(
    role: Annotated[list[str] | None, typer.Option("--role", help="router, directory, sender:kakao, sender:sms, sender:email or all (repeatable)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
    log_format: Annotated[str | None, typer.Option("--log-format", help="text or json (default: HUB_LOG_FORMAT, else text)")] = None,
) -> None:
    """Run the hub: every role in one process by default."""
    from hub.runtime import Hub

    settings = Settings()
    log_format = log_format or settings.log_format
    try:
        hub = Hub(settings, role)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--role") from e
    asyncio.run(reach_broker(settings))  # a broker that does not answer: said in two lines, before the logs start
    configure_logging(log_level, log_format)
    asyncio.run(hub.run_until_signalled(on_ready=ready_block if log_format == "text" else None))


def ready_block(hub: Any) -> None:
    """Where things are, once every consumer joined its group: the next thing to do is in it."""
    from hub.cli_ready import ready_lines

    err.print("\n".join(ready_lines(hub)), markup=False, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- kafka


def _local_kafka() -> Any:
    from hub.kafka.local import LocalKafka

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
    if not status["running"]:
        err.print(f"the local broker is not running (at {status['bootstrap']}): `hub kafka up` starts it",
                  markup=False, highlight=False)
        raise typer.Exit(1)


# --------------------------------------------------------------------------- publish


@app.command()
def publish(
    event_type: Annotated[str, typer.Argument(help="e.g. waste.large_item.received.v1")],
    data: Annotated[Path | None, typer.Option("--data", help="JSON file with the event data", exists=True,
                                              dir_okay=False)] = None,
    sample: Annotated[bool, typer.Option("--sample", help="use the catalogue's example data")] = False,
    event_id: Annotated[str | None, typer.Option("--id", help="event id (default: a new UUID)")] = None,
    source: Annotated[str, typer.Option(help="CloudEvents source of the publishing system")] = "/cli",
    subject: Annotated[str | None, typer.Option(help="CloudEvents subject")] = None,
    dedup_key: Annotated[str | None, typer.Option("--dedup-key", help="events sharing it are one notice")] = None,
    mode: Annotated[str, typer.Option(help="binary or structured (CloudEvents Kafka binding)")] = "binary",
) -> None:
    """Publish one event to its domain topic, as a department system would."""
    from hub.core.cloudevents import new_event
    from hub.core.errors import EventError
    from hub.core.events import CATALOGUE, sample_data, validate_event
    from hub.kafka.publish import publish_event

    if event_type not in CATALOGUE:
        raise UsageProblem(f"unknown event type {event_type!r}", "`hub schemas list` lists the event types")
    if (data is None) == (not sample):
        raise UsageProblem("give --data FILE or --sample (not both)", "e.g. hub publish water.bill.issued.v1 --sample")
    if mode not in ("binary", "structured"):
        raise typer.BadParameter(f"{mode!r} is not binary or structured", param_hint="--mode")
    payload = sample_data(event_type) if data is None else read_json(data, "--data")
    settings = Settings()
    try:
        event = new_event(event_type, payload, source=source, id=event_id or str(uuid.uuid4()), subject=subject,
                          dedupkey=dedup_key)
        validate_event(event)  # refuse locally what the router would dead-letter
    except (EventError, ValueError) as e:  # pydantic's ValidationError is a ValueError
        raise UsageProblem(f"the event is not valid: {redact(str(e))[:300]}",
                           f"schemas/{event_type}.json describes its data") from e
    asyncio.run(_require_topic(settings, Topics.of(settings).events(CATALOGUE[event_type].domain)))
    topic, partition, offset = asyncio.run(publish_event(settings, event, structured=(mode == "structured")))
    console.print(f"published {event.type} id={event.id} to {topic}[{partition}]@{offset}")


async def _require_topic(settings: Settings, topic: str) -> None:
    """The broker does not create topics on its own (docker-compose.yml, `hub kafka up`): the hub does, with
    the partitions and compaction it needs, when it starts. Say so instead of waiting for a topic in vain."""
    from hub.kafka.dlq import topic_partitions

    if not await topic_partitions(settings, topic):
        raise Failed(f"topic {topic} does not exist on {settings.kafka_bootstrap_servers}",
                     f"start the hub once (`make run` or `hub run`): it creates its topics (HUB_TOPIC_PREFIX="
                     f"{settings.topic_prefix})")


# --------------------------------------------------------------------------- schemas


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path | None, typer.Option("--dir")] = None) -> None:
    """Write schemas/<type>.json for every event type, generated from the models."""
    from hub.core import schemas

    written = schemas.export(directory or schemas.SCHEMA_DIR)
    console.print(f"wrote {len(written)} schema files to {(directory or schemas.SCHEMA_DIR)}")


@schemas_app.command("list")
def schemas_list() -> None:
    """The event catalogue: type, topic and what it means."""
    from hub.core.events import CATALOGUE
    from hub.core.topics import Topics

    topics = Topics.of(Settings())
    table = Table("type", "topic", "meaning", "urgent")
    for column in table.columns[:2]:
        column.no_wrap = True
    for spec in CATALOGUE.values():
        table.add_row(spec.type, topics.events(spec.domain), spec.title, "yes" if spec.urgent else "")
    console.print(table)


# --------------------------------------------------------------------------- templates


def _sample_events() -> list[Any]:
    from hub.core.cloudevents import new_event
    from hub.core.events import CATALOGUE, sample_data, validate_event

    out = []
    for event_type in CATALOGUE:
        event = validate_event(new_event(event_type, sample_data(event_type), source="/sample", id="sample-1"))
        out.append((event, event.data.recipients[0]))
    return out


@templates_app.command("check")
def templates_check() -> None:
    """Render every template against the catalogue's sample events; report every violation."""
    from hub.core.rendering.identity import Identity
    from hub.core.rendering.renderer import Renderer, check_all

    problems = check_all(Renderer(identity=Identity.of(Settings())), _sample_events())
    for problem in problems:
        err.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]all templates render within the channel limits[/] ({len(_sample_events())} event types)")


@templates_app.command("preview")
def templates_preview(
    event_type: str,
    channel: Annotated[str, typer.Option(help="kakao, sms or email")] = "sms",
    data: Annotated[Path | None, typer.Option("--data", help="event data JSON (default: the sample)", exists=True,
                                              dir_okay=False)] = None,
    locale: Annotated[str, typer.Option(help="ko, en or vi (Korean where the locale has no template)")] = "ko",
    as_json: Annotated[bool, typer.Option("--json", help="the rendered message as JSON (with the HTML part)")] = False,
) -> None:
    """Show one rendered message as the resident gets it (with its byte count for SMS/LMS), rendered with the
    county of the settings (HUB_COUNTY_NAME, ...); advertising gets what the law adds."""
    from hub.core.cloudevents import new_event
    from hub.core.errors import HubError
    from hub.core.events import CATALOGUE, sample_data, validate_event
    from hub.core.events.common import Recipient
    from hub.core.rendering.identity import Identity
    from hub.core.rendering.renderer import Renderer

    if event_type not in CATALOGUE:
        raise UsageProblem(f"unknown event type {event_type!r}", "`hub schemas list` lists the event types")
    payload = read_json(data, "--data") if data else sample_data(event_type)
    renderer = Renderer(identity=Identity.of(Settings()))
    try:
        event = validate_event(new_event(event_type, payload, source="/preview", id="preview"))
        recipient = event.data.recipients[0] if event.data.recipients else Recipient(resident_id="preview")
        message = renderer.render(event, recipient.model_copy(update={"locale": locale}), channel)  # type: ignore[arg-type]
    except HubError as e:
        err.print(f"[red]{type(e).__name__}[/]: {e}")
        raise typer.Exit(1) from e
    if as_json:
        typer.echo(message.model_dump_json(indent=2))
        return
    for line in preview_header(message):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.rule()
    console.print(message.text, markup=False, highlight=False, soft_wrap=True)


def preview_header(message: Any) -> list[str]:
    """What the text alone does not show: the kind and size, the subject, AlimTalk's template and buttons."""
    from hub.core.rendering.alimtalk import KAKAO_MAX_CHARS, KakaoContent
    from hub.core.rendering.sms import LMS_MAX_BYTES, SMS_MAX_BYTES, SmsContent

    if isinstance(message, SmsContent):
        limit = SMS_MAX_BYTES if message.kind == "SMS" else LMS_MAX_BYTES
        lines = [f"{message.kind}: {message.byte_count} bytes (EUC-KR; {message.kind} allows {limit:,})"]
        return [*lines, f"subject: {message.subject}"] if message.subject else lines
    if isinstance(message, KakaoContent):
        lines = [f"AlimTalk template {message.template_code}: {len(message.text)} characters "
                 f"(allowed {KAKAO_MAX_CHARS:,})"]
        return lines + [f"button: {b.get('name', '')} ({b.get('type', '')}) {b.get('url_mobile', '')}".rstrip()
                        for b in message.buttons]
    return ["email (text part below; --json shows the HTML part)", f"subject: {message.subject}"]


# --------------------------------------------------------------------------- ledger


@app.command()
def deliveries(
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    resident: Annotated[str | None, typer.Option("--resident", help="resident id")] = None,
    limit: Annotated[int, typer.Option()] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per outcome")] = False,
) -> None:
    """List delivery outcomes for an event or a resident (addresses masked)."""
    from hub.core.masking import redact
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
    from hub.core.time import kst

    table = Table("at", "event", "resident", "channel", "state", "attempt", "provider", "to", "reason")
    for r in rows:
        table.add_row(kst(r.at, "%Y-%m-%d %H:%M:%S"), r.event_id, r.resident_id, r.channel or "-", r.state,
                      str(r.attempt), r.provider or "", r.to_masked, redact(r.reason or ""))
    console.print(table if rows else "no deliveries recorded")


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run/--no-dry-run", help="count what would be purged, delete nothing")] = False,
    days: Annotated[int | None, typer.Option(help="retention in days (default HUB_RETENTION_DAYS)", min=1)] = None,
) -> None:
    """Purge finished delivery records older than the retention (HUB_RETENTION_DAYS, default 180): deliveries,
    their outcome log, released held deliveries, the ingest API's event ids. Queued, sending and retrying
    deliveries are kept whatever their age. A running hub does this every HUB_RETENTION_INTERVAL_S."""
    from hub.core.time import utcnow
    from hub.retention import purge_expired

    settings = Settings() if days is None else Settings(retention_days=days)
    if not settings.retention_days:
        console.print("retention is off (HUB_RETENTION_DAYS=0): nothing purged")
        return
    counts = _with_store(lambda store: purge_expired(store, settings, utcnow(), dry_run=dry_run))
    verb = "would purge" if dry_run else "purged"
    console.print(f"{verb} {counts.total} row(s) older than {settings.retention_days} days: "
                  f"{counts.deliveries} deliveries, {counts.delivery_log} outcome-log rows, {counts.scheduled} "
                  f"released held deliveries, {counts.ingest_events} ingest event ids, "
                  f"{counts.ingest_idempotency} Idempotency-Keys")


# --------------------------------------------------------------------------- residents

residents_app = typer.Typer(no_args_is_help=True, help="The resident directory.")
app.add_typer(residents_app, name="residents")


@residents_app.command("import")
def residents_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header: " + ", ".join(
        ("resident_id", "name", "phone", "email", "district", "interests", "locale", "channels", "consent_*",
         "opted_out", "quiet_start", "quiet_end")), exists=True, dir_okay=False)],
    batch: Annotated[int, typer.Option(help="rows per transaction", min=1)] = 1000,
) -> None:
    """Import residents from CSV. Good rows are imported (again: nothing changes), bad rows are reported with
    their line number and reason; the exit code is 2 when any row was refused."""
    from hub.core.residents import read_csv_bytes
    from hub.core.time import utcnow
    from hub.store import Store

    data = file.read_bytes()

    async def run() -> tuple[int, list[tuple[int, str]]]:
        store = Store(Settings().database_url)
        await store.init()
        imported, bad, pending = 0, [], []
        try:
            for line, resident, reason in read_csv_bytes(data):
                if resident is None:
                    bad.append((line, reason or ""))
                    continue
                pending.append(resident)
                if len(pending) >= batch:
                    imported += await store.upsert_residents(pending, utcnow())
                    pending = []
            imported += await store.upsert_residents(pending, utcnow())
        finally:
            await store.close()
        return imported, bad

    imported, bad = asyncio.run(run())
    for line, reason in bad:
        err.print(f"line {line}: {redact(reason)}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"imported {imported} resident(s); refused {len(bad)} row(s)")
    if bad:
        raise typer.Exit(2)


@app.command()
def why(
    event: Annotated[str, typer.Option("--event", help="event id")],
    resident: Annotated[str, typer.Option("--resident", help="resident id")],
) -> None:
    """Why did (or didn't) this resident get this notice? One screen: the directory entry, every outcome and
    the rule that decided it, any held delivery."""
    from hub.core.time import kst
    from hub.store import Store

    async def gather() -> tuple[Any, list[Any], list[Any]]:
        store = Store(Settings().database_url)
        await store.init()
        try:
            entry = (await store.residents([resident])).get(resident)
            history = [r for r in await store.history(event_id=event, limit=100_000) if r.resident_id == resident]
            return entry, history, await store.held(event_id=event, resident_id=resident)
        finally:
            await store.close()

    entry, history, held = asyncio.run(gather())
    console.rule(f"event {event} / resident {resident}")
    if entry is None:
        console.print("directory: not in the resident directory (only what the event said about them is known)")
    else:
        c = entry.consents
        console.print(
            f"directory: district {entry.district or '-'}, channels {', '.join(entry.channels or ['(default)'])}, "
            f"locale {entry.locale}, consents: informational {'Y' if c.informational else 'N'}, "
            f"advertising {'Y' if c.advertising else 'N'}, night {'Y' if c.advertising_night else 'N'}, "
            f"opted out {'Y' if entry.opted_out else 'N'}"
            + (f", quiet {entry.quiet_hours.start:%H:%M}-{entry.quiet_hours.end:%H:%M}" if entry.quiet_hours else "")
        )
    if not history and not held:
        err.print("[yellow]nothing recorded[/]: the event was not routed (yet), is unknown, or did not name or "
                  "target this resident")
        raise typer.Exit(1)
    for r in history:
        console.print(f"{kst(r.at, '%m-%d %H:%M:%S')}  {r.channel or '-':5}  {r.state:13} attempt {r.attempt}"
                      + (f"  rule {r.rule}" if r.rule else "") + f"  {redact(r.reason or '')}",
                      markup=False, highlight=False, soft_wrap=True)
    for h in held:
        released = f" at {kst(h.claimed_at)}" if h.state == "released" and h.claimed_at else ""
        console.print(f"held: {h.channel} until {kst(h.due_at)} by rule {h.rule} ({h.state}{released})",
                      markup=False, highlight=False, soft_wrap=True)
    console.print(f"[bold]verdict[/]: {_verdict(history, held)}", soft_wrap=True)


def _verdict(history: list[Any], held: list[Any]) -> str:
    from hub.core.audience import RULES
    from hub.core.time import kst

    def explain(rule: str | None) -> str:
        return f"rule {rule}: {RULES.get(rule, rule)}" if rule else ""

    sent = [r for r in history if r.state in ("sent", "fallback")]
    held_by = next((r.rule for r in history if r.state == "deferred"), None)
    repeats = " Later repeats were deduplicated (rule deduplicated)." if any(
        r.state == "deduplicated" for r in history) else ""
    if sent:
        first = sent[0]
        how = "AlimTalk failed, the SMS rendition was sent" if first.state == "fallback" else f"delivered by {first.channel}"
        until = next((f" until {kst(h.due_at)}" for h in held if h.rule == held_by), "")
        after = f" after being held{until} by {explain(held_by)}" if held_by else ""
        return f"{how} at {kst(first.at)}{after}.{repeats}"
    suppressed = [r for r in history if r.state == "suppressed"]
    if suppressed:
        return f"not sent - {explain(suppressed[-1].rule)}.{repeats}"
    pending = [h for h in held if h.state != "released"]
    if pending:
        return f"held until {kst(pending[0].due_at)} - {explain(pending[0].rule)}."
    last = history[-1] if history else None
    if last is None:
        return "nothing decided yet"
    if last.state == "deduplicated":
        return f"a repeat of a notice handled before - {explain('deduplicated')}."
    return f"{last.state}: {redact(last.reason or '')}"


# --------------------------------------------------------------------------- dead letters


def _resolution_json(resolution: Any) -> dict[str, Any] | None:
    if resolution is None:
        return None
    return {"action": resolution.action, "by": resolution.by, "at": resolution.at.isoformat(),
            "note": resolution.note}


@dlq_app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per dead letter")] = False,
    stage: Annotated[str | None, typer.Option(help="router, sender:kakao, ...")] = None,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    resolved: Annotated[bool, typer.Option("--resolved", help="the handled ones too (resolved or replayed)")] = False,
) -> None:
    """What is in the dead-letter topic and nobody handled yet: where each record came from and why it failed."""
    from hub.cli_dlq import load, select
    from hub.core.masking import redact
    from hub.core.time import kst, kst_from_iso

    settings = Settings()
    found = _with_store(lambda store: load(settings, store))
    letters = select(found, [d.ref for d in found.letters] if resolved else None, stage, error_class, event)
    if as_json:
        for d in letters:
            console.print_json(json.dumps({
                "ref": d.ref, "replay_to": d.replay_topic, "stage": d.stage, "error_class": d.error_class,
                "reason": redact(d.reason), "event_id": d.event_id, "delivery_id": d.delivery_id,
                "failed_at": d.headers.get("dlq_failed_at"), "resolved": _resolution_json(found.resolution(d)),
            }, ensure_ascii=False))
        return
    table = Table("ref", "failed at", "stage", "event", "error", "reason", *(["handled"] if resolved else []))
    for d in letters:
        handled = found.resolution(d)
        done = [f"{handled.action} by {handled.by} at {kst(handled.at, '%Y-%m-%d %H:%M:%S')}: {handled.note}" if handled else ""]
        table.add_row(d.ref, kst_from_iso(d.headers.get("dlq_failed_at", ""), "%Y-%m-%d %H:%M:%S"), d.stage, d.event_id or "-", d.error_class,
                      redact(d.reason)[:160], *(done if resolved else []))
    if letters:
        console.print(table)
    closed = len(found.letters) - len(found.unresolved)
    console.print(f"{len(found.unresolved)} unresolved dead letter(s) in {found.topic}"
                  + (f"; {closed} handled (--resolved shows them)" if closed and not resolved else ""))


@dlq_app.command("replay")
def dlq_replay(
    ref: Annotated[list[str] | None, typer.Option("--ref", help="PARTITION:OFFSET in the dead-letter topic (repeatable)")] = None,
    stage: Annotated[str | None, typer.Option(help="only those that failed at this stage")] = None,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every unresolved dead letter")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run/--no-dry-run", help="say what would be replayed")] = False,
    force: Annotated[bool, typer.Option("--force", help="replay even what would fail again")] = False,
) -> None:
    """Send dead letters back to the topic they failed on, once each is checked as its consumer would read it:
    one that would fail again is named with the reason, and nothing is replayed unless --force. Replayed
    entries are recorded as handled; replayed deliveries still deduplicate."""
    from hub.cli_dlq import check_refs, checked, load, operator, select
    from hub.core.time import utcnow
    from hub.kafka.dlq import replay
    from hub.store.dead_letters import record_resolutions

    if not (ref or stage or error_class or event or replay_all):
        raise UsageProblem("choose what to replay: --ref, --stage, --error-class, --event or --all",
                           "`hub dlq list` shows what there is")
    check_refs(ref)
    settings = Settings()
    found = _with_store(lambda store: load(settings, store))
    results = checked(select(found, ref, stage, error_class, event), settings)
    if not results:
        console.print(f"nothing to replay: no unresolved dead letter in {found.topic} is chosen "
                      "(`hub dlq list --resolved` shows the handled ones; --ref replays one of them again)")
        return
    failing = [(d, reason) for d, reason in results if reason]
    for d, reason in failing:
        console.print(f"would fail again: {d.ref} ({d.stage}): {redact(reason)[:300]}", markup=False,
                      highlight=False, soft_wrap=True)
    if dry_run:
        for d, reason in results:
            if not reason:
                console.print(f"would replay {d.ref} -> {d.replay_topic} ({d.error_class})")
        return
    if failing and not force:
        raise Failed(f"nothing replayed: {len(failing)} of {len(results)} dead letter(s) would fail again",
                     "fix the cause, or mark them handled (hub dlq resolve REF --note WHY), or replay anyway "
                     "with --force")
    letters = [d for d, _ in results]
    count = asyncio.run(replay(settings, letters))
    note = "replayed" + (" with --force although it would fail again" if failing else "")
    _with_store(lambda store: record_resolutions(store, found.topic, [(d.partition, d.offset) for d in letters],
                                                 action="replayed", by=operator(), at=utcnow(), note=note))
    console.print(f"replayed {count} dead letter(s)")


@dlq_app.command("resolve")
def dlq_resolve(
    refs: Annotated[list[str], typer.Argument(help="PARTITION:OFFSET of each dead letter (hub dlq list)")],
    note: Annotated[str, typer.Option("--note", help="why it needs nothing more: what was done, or why not")],
    by: Annotated[str | None, typer.Option("--by", help="who handled it (default: login@host)")] = None,
) -> None:
    """Record that dead letters were handled: who, when and why. They stay in the topic (Kafka keeps its log);
    `hub dlq list` and the dashboard stop counting them."""
    from hub.cli_dlq import check_refs, load, operator
    from hub.core.time import kst, utcnow
    from hub.store.dead_letters import record_resolutions

    if not note.strip():
        raise UsageProblem("--note is empty", "say why the entry needs nothing more, e.g. --note '요청 취소됨'")
    check_refs(refs)
    settings = Settings()
    found = _with_store(lambda store: load(settings, store))
    letters = found.named(refs)
    who, at = by or operator(), utcnow()
    _with_store(lambda store: record_resolutions(store, found.topic, [(d.partition, d.offset) for d in letters],
                                                 action="resolved", by=who, at=at, note=note.strip()))
    for d in letters:
        console.print(f"resolved {d.ref} ({d.stage}, {d.error_class}) by {who} at {kst(at, '%Y-%m-%d %H:%M:%S')}: "
                      f"{note.strip()}", markup=False, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- API keys, ingest API, AsyncAPI

keys_app = typer.Typer(no_args_is_help=True, help="API keys of department systems for the HTTP ingest API.")
app.add_typer(keys_app, name="keys")


def _with_store(work: Any) -> Any:
    """Run `work(store)` against the configured store (tables created if missing)."""
    from hub.store import Store

    async def go() -> Any:
        store = Store(Settings().database_url)
        try:
            await store.init()
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


@keys_app.command("create")
def keys_create(
    department: Annotated[str, typer.Option(help="department slug, e.g. sanitation (source /departments/NAME)")],
    types: Annotated[list[str] | None, typer.Option("--types", help="event types it may publish, fnmatch-style: 'waste.*' (repeatable)")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="extra scope: residents (read/replace resident preferences)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the key and its record as JSON")] = False,
) -> None:
    """Create a key and print it once: the hub keeps only its SHA-256 hash."""
    from hub.core.apikeys import SCOPES, check_department, check_patterns
    from hub.core.events import CATALOGUE
    from hub.store import ingest as db

    try:
        check_department(department)
        patterns = check_patterns(types or [], CATALOGUE)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    unknown = [s for s in scope or [] if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"unknown scope(s) {unknown}; choose from {', '.join(SCOPES)}")
    scopes = list(dict.fromkeys([*(["events"] if patterns else []), *(scope or [])]))
    if not scopes:
        raise typer.BadParameter("give --types PATTERN (publish events) and/or --scope residents")
    key, token = _with_store(lambda store: db.create_key(store, department=department, type_patterns=patterns,
                                                          scopes=scopes))  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps({"key": token, "key_id": key.key_id, "department": key.department,
                               "types": list(key.type_patterns), "scopes": list(key.scopes)}, ensure_ascii=False))
        return
    err.print(f"created {key.key_id} for department {key.department}: scopes {', '.join(key.scopes)}"
              + (f"; types {', '.join(key.type_patterns)}" if key.type_patterns else ""))
    err.print("the key is shown once; store it now (the hub keeps only its hash):")
    typer.echo(token)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="one JSON object per key")] = False) -> None:
    """Every key: id, department, types, scopes, created, revoked (never the key itself)."""
    from hub.core.time import kst
    from hub.store import ingest as db

    keys = _with_store(db.list_keys)
    if as_json:
        for k in keys:
            typer.echo(json.dumps({"key_id": k.key_id, "department": k.department, "prefix": k.key_prefix,
                                   "types": list(k.type_patterns), "scopes": list(k.scopes),
                                   "created_at": k.created_at.isoformat(),
                                   "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None},
                                  ensure_ascii=False))
        return
    table = Table("id", "department", "types", "scopes", "created", "revoked")
    for column in (table.columns[0], table.columns[4], table.columns[5]):
        column.no_wrap = True
    for k in keys:
        table.add_row(k.key_id, k.department, ", ".join(k.type_patterns), ", ".join(k.scopes),
                      kst(k.created_at, "%Y-%m-%d"), kst(k.revoked_at, "%Y-%m-%d") if k.revoked_at else "")
    console.print(table if keys else "no API keys")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key id (hub keys list)")]) -> None:
    """Revoke a key: refused with 401 from the next request on."""
    from hub.core.time import kst
    from hub.store import ingest as db

    key = _with_store(lambda store: db.revoke_key(store, key_id))
    if key is None:
        err.print(f"[red]no key {key_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key.key_id} ({key.department}) at {kst(key.revoked_at, '%Y-%m-%d %H:%M:%S')}")


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="default HUB_API_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="default HUB_API_PORT or 8000", min=1, max=65535)] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Serve the HTTP ingest API for department systems (OpenAPI at /docs)."""
    import uvicorn

    from hub.api.ingest import IngestSettings, create_ingest_app

    ingest, settings = IngestSettings(), Settings()
    host, port = host or ingest.api_host, port or ingest.api_port
    _can_listen(host, port)
    configure_logging(log_level)
    uvicorn.run(create_ingest_app(settings, ingest_settings=ingest), host=host, port=port, log_config=None,
                log_level=log_level.lower())


def _can_listen(host: str, port: int) -> None:
    """Say so before uvicorn starts, in one line, when the address is taken (a second hub api, say)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as e:
        raise Failed(f"cannot listen on {host}:{port}: {e.strerror or e}",
                     "another process has the port: choose one with --port (or HUB_API_PORT)") from e


@app.command("asyncapi")
def asyncapi(
    out: Annotated[Path, typer.Option("--out", help="where to write the document")] = Path("docs/asyncapi.json"),
) -> None:
    """Write the AsyncAPI 3.0 document of the hub's Kafka topics, generated by FastStream."""
    from hub.asyncapi import build_asyncapi

    doc = build_asyncapi(Settings())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"wrote {out} ({len(doc['channels'])} channels, {len(doc['operations'])} operations)")


# --------------------------------------------------------------------------- operations: consumer lag


LAG_COLOURS = {"OK": "green", "WARN": "yellow", "STALL": "red", "STOP": "bold red", "ERR": "magenta"}


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _lag_summary(reports: list[Any]) -> Any:
    """One line per group: what an operator looks at first."""
    if not reports:
        return "no consumer groups found"
    table = Table("group", "status", "lag", "lag s", "members", "state")
    for g in reports:
        table.add_row(g.group, f"[{LAG_COLOURS[g.status.value]}]{g.status.value}[/]", f"{g.lag:,}",
                      _seconds(g.lag_seconds), "?" if g.members is None else str(g.members), g.error or g.state or "")
    return table


def _lag_tables(reports: list[Any]) -> Any:
    """Per group, a table of its partitions (`hub lag --partitions`)."""
    from rich.console import Group

    tables = []
    for g in reports:
        title = (f"{g.group}  [{LAG_COLOURS[g.status.value]}]{g.status.value}[/]  lag {g.lag:,}  "
                 f"members {'?' if g.members is None else g.members}  {g.state or ''}")
        table = Table("topic", "partition", "committed", "log-end", "lag", "lag s", "status", "consumer",
                      title=title, title_justify="left")
        for p in g.partitions:
            table.add_row(p.topic, str(p.partition), "-" if p.committed is None else f"{p.committed:,}",
                          "-" if p.end is None else f"{p.end:,}", "-" if p.lag is None else f"{p.lag:,}",
                          _seconds(p.lag_seconds), f"[{LAG_COLOURS[p.status.value]}]{p.status.value}[/]",
                          p.client_id or "-")
        if g.error:
            table.caption = f"[magenta]{g.error}[/]"
        tables.append(table)
    return Group(*tables) if tables else "no consumer groups found"


@app.command()
def lag(
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="consumer group (repeatable; default: every group of the hub)")] = None,
    all_groups: Annotated[bool, typer.Option("--all", help="every consumer group in the cluster, not only the hub's")] = False,
    partitions: Annotated[bool, typer.Option("--partitions", "-p", help="a line per partition, not per group")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON with every partition: one document; with --watch one per line")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="keep sampling and reporting until interrupted")] = False,
    interval: Annotated[float, typer.Option("--interval", help="seconds between samples", min=0.05)] = 1.0,
    samples: Annotated[int, typer.Option("--samples", help="samples before the first report (a status needs 2)", min=1)] = 3,
    window: Annotated[int, typer.Option("--window", help="samples in a partition's status window", min=2)] = 10,
) -> None:
    """Consumer lag, one line per group: status, total lag, lag in seconds (age of the oldest record not yet
    consumed), members. --partitions: per topic and partition, the committed offset, log-end offset and lag
    (as Kafka's kafka-consumer-groups.sh --describe). Statuses over a window of samples: OK, WARN (lag keeps
    growing), STALL (no progress while lagging), STOP (no progress and no members), ERR (unreadable)."""
    from hub.core.errors import UnknownGroupError
    from hub.core.lag import Status
    from hub.kafka.lag import lag_reports

    settings = Settings()
    show = _lag_tables if partitions else _lag_summary

    def document(reports: list[Any]) -> dict[str, Any]:

        return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "bootstrap": settings.kafka_bootstrap_servers,
                "groups": [g.to_json() for g in reports]}

    async def go() -> list[Any]:
        last: list[Any] = []
        stream = lag_reports(settings, groups=group, all_groups=all_groups, samples=samples, interval_s=interval,
                             window=window, forever=watch)
        if watch and not as_json:
            from rich.live import Live

            with Live(console=console, auto_refresh=False) as live:
                async for last in stream:
                    live.update(show(last), refresh=True)
            return last
        async for last in stream:
            if as_json:
                sys.stdout.write(json.dumps(document(last), ensure_ascii=False, indent=None if watch else 2) + "\n")
                sys.stdout.flush()
            else:
                console.print(show(last))
        return last

    try:
        reports = asyncio.run(go())
    except KeyboardInterrupt:
        return
    except UnknownGroupError as e:
        raise UsageProblem(str(e), "give one of those, or leave --group out for every group of the hub") from e
    if any(g.status is Status.ERR for g in reports):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
