"""The Korean formatting filters templates use: dates with the weekday, 오전/오후 times, amounts in 원. Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from hub.core.time import KST

_WEEKDAYS = "월화수목금토일"


def _as_kst(value: datetime | date | str) -> datetime | date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(KST) if value.tzinfo else value
    return value


def date_ko(value: datetime | date | str) -> str:
    """2026-11-27 -> '2026년 11월 27일(금)'."""
    d = _as_kst(value)
    return f"{d.year}년 {d.month}월 {d.day}일({_WEEKDAYS[d.weekday()]})"


def time_ko(value: datetime | time | str) -> str:
    """10:00 -> '오전 10:00', 15:30 -> '오후 3:30'."""
    if isinstance(value, str) and "T" not in value and ":" in value:
        value = time.fromisoformat(value)
    t = _as_kst(value).time() if not isinstance(value, time) else value  # type: ignore[attr-defined]  # a date alone has no time of day: the filter fails on it, as it always has
    half = "오전" if t.hour < 12 else "오후"
    hour = t.hour % 12 or 12
    return f"{half} {hour}:{t.minute:02d}"


def datetime_ko(value: datetime | str) -> str:
    """'2026년 11월 28일(토) 오전 10:00'."""
    return f"{date_ko(value)} {time_ko(value)}"


def won(value: int | float) -> str:
    """15000 -> '15,000원'."""
    return f"{int(value):,}원"


FILTERS: dict[str, Callable[..., Any]] = {"date_ko": date_ko, "time_ko": time_ko, "datetime_ko": datetime_ko, "won": won}
