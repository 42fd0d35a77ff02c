"""The resident directory's models and its change events. Nothing here does I/O.

Residents reach the directory through `<prefix>.residents` (a compacted topic keyed by resident id, fed by
the platform's sign-up and preference screens) and through `hub residents import FILE.csv`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.core.events.common import DISTRICTS, Channel, Recipient
from hub.core.fields import Id
from hub.core.time import KST

RESIDENT_EVENT_TYPES = (
    "resident.registered.v1",
    "resident.preferences_changed.v1",
    "resident.opted_out.v1",
    "resident.opted_in.v1",
    "resident.deleted.v1",
)


class Consents(BaseModel):
    """What the resident agreed to receive. Advertising needs its own consent, and at night (21:00-08:00 KST)
    another one (정보통신망법 제50조)."""

    model_config = ConfigDict(extra="forbid")

    informational: bool = Field(default=True, description="County news and notices (정보성)")
    advertising: bool = Field(default=False, description="Advertising (광고성)")
    advertising_night: bool = Field(default=False, description="Advertising between 21:00 and 08:00 KST")


class QuietHours(BaseModel):
    """Hours the resident does not want non-urgent notices, e.g. 22:00-07:00 (may cross midnight)."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time

    @field_validator("start", "end")
    @classmethod
    def _kst_time_of_day(cls, value: time) -> time:
        """Quiet hours are KST times of day to the second (as the store keeps them), compared with the clock
        read in KST: one written with an offset becomes the KST time it names (KST has no daylight saving, so
        that is the same every day)."""
        if value.utcoffset() is not None:
            value = datetime.combine(date(2026, 1, 1), value).astimezone(KST).time()
        return value.replace(microsecond=0, tzinfo=None)

    @model_validator(mode="after")
    def _a_window(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours: start and end must differ")
        return self


class Resident(BaseModel):
    """One resident of the directory."""

    model_config = ConfigDict(extra="forbid")

    resident_id: Id = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=50)
    phone: str | None = None
    email: str | None = Field(default=None, max_length=254)
    district: str | None = None
    interests: list[str] = Field(default_factory=list, max_length=50)
    locale: str = Field(default="ko", pattern=r"^[a-z]{2}$")
    channels: list[Channel] | None = None
    consents: Consents = Field(default_factory=Consents)
    opted_out: bool = False
    quiet_hours: QuietHours | None = None

    @field_validator("phone", "email")
    @classmethod
    def _contact(cls, value: str | None, info: Any) -> str | None:
        if value is None or value == "":
            return None
        # the same rules as a recipient named in an event
        checked: str | None = getattr(Recipient.model_validate({"resident_id": "x", info.field_name: value}),
                                      info.field_name)
        return checked

    @field_validator("district")
    @classmethod
    def _district(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in DISTRICTS:
            raise ValueError(f"unknown district {value!r}; the county's are {', '.join(DISTRICTS)}")
        return value

    @field_validator("interests")
    @classmethod
    def _interests(cls, value: list[str]) -> list[str]:
        return sorted({i.strip() for i in value if i.strip()})

    def recipient(self) -> Recipient:
        """The resident as a recipient. Not validated again: a Resident's contact points passed a Recipient's own
        checks when it was made (`_contact`), and the store keeps only what a checked Resident wrote."""
        return Recipient.model_construct(resident_id=self.resident_id, name=self.name, phone=self.phone,
                                         email=self.email, channels=self.channels, locale=self.locale)


class PreferencesChange(BaseModel):
    """Data of resident.preferences_changed.v1: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    district: str | None = None
    interests: list[str] | None = None
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    channels: list[Channel] | None = None
    consents: Consents | None = None
    quiet_hours: QuietHours | None = None


# --------------------------------------------------------------------------- CSV import

CSV_COLUMNS = ("resident_id", "name", "phone", "email", "district", "interests", "locale", "channels",
               "consent_informational", "consent_advertising", "consent_advertising_night", "opted_out",
               "quiet_start", "quiet_end")
_TRUE, _FALSE = {"y", "yes", "true", "1", "o", "예", "동의"}, {"n", "no", "false", "0", "x", "", "아니오", "미동의"}


def _flag(value: str | None, column: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{column}: {value!r} is not yes/no (Y/N, true/false, 1/0, 예/아니오)")


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").replace(",", ";").split(";") if v.strip()]


def resident_from_row(row: dict[str, str | None]) -> Resident:
    """One CSV row -> Resident; ValueError / ValidationError say what is wrong."""
    unknown = set(row) - set(CSV_COLUMNS) - {None}
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(sorted(repr(u) for u in unknown))}")
    quiet = None
    if (row.get("quiet_start") or "").strip() or (row.get("quiet_end") or "").strip():
        quiet = {"start": (row.get("quiet_start") or "").strip(), "end": (row.get("quiet_end") or "").strip()}
    return Resident.model_validate({
        "resident_id": (row.get("resident_id") or "").strip(),
        "name": (row.get("name") or "").strip() or None,
        "phone": (row.get("phone") or "").strip() or None,
        "email": (row.get("email") or "").strip() or None,
        "district": (row.get("district") or "").strip() or None,
        "interests": _list(row.get("interests")),
        "locale": (row.get("locale") or "").strip() or "ko",
        "channels": _list(row.get("channels")) or None,
        "consents": {
            "informational": _flag(row.get("consent_informational") or "y", "consent_informational"),
            "advertising": _flag(row.get("consent_advertising"), "consent_advertising"),
            "advertising_night": _flag(row.get("consent_advertising_night"), "consent_advertising_night"),
        },
        "opted_out": _flag(row.get("opted_out"), "opted_out"),
        "quiet_hours": quiet,
    })


NOT_UTF8 = "not UTF-8 text (from Excel, save as 'CSV UTF-8')"


def read_csv_bytes(data: bytes) -> Iterator[tuple[int, Resident | None, str | None]]:
    """`read_csv` of a file's bytes: UTF-8, with or without a BOM. A row with bytes that are not UTF-8 (Excel's
    plain 'CSV' is CP949) is refused with its line number, like any other bad row."""
    return read_csv(data.decode("utf-8", "surrogateescape"))


def _not_utf8(values: Iterable[str | None]) -> bool:
    """Whether `surrogateescape` had to stand in for bytes that are not UTF-8."""
    return any(v is not None and any("\udc80" <= c <= "\udcff" for c in v) for v in values)


def read_csv(text: str) -> Iterator[tuple[int, Resident | None, str | None]]:
    """(line number, resident, None) for a good row, (line number, None, reason) for a bad one."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        columns = list(reader.fieldnames or ())
    except csv.Error as e:
        yield 1, None, f"the header is not a CSV row: {e}"
        return
    if _not_utf8(columns):
        yield 1, None, f"the header is {NOT_UTF8}"
        return
    missing = {"resident_id"} - set(columns)
    if missing:
        yield 1, None, "the header must name at least resident_id (columns: " + ", ".join(CSV_COLUMNS) + ")"
        return
    if twice := sorted({repr(c) for c in columns if columns.count(c) > 1}):
        yield 1, None, f"the header names column(s) {', '.join(twice)} more than once"
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # e.g. a field over csv.field_size_limit(): where this row ends is unknown
            yield reader.reader.line_num, None, f"not a CSV row ({e}); the rest of the file was not read"
            return
        line = reader.line_num
        if None in row:
            yield line, None, f"{len(row[None])} more field(s) than the header has"
            continue
        if _not_utf8([*row.values()]):
            yield line, None, NOT_UTF8
            continue
        try:
            yield line, resident_from_row(row), None
        except ValidationError as e:
            yield line, None, "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}" for err in e.errors(include_url=False)
            )
        except ValueError as e:
            yield line, None, str(e)
