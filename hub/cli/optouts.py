"""`hub residents optouts import FILE`: an outside opt-out list (the 080 service's CSV, the SMS gateway's JSON)
into the hub. A number a resident has opts that resident out the way the residents' page does: a resident event
on `<prefix>.residents` (source: the list), so the directory applies it, the evidence says `via` 080 or
sms-gateway and the result notice follows from a running hub. A number no resident has is kept as its keyed
hash (HUB_OPTOUT_HASH_KEY), and the router suppresses it in a `phones` audience. No number is printed or logged."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, get_args

import typer

from hub.cli.common import console, err
from hub.cli.errors import UsageProblem
from hub.core.cloudevents import new_event
from hub.core.optouts import EVENT_SOURCES, OptOut, Source, phone_key, read_080_csv, read_sens_json
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.settings import Settings
from hub.store import Store

app = typer.Typer(no_args_is_help=True, help="Opt-out lists from outside: the 080 service, the SMS gateway.")


@dataclass
class Imported:
    opted_out: list[str] = field(default_factory=list)  # resident ids
    already: int = 0  # residents already opted out, or who opted in again after the list's time
    kept: int = 0  # numbers no resident has, newly on the suppression list
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line or item, reason)


async def import_optouts(settings: Settings, store: Store, optouts: list[OptOut], source: Source,
                         now: datetime) -> Imported:
    from hub.kafka.broker import new_broker
    from hub.kafka.publish import publish_resident_event
    from hub.store.consent import history, suppress

    result = Imported()
    latest: dict[str, OptOut] = {}
    for o in optouts:  # a number listed twice: its latest opt-out
        if o.phone not in latest or (o.at or now) > (latest[o.phone].at or now):
            latest[o.phone] = o
    residents = await store.residents_by_phone(latest)
    events = []
    for phone, resident in residents.items():
        at = latest[phone].at or now
        opted_in_since = any("opted_in" in c.changes and c.at > at for c in await history(store, resident.resident_id))
        if resident.opted_out or opted_in_since:  # the resident's own later choice wins over an older list
            result.already += 1
            continue
        digest = hashlib.sha256(f"{source} {resident.resident_id} {at.isoformat()}".encode()).hexdigest()[:32]
        events.append(new_event("resident.opted_out.v1", {}, source=EVENT_SOURCES[source], id=f"optout-{digest}",
                                subject=resident.resident_id, time=at))
        result.opted_out.append(resident.resident_id)
    unknown = [o for p, o in latest.items() if p not in residents]
    if unknown:
        if settings.optout_hash_key is None:
            raise UsageProblem(f"{len(unknown)} number(s) on the list belong to no resident, and HUB_OPTOUT_HASH_KEY "
                               "is not set to keep them", "set HUB_OPTOUT_HASH_KEY (e.g. `python3 -c 'import secrets; "
                               "print(secrets.token_urlsafe(32))'`) and import again")
        secret = settings.optout_hash_key.get_secret_value()
        result.kept = await suppress(store, [(phone_key(secret, o.phone), o.at or now) for o in unknown],
                                     via=source, at=now)
    if events:
        broker = new_broker(settings)
        await broker.connect()
        try:
            for event in events:
                await publish_resident_event(broker, Topics.of(settings), event)
        finally:
            await broker.stop()
    return result


def read_list(file: Path, source: Source) -> tuple[list[OptOut], list[tuple[int, str]]]:
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageProblem(f"{file}: not UTF-8 text", "save the list as UTF-8") from e
    try:
        entries = list(read_sens_json(text) if source == "sms-gateway" else read_080_csv(text))
    except ValueError as e:  # not JSON, or not the gateway's shape
        raise UsageProblem(f"{file}: {str(e)[:200]}", "the SMS gateway's list is the JSON of its `unsubscribes` "
                                                      "answer; the 080 list a CSV of phone[,time]") from e
    return ([o for _, o, _ in entries if o is not None],
            [(n, reason or "") for n, o, reason in entries if o is None])


@app.command("import")
def optouts_import(
    file: Annotated[Path, typer.Argument(help="the 080 service's CSV (phone[,time]) or the SMS gateway's JSON",
                                         exists=True, dir_okay=False)],
    source: Annotated[str | None, typer.Option(help="080 or sms-gateway; default: sms-gateway for a .json file, "
                                                    "else 080")] = None,
) -> None:
    """Opt out the residents an outside list names; keep a number no resident has (as a keyed hash) so that a
    `phones` audience is suppressed too. Bad rows are reported by line (exit 2); their numbers are not shown."""
    chosen = source or ("sms-gateway" if file.suffix.lower() == ".json" else "080")
    if chosen not in get_args(Source):
        raise UsageProblem(f"--source {source!r}", "080 or sms-gateway")
    optouts, bad = read_list(file, chosen)  # type: ignore[arg-type]  # checked above

    async def run() -> Imported:
        settings = Settings()
        store = Store(settings.database_url)
        await store.init()
        try:
            return await import_optouts(settings, store, optouts, chosen, utcnow())  # type: ignore[arg-type]
        finally:
            await store.close()

    result = asyncio.run(run())
    for number, reason in bad:
        err.print(f"line {number}: {reason}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"opted out {len(result.opted_out)} resident(s) (via {chosen}); {result.already} already opted out "
                  f"or opted in since; kept {result.kept} new number(s) no resident has; refused {len(bad)} row(s)",
                  soft_wrap=True)
    if bad:
        raise typer.Exit(2)
