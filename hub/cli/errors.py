"""How the `hub` command fails: one or two lines, what is wrong and how to fix it, never a traceback.

`HubGroup` is the root command's class. It runs a command, and turns whatever escapes it into a short message on
stderr: exit 2 for a usage error (bad arguments or options, a file given on the command line that cannot be
read), 1 for everything else (a bad setting, a broker or store that does not answer, a refusal). `--debug`
anywhere on the command line (or HUB_DEBUG=1) prints the traceback too, and the libraries' logs.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from typer._click import exceptions as click_errors  # Typer 0.29 carries its own click, as typer._click
from typer._click.core import Command, Context
from typer.core import TyperGroup, TyperOption

from hub.core.masking import redact

USAGE_EXIT, FAILURE_EXIT, INTERRUPTED_EXIT = 2, 1, 130
DEBUG_FLAG = "--debug"
_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n", "t", "f"})
_SECRET = re.compile(r"password|secret|key|token", re.IGNORECASE)
_SETTINGS_MODELS = frozenset({"Settings", "IngestSettings"})  # pydantic's title of a settings error


class UsageProblem(click_errors.UsageError):
    """Raised by a command for input the user gave it (a file that is not JSON, an unknown name): exit 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class Failed(Exception):
    """Raised by a command that cannot do its work for a reason outside the command line: exit 1, with a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class HubGroup(TyperGroup):
    """The root `hub` group: parses `--debug`, shows flags as flags, and reports failures in a line or two."""

    def main(  # type: ignore[override]  # newer click options (windows_expand_args) arrive in **extra, passed on
            self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
            standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        end = argv.index("--") if "--" in argv else len(argv)
        debug = DEBUG_FLAG in argv[:end] or os.environ.get("HUB_DEBUG", "").lower() in ("1", "true", "yes")
        argv = [a for i, a in enumerate(argv) if not (i < end and a == DEBUG_FLAG)]
        show_flags_as_flags(self)
        with quiet_logging(debug):
            code = run_reporting(lambda: super(HubGroup, self).main(
                argv, "hub", complete_var, standalone_mode=False, **extra), argv, debug)  # also as python -m
        if standalone_mode:
            sys.exit(code)
        return code


def run_reporting(call: Any, argv: Sequence[str], debug: bool) -> int:
    """Run the command; return its exit code, having said in a line or two what went wrong."""
    try:
        result = call()
    except click_errors.NoArgsIsHelpError as e:
        e.show()
        return USAGE_EXIT
    except click_errors.UsageError as e:
        say(usage_lines(e, argv), e if debug else None)
        return e.exit_code
    except click_errors.ClickException as e:
        say([e.format_message()], e if debug else None)
        return e.exit_code
    except typer.Abort:
        say(["interrupted"], None)
        return INTERRUPTED_EXIT
    except Exception as e:
        say(explain(e), e if debug else None)
        return FAILURE_EXIT
    return result if isinstance(result, int) else 0


def say(lines: Sequence[str], error: BaseException | None) -> None:
    if error is not None:
        traceback.print_exception(error, file=sys.stderr)
    for i, line in enumerate(lines):
        typer.echo(("error: " if i == 0 else "  ") + line, err=True)


# --------------------------------------------------------------------------- usage errors


def usage_lines(e: click_errors.UsageError, argv: Sequence[str]) -> list[str]:
    where = e.ctx.command_path if e.ctx is not None else "hub"
    message = e.format_message().strip().rstrip(".")
    hint = getattr(e, "hint", None) or _flag_value_hint(e, argv) or f"see `{where} --help`"
    return [f"{where}: {message}", hint]


def _flag_value_hint(e: click_errors.UsageError, argv: Sequence[str]) -> str | None:
    """`--dry-run true`: a flag takes no value; say how to write it."""
    if e.ctx is None or "unexpected extra argument" not in e.format_message():
        return None
    flags = {opt: param for param in e.ctx.command.params if isinstance(param, TyperOption) and param.is_flag
             for opt in param.opts}
    for before, word in itertools.pairwise(argv):
        if before in flags and word.lower() in _BOOL_WORDS:
            param = flags[before]
            negative = f" or {param.secondary_opts[0]}" if param.secondary_opts else ""
            return f"{before} is a flag and takes no value: write {param.opts[0]}{negative}"
    return None


def show_flags_as_flags(group: Command) -> None:
    """Typer labels every option with its type, flags too (`--dry-run <bool>`), which reads as if the flag took
    a value. A flag takes none: show none."""
    for command in walk(group):
        help_option = command.get_help_option(Context(command, info_name=command.name))  # made once, then kept
        for param in [*command.params, help_option]:
            if isinstance(param, TyperOption) and param.is_bool_flag:
                param.metavar = ""


def walk(command: Command) -> Iterator[Command]:
    """Every command under `command` (itself included), groups and leaves."""
    yield command
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            yield from walk(sub)


# --------------------------------------------------------------------------- failures


def explain(e: BaseException) -> list[str]:
    """What went wrong and how to fix it, for an exception a command let escape."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    if isinstance(e, ValidationError) and e.title in _SETTINGS_MODELS:
        return settings_lines(e)
    if isinstance(e, SettingsError):  # a value pydantic-settings could not even parse (JSON lists and maps)
        field = re.search(r'field "(\w+)"', str(e))
        name = f"HUB_{field[1].upper()}" if field else "a setting"
        value = os.environ.get(name)
        shown = "" if value is None or _SECRET.search(name) else f"={value!r}"
        return [f"bad setting: {name}{shown} is not valid JSON",
                "lists and maps are written as JSON, e.g. HUB_RETRY_TIERS_S='[10, 60, 600]'"]
    if isinstance(e, Failed):
        return [str(e), *([e.hint] if e.hint else [])]
    for explainer in (_kafka, _store, _local_kafka, _file, _hub):
        lines = explainer(e)
        if lines:
            return lines
    return [f"{type(e).__name__}: {redact(str(e))}",
            "this is a bug in the hub: run the command again with --debug and report what it prints"]


def settings_lines(e: Any) -> list[str]:
    """One line naming each bad setting (environment variable) with its value (secrets hidden) and the error."""
    problems, hints = [], []
    for item in e.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"]:
            problems.append(message)
            continue
        field = str(item["loc"][0])
        name = "KAFKA_BOOTSTRAP_SERVERS" if field == "kafka_bootstrap_servers" else f"HUB_{field.upper()}"
        value = item.get("input")
        shown = "(hidden)" if _SECRET.search(field) else repr(value)
        problems.append(f"{name}={shown}: {message}")
        if field.endswith("_port") and isinstance(value, str) and ":" in value:
            hints.append(f"{name} is the port alone ({value.rsplit(':', 1)[1]}); the address goes in "
                         f"{name.removesuffix('_PORT')}_HOST")
    hint = "; ".join(hints) or "fix it in the environment or in .env; README.md lists the settings (hub/settings.py all)"
    return [f"bad setting: {'; '.join(problems)}", hint]


def _bootstrap() -> str:
    try:
        from hub.settings import Settings

        return Settings().kafka_bootstrap_servers
    except Exception:
        return "KAFKA_BOOTSTRAP_SERVERS"


def _kafka(e: BaseException) -> list[str] | None:
    from aiokafka.errors import KafkaConnectionError, KafkaError

    if isinstance(e, KafkaConnectionError | ConnectionRefusedError) or (
            isinstance(e, OSError) and "connect call failed" in str(e).lower()):
        return [f"cannot reach the Kafka broker at {_bootstrap()}",
                "start one (`make kafka-up`) or point KAFKA_BOOTSTRAP_SERVERS at yours"]
    if isinstance(e, KafkaError):
        text = str(e).removeprefix(f"{type(e).__name__}: ")
        return [f"Kafka at {_bootstrap()} answered {type(e).__name__}" + (f": {text}" if text else ""),
                "check the broker (`hub kafka status` for the local one) and try again; --debug shows more"]
    return None


def _store(e: BaseException) -> list[str] | None:
    from sqlalchemy.exc import SQLAlchemyError

    from hub.core.errors import StoreError

    if not isinstance(e, SQLAlchemyError | StoreError):
        return None
    cause = getattr(e, "orig", None) or e.__cause__ or e
    try:
        from hub.settings import Settings

        url = re.sub(r"//[^@/]*@", "//***@", Settings().database_url)
    except Exception:
        url = "HUB_DATABASE_URL"
    return [f"cannot use the store at {url}: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}",
            "check HUB_DATABASE_URL (a writable path for SQLite; a server that answers for PostgreSQL)"]


def _local_kafka(e: BaseException) -> list[str] | None:
    from hub.kafka.local import LocalKafkaError

    if isinstance(e, LocalKafkaError):
        lines = str(e).strip().splitlines() or [type(e).__name__]
        return [lines[0], "scripts/system-deps.sh run installs Java and Maven; --debug shows the broker's log tail"]
    return None


def _file(e: BaseException) -> list[str] | None:
    if isinstance(e, OSError) and e.filename is not None:
        return [f"{e.filename}: {e.strerror or e}", "check the path and its permissions"]
    return None


def _hub(e: BaseException) -> list[str] | None:
    from hub.core.errors import HubError

    if isinstance(e, HubError):
        return [f"{type(e).__name__}: {redact(str(e))}"]
    return None


QUIET_LIBRARIES = ("aiokafka", "faststream", "hub.kafka.faststream")  # the last: FastStream (new_broker)


@contextlib.contextmanager
def quiet_logging(debug: bool) -> Iterator[None]:
    """While a command runs: only errors reach stderr, and the Kafka libraries keep quiet (a broker that does not
    answer is reported once, by `explain`). `hub run` and `hub api` set up their own logging. The logging set-up
    is put back afterwards: a command run in-process (tests) leaves the process's logging as it found it."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers), {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if debug else logging.ERROR)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.CRITICAL + 1)
    try:
        yield
    finally:
        root.setLevel(saved[0])
        root.handlers = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
