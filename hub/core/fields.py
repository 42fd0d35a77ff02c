"""The field types event models share, and the patterns behind them. Pure.

The published JSON Schemas (`hub schemas export`) carry these patterns, and the models apply the same ones
(with `fullmatch`): what the schema accepts, the hub accepts, and nothing else.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict, ValidationError, WithJsonSchema

# The published JSON Schemas (`hub schemas export`) carry these patterns, and the models apply the same ones
# (with `fullmatch`): what the schema accepts, the hub accepts, and nothing else. Written to mean the same
# in ECMA-262 (JSON Schema), Python and Rust regular expressions: no \d, \s or \w, whose meaning differs.
PHONE_PATTERN = r"^[ -]*(\+[ -]*8[ -]*2|0)[ -]*1[ -]*[016789]([ -]*[0-9]){7,8}[ -]*$"
_NOT_IN_ADDRESS = r"@<>\"',;\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL_PATTERN = rf"^[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}]+\.[^{_NOT_IN_ADDRESS}]+$"
ID_PATTERN = r"^[^\u0000-\u001f\u007f]+$"  # ids go into the store and its indexes: no control characters
# RFC 3339 with its offset, within the dates the hub can take to UTC and KST whatever the offset (0001-01-02
# to 9999-12-29), without leap seconds (Python has none); the `date-time` format checks the day of the month
DATE_TIME_PATTERN = (r"^(?!0000-|0001-01-01|9999-12-3[01])[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
                     r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
DATE_PATTERN = r"^(?!0000-)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_PHONE_RE, EMAIL_RE = re.compile(PHONE_PATTERN), re.compile(EMAIL_PATTERN)
_DATE_TIME_RE, _DATE_RE = re.compile(DATE_TIME_PATTERN), re.compile(DATE_PATTERN)
_EARLIEST, _LATEST = date(1, 1, 2), date(9999, 12, 29)


def _rfc3339(value: Any) -> Any:
    """JSON carries a time as an RFC 3339 string with its offset: not a number (read as a Unix time) nor a
    time without offset. A datetime passes (events made in Python) and must be aware."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a time must carry its UTC offset")
        if not _EARLIEST <= value.date() <= _LATEST:
            raise ValueError(f"{value.isoformat()} is out of range: use a time between the years 1 and 9999")
        return value
    if not isinstance(value, str) or not _DATE_TIME_RE.fullmatch(value):
        raise ValueError("a time is an RFC 3339 string with its UTC offset, e.g. 2026-12-01T09:00:00+09:00, "
                         "between the years 1 and 9999")
    return datetime.fromisoformat(value)  # ValueError for a day the month does not have


def _iso_date(value: Any) -> Any:
    """A date is an ISO 8601 string, YYYY-MM-DD (a number would be read as a Unix time: 0 is 1970-01-01)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValueError("a date is a string YYYY-MM-DD, e.g. 2026-12-10")
    return date.fromisoformat(value)


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer: 1.0 is one; true and "1" are not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339),
                      WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN})]
IsoDate = Annotated[date, BeforeValidator(_iso_date),
                    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN})]
Integer = Annotated[int, BeforeValidator(_whole_number), Strict()]
Number = Annotated[float, Strict()]
Flag = Annotated[bool, Strict()]
Id = Annotated[str, Field(pattern=ID_PATTERN)]


def mobile_number(value: str) -> str:
    """A Korean mobile number as digits ('+82 10-1234-5678' -> '01012345678'); ValueError for anything else."""
    if not _PHONE_RE.fullmatch(value):
        raise ValueError("휴대전화 번호 형식이 아닙니다 (not a Korean mobile number)")
    digits = value.replace(" ", "").replace("-", "")
    return "0" + digits[3:] if digits.startswith("+82") else digits



def describe(error: ValidationError) -> str:
    """A validation error in one line: where and what, for the first ten problems."""
    parts = []
    for item in error.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
