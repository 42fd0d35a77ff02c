"""The `hub` command's offline parts: `templates check|preview` and `schemas export|list`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from hub.cli import app
from hub.core.cloudevents import new_event
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.rendering.renderer import Renderer

#: a pipe or a CI log: no terminal to size the output by, so rich uses 80 columns
runner = CliRunner(env={"COLUMNS": "80", "HUB_TOPIC_PREFIX": "hub"})


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def hub(*args: str) -> Result:
    return runner.invoke(app, list(args))


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_templates_check_passes() -> None:
    result = hub("templates", "check")

    assert result.exit_code == 0, result.output
    assert "all templates render within the channel limits" in result.stdout
    assert f"({len(CATALOGUE)} event types)" in result.stdout


@pytest.mark.parametrize(
    ("event_type", "channel"),
    [("water.leak.suspected.v1", "sms"), ("reservation.reminder.v1", "kakao"), ("notice.published.v1", "email")],
)  # fmt: skip
def test_templates_preview_prints_the_message(renderer: Renderer, event_type: str, channel: str) -> None:
    event = validate_event(new_event(event_type, sample_data(event_type), source="/preview", id="preview"))
    expected = renderer.render(event, event.data.recipients[0], channel)  # type: ignore[arg-type]

    result = hub("templates", "preview", event_type, "--channel", channel)

    assert result.exit_code == 0, result.output
    header, body = result.stdout.split("─" * 20, 1)  # what the text does not show, a rule, then the text
    assert one_line(expected.text) in one_line(body)  # the words, in order
    for line in expected.text.strip().splitlines():
        assert line in result.stdout.splitlines(), f"line broken or missing in the preview: {line!r}"
    first = expected.text.strip().splitlines()[0]
    assert result.stdout.count(first) == 1, "the message is shown once, not as JSON and then as text"
    assert "{" not in header


def test_templates_preview_shows_the_byte_count() -> None:
    text = hub("templates", "preview", "water.leak.suspected.v1", "--channel", "sms").stdout
    shown = json.loads(hub("templates", "preview", "water.leak.suspected.v1", "--channel", "sms", "--json").stdout)

    assert (shown["kind"], shown["byte_count"]) == ("LMS", 292)
    assert text.startswith("LMS: 292 bytes (EUC-KR; LMS allows 2,000)\n")
    assert f"subject: {shown['subject']}\n" in text


def data_file(tmp_path: Path, event_type: str, **change: Any) -> str:
    path = tmp_path / "data.json"
    path.write_text(json.dumps({**sample_data(event_type), **change}, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("args", "change", "message"),
    [
        (["water.leak.suspected.v1", "--channel", "sms"], {"address": "용문면 다문리 45 💧"},
         "RenderError: water.leak.suspected.v1/sms: SMS body: character '💧' (U+1F4A7)"),
        (["water.leak.suspected.v1", "--channel", "sms"], {"address": "용문면 똠 다문리"}, "RenderError"),
        (["notice.published.v1", "--channel", "email"], {"title": "안내\r\nBcc: all@example.org"},
         "email subject must be one non-empty line"),
        (["water.leak.suspected.v1", "--channel", "sms"], {"flow_lph": -1}, "EventError: water.leak.suspected.v1 "
                                                                            "data invalid: flow_lph"),
        (["water.leak.suspected.v1", "--channel", "fax"], {}, "no fax template for water.leak.suspected.v1"),
    ],
    ids=["emoji", "outside-euckr", "subject-injection", "invalid-data", "unknown-channel"],
)  # fmt: skip
def test_templates_preview_refuses_with_a_clear_message(tmp_path: Path, args: list[str], change: dict[str, Any],
                                                        message: str) -> None:  # fmt: skip
    result = hub("templates", "preview", *args, "--data", data_file(tmp_path, args[0], **change))

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert message in one_line(result.stderr)


def test_templates_preview_of_an_unknown_type_says_so() -> None:
    result = hub("templates", "preview", "water.meter.exploded.v1")

    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "water.meter.exploded.v1" in result.output


def test_schemas_export_writes_22_files(tmp_path: Path) -> None:
    result = hub("schemas", "export", "--dir", str(tmp_path / "out"))

    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*.json"))) == 22
    assert "wrote 22 schema files" in result.stdout


def test_schemas_list_lists_every_type() -> None:
    result = hub("schemas", "list")

    assert result.exit_code == 0, result.output
    for spec in CATALOGUE.values():
        assert spec.type in result.stdout, f"{spec.type} missing or cut in `hub schemas list`"
    assert "hub.events.water" in result.stdout
