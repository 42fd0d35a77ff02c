"""Time in the hub: instants are aware and kept in UTC; a person reads KST, and is told so.

The county runs on KST (UTC+9, no daylight saving). The rules that read a clock (the advertising night, quiet
hours) read it in KST; the store and every comparison use aware UTC instants (`hub.store.models.UtcDateTime`);
JSON keeps ISO 8601 with its offset. A datetime without an offset is a bug wherever it turns up: it raises,
because guessing its zone is how a 08:00 KST hold once became 17:00.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hub.core.errors import NaiveDatetimeError

KST = ZoneInfo("Asia/Seoul")
PERSON_FORMAT = "%Y-%m-%d %H:%M"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC. A naive datetime raises: nothing says which clock it was read from."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(f"datetime without a UTC offset: {value.isoformat()}")
    return value.astimezone(UTC)


def kst(value: datetime, fmt: str = PERSON_FORMAT) -> str:
    """A time for a person to read: in KST, labelled, e.g. `2026-11-25 08:00 KST`."""
    return f"{as_utc(value).astimezone(KST):{fmt}} KST"


def kst_from_iso(text: str, fmt: str = PERSON_FORMAT) -> str:
    """An ISO 8601 time written by someone else (a Kafka header) for a person; as written when it cannot be
    read as an instant (no offset, or not a time), since it is shown, not acted on."""
    try:
        return kst(datetime.fromisoformat(text), fmt)
    except (ValueError, NaiveDatetimeError):
        return text
