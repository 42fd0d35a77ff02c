"""The checked-in JSON Schemas match the models; `export` and `drift` agree."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.core import schemas
from hub.core.events import CATALOGUE
from hub.core.residents import RESIDENT_EVENT_TYPES

EXPECTED = sorted([*(f"{t}.json" for t in (*CATALOGUE, *RESIDENT_EVENT_TYPES)), "cloudevent.json"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """One export (it is the slow part) into a directory that held a stale schema and a README."""
    directory = tmp_path_factory.mktemp("schemas")
    (directory / "water.meter.read.v1.json").write_text("{}\n", encoding="utf-8")
    (directory / "README.md").write_text("kept\n", encoding="utf-8")
    return directory, schemas.export(directory)


@pytest.fixture
def copy(exported: tuple[Path, list[Path]], tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported[0], tmp_path / "schemas"))


def test_the_checked_in_schemas_match_the_models() -> None:
    assert schemas.SCHEMA_DIR == Path(__file__).resolve().parents[2] / "schemas"
    assert schemas.drift() == []


def test_export_writes_one_file_per_event_type_and_the_envelope(exported: tuple[Path, list[Path]]) -> None:
    directory, written = exported

    assert sorted(p.name for p in written) == EXPECTED
    assert len(written) == 22  # 16 catalogue events, 5 resident events, the envelope
    assert schemas.drift(directory) == []


def test_export_removes_stale_schemas_and_keeps_other_files(exported: tuple[Path, list[Path]]) -> None:
    directory, _ = exported

    assert sorted(p.name for p in directory.glob("*.json")) == EXPECTED
    assert (directory / "README.md").read_text(encoding="utf-8") == "kept\n"


@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_each_schema_names_its_type_and_carries_the_sample(exported: tuple[Path, list[Path]],
                                                           event_type: str) -> None:  # fmt: skip
    schema = json.loads((exported[0] / f"{event_type}.json").read_text(encoding="utf-8"))

    assert schema["$id"] == f"{schemas.SCHEMA_BASE_URI}{event_type}.json"
    assert schema["title"].startswith(f"{event_type}: ")
    assert schema["examples"]


def edit(path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    body["title"] += " (edited by hand)"
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def reindent(path: Path) -> None:
    path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")), ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("tamper", "reported"),
    [
        (lambda d: edit(d / "water.bill.issued.v1.json"), ["water.bill.issued.v1.json"]),
        (lambda d: reindent(d / "water.bill.issued.v1.json"), ["water.bill.issued.v1.json"]),
        (lambda d: (d / "cloudevent.json").write_text("{}\n", encoding="utf-8"), ["cloudevent.json"]),
        (lambda d: (d / "notice.published.v1.json").unlink(), ["notice.published.v1.json"]),
        (lambda d: (d / "water.meter.read.v1.json").write_text("{}\n", encoding="utf-8"), ["water.meter.read.v1.json"]),
        (lambda d: [edit(d / "reservation.reminder.v1.json"), (d / "goods.order.shipped.v1.json").unlink()],
         ["goods.order.shipped.v1.json", "reservation.reminder.v1.json"]),
        (lambda d: (d / "notes.txt").write_text("not a schema\n", encoding="utf-8"), []),
    ],
    ids=["changed", "reformatted", "envelope-changed", "missing", "stale", "two", "non-json-ignored"],
)  # fmt: skip
def test_drift_reports_changed_missing_and_stale_files(copy: Path, tamper: Callable[[Path], object],
                                                       reported: list[str]) -> None:  # fmt: skip
    tamper(copy)

    assert schemas.drift(copy) == reported


def test_schemas_speak_only_json_schema_keywords_for_bounds() -> None:
    """pydantic names a nullable number's bounds `ge`/`le` where a before-validator sits in its type; validators
    ignore such keys, so the published schema accepted `party_size: 0`, which the hub refuses."""
    import json

    from hub.core.schemas import rendered

    def pydantic_words(node: object) -> list[str]:
        if isinstance(node, list):
            return [w for n in node for w in pydantic_words(n)]
        if not isinstance(node, dict):
            return []
        found = [k for k in ("ge", "le", "gt", "lt") if k in node and node.get("type") in ("integer", "number")]
        return found + [w for v in node.values() for w in pydantic_words(v)]

    for name, text in rendered().items():
        assert pydantic_words(json.loads(text)) == [], name
