"""`hub residents optouts import FILE`: an outside opt-out list (the 080 service's CSV, the SMS gateway's JSON)
into the hub. A number a resident has opts that resident out the way the residents' page does: a resident event
on `<prefix>.residents` (source: the list), so the directory applies it, the evidence says `via` 080 or
sms-gateway and the result notice follows from a running hub. A number no resident has is kept as its keyed
hash (HUB_OPTOUT_HASH_KEY), and the router suppresses it in a `phones` audience. No number is printed or logged.
The import itself is hub.pipeline.optouts's, which a running hub also uses to poll the SMS gateway's list."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, get_args

import typer

from hub.cli.common import console, err
from hub.cli.errors import UsageProblem
from hub.core.optouts import OptOut, Source, read_080_csv, read_sens_json
from hub.core.time import utcnow
from hub.pipeline.optouts import Imported, import_optouts
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Opt-out lists from outside: the 080 service, the SMS gateway.")


async def import_file(settings: Settings, optouts: list[OptOut], source: Source) -> Imported:
    """The import use case (hub.pipeline.optouts, as a running hub's scheduled import) over the store and Kafka."""
    from hub.kafka.publish import ResidentEventPublisher
    from hub.store import Store
    from hub.store.consent import StoreOptOuts

    store = Store(settings.database_url)
    await store.init()
    events = ResidentEventPublisher(settings)
    try:
        return await import_optouts(StoreOptOuts(store), events, optouts, source, key=settings.optout_key,
                                    now=utcnow())
    finally:
        await events.close()
        await store.close()


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

    result = asyncio.run(import_file(Settings(), optouts, chosen))  # type: ignore[arg-type]  # checked above
    for number, reason in bad:
        err.print(f"line {number}: {reason}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"opted out {len(result.opted_out)} resident(s) (via {chosen}); {result.already} already opted out "
                  f"or opted in since; kept {result.kept} new number(s) no resident has; refused {len(bad)} row(s)",
                  soft_wrap=True)
    if result.unkept:
        raise UsageProblem(f"{result.unkept} number(s) on the list belong to no resident, and HUB_OPTOUT_HASH_KEY "
                           "is not set to keep them", "set HUB_OPTOUT_HASH_KEY (e.g. `python3 -c 'import secrets; "
                           "print(secrets.token_urlsafe(32))'`) and import again")
    if bad:
        raise typer.Exit(2)
