"""Every `hub` command, given bad input, says what is wrong in a line or two and never shows a traceback.

The commands are enumerated from the Typer app, not listed here: a new command is covered the day it is added.
Bad input of four kinds: an unknown option and a value that is not a number (usage errors: exit 2), a bad setting
(HUB_OPS_PORT=127.0.0.1:8081, which reads like what the README once invited) and a broker that does not answer
(exit 1 when the command needs one). The last two run `hub` as a process, as a person does. `--debug` shows the
traceback the others hide."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer._click.core import Command
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from hub.cli import app
from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner(env={"COLUMNS": "100"})

#: plausible values for required parameters, by parameter name (anything else gets "x"), so that a command
#: gets past its own argument checks and meets the bad setting or the silent broker
PLAUSIBLE = {"event_type": "water.bill.issued.v1", "department": "sanitation", "refs": "0:0", "key_id": "key_x",
             "event": "e-1", "resident": "R-1", "note": "checked"}


def leaves() -> list[tuple[str, ...]]:
    """Every command's path under `hub`, from the app itself."""
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def visit(command: Command, path: tuple[str, ...]) -> None:
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                visit(sub, (*path, name))
        else:
            paths.append(path)

    visit(root, ())
    return paths


def command_at(path: tuple[str, ...]) -> Command:
    command = typer.main.get_command(app)
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    return command


def required_args(path: tuple[str, ...], junk_file: Path) -> list[str]:
    """Values for the command's required parameters: plausible ones, a junk file for a path."""
    args: list[str] = []
    for param in command_at(path).params:
        assert isinstance(param, TyperArgument | TyperOption)
        if not param.required:
            continue
        value = str(junk_file) if param.type_descriptor.is_path else PLAUSIBLE.get(param.name or "", "x")
        if isinstance(param, TyperArgument):
            args.append(value)
        else:
            assert isinstance(param, TyperOption)
            args += [param.opts[0], value]
    return args


def short_failure(code: int, stderr: str, where: str = "") -> None:
    assert "Traceback" not in stderr, f"{where}\n{stderr}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code:
        assert code in (1, 2), f"{where}: exit {code}\n{stderr}"
        assert 1 <= len(lines) <= 2, f"{where}: {len(lines)} lines:\n{stderr}"


def test_every_command_is_found() -> None:
    paths = {" ".join(p) for p in leaves()}
    assert {"run", "publish", "lag", "dlq replay", "dlq resolve", "keys create", "templates preview"} <= paths
    assert len(paths) >= 20


@pytest.mark.parametrize("path", leaves(), ids=" ".join)
def test_an_unknown_option_is_a_usage_error_in_two_lines(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--no-such-option"])

    assert result.exit_code == 2, result.output
    short_failure(result.exit_code, result.stderr)
    assert f"hub {' '.join(path)}: No such option: --no-such-option" in result.stderr
    assert f"hub {' '.join(path)} --help" in result.stderr


def numeric_options() -> Iterator[tuple[tuple[str, ...], str]]:
    for path in leaves():
        for param in command_at(path).params:
            if isinstance(param, TyperOption) and param.type_descriptor.annotation in (int, float, int | None):
                yield path, param.opts[0]


@pytest.mark.parametrize(("path", "option"), list(numeric_options()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_a_number_that_is_not_one_is_a_usage_error(path: tuple[str, ...], option: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*path, *required_args(path, tmp_path / "none"), option, "many"])

    assert result.exit_code == 2, result.output
    short_failure(result.exit_code, result.stderr)
    assert option in result.stderr


def hub(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def quiet_env(tmp_path: Path, **changes: str) -> dict[str, str]:
    """An environment of its own: a store and outbox in tmp_path, no ops server, a local broker home that
    cannot be created (so `hub kafka up` fails instead of starting one), and the given changes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "KAFKA_"))}
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env.update(HUB_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", HUB_OUTBOX_DIR=str(tmp_path / "out"),
               HUB_OPS_PORT="0", HUB_LOCAL_KAFKA_HOME=str(blocker / "kafka"), HUB_TOPIC_PREFIX="errs",
               COLUMNS="100", PYTHONPATH=str(ROOT))
    env.update(changes)
    return env


def test_a_bad_setting_is_named_in_two_lines_by_every_command(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (a bad setting stops a command before it does anything): each command that reads the settings
    names the bad one and says how to write it; the others end in a usage error or need no settings."""
    junk = tmp_path / "junk.txt"
    junk.write_text("{not json, not csv\x00", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    env = quiet_env(tmp_path, HUB_OPS_PORT="127.0.0.1:8081")
    named = []
    for path in leaves():
        result = runner.invoke(app, [*path, *required_args(path, junk)], env=env)
        where = f"hub {' '.join(path)}: exit {result.exit_code}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), where
        assert "Traceback" not in result.output, where
        short_failure(result.exit_code, result.stderr)
        if "HUB_OPS_PORT" in result.stderr:
            assert result.exit_code == 1, where
            assert "HUB_OPS_PORT='127.0.0.1:8081'" in result.stderr and "HUB_OPS_HOST" in result.stderr, where
            named.append(" ".join(path))
        else:
            assert result.exit_code in (0, 2), where
    assert {"run", "api", "lag", "dlq list", "kafka up", "templates preview", "why"} <= set(named), named


def test_a_broker_that_does_not_answer_is_one_line_and_a_hint(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("{not json, not csv\x00", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    unreachable = []
    with socket.socket() as taken:  # `hub api` finds its port taken, instead of serving for ever
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = quiet_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{_free_port()}",
                        HUB_API_PORT=str(taken.getsockname()[1]))
        for path in leaves():
            result = runner.invoke(app, [*path, *required_args(path, junk)], env=env)
            where = f"hub {' '.join(path)}: exit {result.exit_code}\n{result.output}"
            assert result.exception is None or isinstance(result.exception, SystemExit), where
            assert "Traceback" not in result.output, where
            short_failure(result.exit_code, result.stderr, where)
            if "cannot reach the Kafka broker" in result.stderr:
                assert result.exit_code == 1 and "KAFKA_BOOTSTRAP_SERVERS" in result.stderr, where
                unreachable.append(" ".join(path))
            if path == ("api",):
                assert result.exit_code == 1 and "cannot listen on" in result.stderr, where
    assert {"run", "lag", "dlq list", "dlq resolve"} <= set(unreachable), unreachable


@pytest.mark.parametrize("args", [["run"], ["publish", "water.bill.issued.v1", "--sample"]], ids=" ".join)
def test_as_a_process_too(args: list[str], tmp_path: Path) -> None:
    """The same as a person meets it: the command run as a process, its logging as it sets it up."""
    done = hub(args, quiet_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{_free_port()}"), tmp_path)

    assert done.returncode == 1, done.stderr
    short_failure(done.returncode, done.stderr)
    assert "cannot reach the Kafka broker" in done.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = quiet_env(tmp_path, HUB_OPS_PORT="127.0.0.1:8081")

    plain, debug = hub(["lag"], env, tmp_path), hub(["lag", "--debug"], env, tmp_path)

    assert plain.returncode == debug.returncode == 1
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert plain.stderr.strip().splitlines()[-2:] == debug.stderr.strip().splitlines()[-2:]


@pytest.mark.parametrize(("args", "message"), [
    (["publish", "water.bill.issued.v1", "--data", "missing.json"], "file 'missing.json' does not exist"),
    (["publish", "water.bill.issued.v1", "--data", "bad.json"], "--data bad.json: not valid JSON"),
    (["publish", "water.bill.issued.v1", "--data", "wrong.json"], "the event is not valid"),
    (["publish", "water.meter.exploded.v9", "--sample"], "unknown event type 'water.meter.exploded.v9'"),
    (["residents", "import", "missing.csv"], "'missing.csv' does not exist"),
    (["templates", "preview", "water.bill.issued.v1", "--data", "bad.json"], "not valid JSON"),
    (["lag", "--samples", "0"], "--samples"),
    (["dlq", "resolve", "two", "--note", "x"], "PARTITION:OFFSET"),
], ids=["missing-file", "bad-json", "invalid-data", "unknown-type", "missing-csv", "preview-bad-json", "range",
        "bad-ref"])  # fmt: skip
def test_bad_files_and_values_are_usage_errors(args: list[str], message: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.json").write_text('{"period": ', encoding="utf-8")
    (tmp_path / "wrong.json").write_text('{"period": 12}', encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, args)

    assert result.exit_code == 2, result.output
    short_failure(result.exit_code, result.stderr)
    assert message in " ".join(result.stderr.split()), result.stderr


def flags() -> Iterator[tuple[tuple[str, ...], TyperOption]]:
    for path in leaves():
        for param in command_at(path).params:
            if isinstance(param, TyperOption) and param.type_descriptor.annotation is bool:
                yield path, param


@pytest.mark.parametrize(("path", "flag"), [(p, f.opts[0]) for p, f in flags()],
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_a_boolean_option_reads_and_works_as_a_flag(path: tuple[str, ...], flag: str, tmp_path: Path) -> None:
    """Help shows `--dry-run`, not `--dry-run <bool>`; `--dry-run true` says the flag takes no value."""
    help_text = runner.invoke(app, [*path, "--help"]).stdout

    assert flag in help_text and "<bool>" not in help_text and "BOOLEAN" not in help_text, help_text
    result = runner.invoke(app, [*path, *required_args(path, tmp_path / "none"), flag, "true"])
    assert result.exit_code == 2, result.output
    short_failure(result.exit_code, result.stderr)
    assert f"{flag} is a flag and takes no value" in result.stderr, result.stderr


def test_a_list_setting_that_is_not_json_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, ["lag"], env=quiet_env(tmp_path, HUB_RETRY_TIERS_S="10,60,600"))

    assert result.exit_code == 1, result.output
    short_failure(result.exit_code, result.stderr)
    assert "HUB_RETRY_TIERS_S='10,60,600' is not valid JSON" in result.stderr
    assert "'[10, 60, 600]'" in result.stderr
