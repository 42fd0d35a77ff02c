"""`hub lag`: consumer lag per group (and per partition), with a status over a window of samples."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from hub.cli.common import console
from hub.cli.errors import UsageProblem
from hub.settings import Settings

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
