"""`hub residents import FILE.csv` with any file: any encoding, a BOM or none, any columns, rows too short or too
long, hostile values. Every row is imported or refused with its line number and a reason; nothing crashes."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.residents import CSV_COLUMNS, Resident, read_csv_bytes
from tests.property.conftest import PROFILE
from tests.property.strategies import CsvFile, csv_files, hostile_text
from tests.property.tally import tally

PROPERTY = settings(settings.get_profile(PROFILE))


def verdicts(data: bytes) -> list[tuple[int, Resident | None, str | None]]:
    out = list(read_csv_bytes(data))
    lines = [line for line, _, _ in out]
    assert lines == sorted(set(lines)), f"line numbers must rise: {lines}"
    for line, resident, reason in out:
        assert line >= 1
        assert (resident is None) != (reason is None), "a row is imported or refused, not both"
        if reason is not None:
            assert reason.strip(), f"line {line}: an empty reason"
            reason.encode("utf-8")  # printed to the operator
        else:
            assert isinstance(resident, Resident)
    return out


@PROPERTY
@given(csv_files())
def test_every_row_is_imported_or_refused_with_its_line_and_reason(file: CsvFile) -> None:
    out = verdicts(file.data)
    tally(f"{file.encoding}")
    tally("rows imported", sum(r is not None for _, r, _ in out))
    tally("rows refused", sum(r is None for _, r, _ in out))
    if not (file.encoding in ("utf-8", "utf-8-sig") and "resident_id" in file.columns
            and len(set(file.columns)) == len(file.columns)):
        return  # the header is refused (line 1) or read another way: the checks above hold all the same
    rows = [row for row in file.rows if row]  # csv skips a blank line
    if out and "the rest of the file was not read" in (out[-1][2] or ""):  # a row csv cannot read ends the import
        rows, out = rows[: len(out)], out
        assert out[-1][0] >= len(out) + 1
        tally("stopped at a row csv cannot read")
    assert len(out) == len(rows), "one verdict per row, nothing dropped, nothing made up"
    first = file.columns.index("resident_id")
    for (_, resident, _), row in zip(out, rows, strict=True):
        if resident is not None:
            assert resident.resident_id == row[first].strip()
            assert set(file.columns) <= set(CSV_COLUMNS), "a row with an unknown column is refused"


@PROPERTY
@given(st.binary(max_size=400), st.sampled_from([b"", b"\xef\xbb\xbf", b"resident_id,name\n", b"\xff\xfe"]))
def test_any_bytes_at_all(data: bytes, prefix: bytes) -> None:
    tally("refused lines", sum(r is None for _, r, _ in verdicts(prefix + data)))


@PROPERTY
@given(st.lists(hostile_text(20), min_size=1, max_size=5), st.sampled_from(["cp949", "utf-8"]))
def test_a_korean_excel_file_is_refused_line_by_line_not_with_a_crash(names: list[str], encoding: str) -> None:
    """Excel's plain 'CSV' is CP949 on Korean Windows: its Hangul is not UTF-8."""
    out = io.StringIO()
    csv.writer(out).writerows([["resident_id", "name", "district"],
                               *([f"R-{i}", name, "용문면"] for i, name in enumerate(names))])
    data = out.getvalue().encode(encoding, "replace")
    result = verdicts(data)
    assert len(result) == len(names)
    if encoding == "cp949":  # 용문면 is not UTF-8 in CP949: every row says so
        assert all(reason and "UTF-8" in reason for _, _, reason in result), result
    tally(encoding)


def test_the_cli_reports_a_cp949_file_instead_of_crashing(tmp_path: Path, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from hub.cli import app

    path = tmp_path / "residents.csv"
    path.write_bytes("resident_id,name,district\nR-1,홍길동,용문면\nR-2,Kim,\n".encode("cp949"))
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    result = CliRunner().invoke(app, ["residents", "import", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert "line 2" in result.output and "UTF-8" in result.output
    assert "imported 1 resident(s); refused 1 row(s)" in result.output
    tally("CLI runs", test_id="tests/property/test_csv_import.py::test_the_cli_reports_a_cp949_file_instead_of_crashing")
