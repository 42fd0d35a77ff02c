"""Opt-out lists from outside the hub (issue 15, point 4): the 080 service's list (CSV: a phone number per row,
with the time of the opt-out if given) and the SMS gateway's (NAVER Cloud SENS v2 `unsubscribes`: JSON, a list
of {"clientTelNo", "registerTime", "registerType"}). Pure: parsing, and the keyed hash under which a number no
resident has is kept (never the number itself: a phone number is personal data, and an unkeyed hash of one is
reversed by trying the 10^8 mobile numbers)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from hub.core.fields import mobile_number
from hub.core.time import KST, as_utc

Source = Literal["080", "sms-gateway"]
# the CloudEvent source of the resident events an import publishes: hub.core.consent.SOURCES reads it back as `via`
EVENT_SOURCES: dict[Source, str] = {"080": "/notice-hub/optouts/080", "sms-gateway": "/notice-hub/optouts/sens"}


@dataclass(frozen=True)
class OptOut:
    phone: str  # normalised as the directory normalises it (hub.core.fields.mobile_number)
    at: datetime | None  # when the resident opted out, if the list says


# (line or item number, the opt-out, None) or (number, None, reason)
Entry = tuple[int, OptOut | None, str | None]


def phone_key(secret: str, phone: str) -> str:
    """The keyed hash of a normalised number: what the suppression list keeps and the router looks up."""
    return hmac.new(secret.encode(), b"notice-hub optout " + phone.encode(), hashlib.sha256).hexdigest()


def _time(text: str) -> datetime | None:
    """A list's time: ISO 8601; without an offset it is KST (the 080 service and SENS are Korean services and
    write the county's wall clock)."""
    text = text.strip()
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return as_utc(value if value.tzinfo is not None else value.replace(tzinfo=KST))


def _entry(number: int, phone: Any, at: Any) -> Entry:
    if not isinstance(phone, str):
        return number, None, "no phone number"
    try:
        normal = mobile_number(phone.strip())
    except ValueError as e:
        return number, None, str(e)
    try:
        when = _time(at) if isinstance(at, str) else None
    except ValueError:
        return number, None, "the time is not ISO 8601 (e.g. 2026-11-24T10:00:00, KST when no offset)"
    return number, OptOut(normal, when), None


def read_080_csv(text: str) -> Iterator[Entry]:
    """Rows of `phone[,time]`; a first row without a digit in its first field is a header and is skipped."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        for row in reader:
            if not row or not "".join(row).strip():
                continue
            if reader.line_num == 1 and not any(c.isdigit() for c in row[0]):
                continue  # the header
            yield _entry(reader.line_num, row[0], row[1] if len(row) > 1 else None)
    except csv.Error as e:
        yield reader.line_num, None, f"not a CSV row ({e}); the rest of the file was not read"


def read_sens_json(text: str) -> Iterator[Entry]:
    """The SENS `unsubscribes` answer as a file: its JSON text (see `read_sens_items`)."""
    return read_sens_items(json.loads(text))


def sens_list(data: Any) -> list[Any] | None:
    """The items of a SENS `unsubscribes` answer: a list (or an object holding that list under one key)."""
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else None
    return data if isinstance(data, list) else None


def read_sens_items(data: Any) -> Iterator[Entry]:
    """The SENS `unsubscribes` answer (`sens_list`), item by item."""
    items = sens_list(data)
    if items is None:
        raise ValueError("the SMS gateway's list is a JSON list of {\"clientTelNo\", \"registerTime\", ...}")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield number, None, "not an object"
            continue
        yield _entry(number, item.get("clientTelNo"), item.get("registerTime"))


# --------------------------------------------------------------------------- the scheduled import (hub run)

# Each poll of the SMS gateway's list asks again for this much before the end of the last window it imported: a
# number the gateway registered just before that end but wrote to its list a little later is not missed.
# Importing a number twice changes nothing (the resident is opted out already; the hash is kept already).
SYNC_OVERLAP = timedelta(minutes=10)


def sync_window(imported_until: datetime | None, now: datetime,
                overlap: timedelta = SYNC_OVERLAP) -> tuple[datetime | None, datetime]:
    """The span of registration times the next poll asks for: from the end of the last window imported (less
    the overlap; None, the whole list, when nothing was imported yet) to now."""
    if imported_until is None:
        return None, now
    return min(imported_until - overlap, now), now
