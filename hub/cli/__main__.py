"""`python -m hub.cli`: the `hub` command (the tests and the fault suite start the hub this way)."""

from hub.cli import app

app()
