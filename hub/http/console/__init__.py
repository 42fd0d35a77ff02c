"""The county staff console: compose, check, approve, send and follow county notices in the browser
(docs/CONSOLE.md). Served by `hub console`, on the county's internal network."""

from hub.http.console.app import create_console_app
from hub.http.console.context import Console

__all__ = ["Console", "create_console_app"]
