"""The `hub` command. Thin: every command calls the same functions the consumers and tests use.

One module per command group; this one builds `app` from them (the `hub` entry point, `python -m hub.cli`)."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli import (
    api,
    asyncapi,
    consent,
    deliveries,
    dlq,
    kafka,
    keys,
    lag,
    public,
    publish,
    purge,
    residents,
    run,
    schemas,
    staff,
    templates,
)
from hub.cli import console as console_cmd
from hub.cli.errors import HubGroup

app = typer.Typer(cls=HubGroup, no_args_is_help=True, help="notice-hub: county domain events in, Korean notices out.")


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="on failure, show the traceback and the libraries' logs "
                                                        "(anywhere on the command line; or HUB_DEBUG=1)")] = False,
) -> None:
    """notice-hub: county domain events in, Korean notices out. A command that fails says why in a line or
    two: exit 2 for a usage error, 1 for any other."""


# the order of `hub --help`
app.command()(run.run)
app.command()(publish.publish)
app.command()(deliveries.deliveries)
app.command()(purge.purge)
app.command()(deliveries.why)
app.command("api")(api.api)
app.command("public")(public.public)
app.command("console")(console_cmd.console)
app.command("asyncapi")(asyncapi.asyncapi)
app.command()(lag.lag)
app.add_typer(kafka.app, name="kafka")
app.add_typer(schemas.app, name="schemas")
app.add_typer(templates.app, name="templates")
app.add_typer(dlq.app, name="dlq")
app.add_typer(residents.app, name="residents")
app.add_typer(consent.app, name="consent")
app.add_typer(keys.app, name="keys")
app.add_typer(staff.app, name="staff")
