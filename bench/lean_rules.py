"""The pure part of the reference pipeline (bench/lean.py): what it accepts, what it renders, how it names a
delivery and tells an outcome. No I/O; the hub's rules, written again by hand (the patterns are hub/events.py's)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, model_validator

from hub.core.rendering.renderer import TEMPLATES_DIR  # the hub's own templates: the reference renders the same text

EVENT_TYPE = "water.bill.issued.v1"
EVENT_TITLE = "상수도 요금 고지"
COUNTY = {"name": "양평군", "contact": "031-770-2114"}  # the hub's default identity (hub.core.rendering.identity.Identity)
DEFAULT_ORDER = ("kakao", "sms", "email")  # the hub's default channel order
SMS_MAX, LMS_MAX, SUBJECT_MAX = 90, 2000, 40
STATUS_TYPE = "hub.delivery.status.v1"
FINAL = ("sent", "failed", "suppressed")

# the patterns of hub/events.py, which the published JSON Schemas carry
ID = r"^[^\u0000-\u001f\u007f]+$"
PHONE = r"^[ -]*(\+[ -]*8[ -]*2|0)[ -]*1[ -]*[016789]([ -]*[0-9]){7,8}[ -]*$"
_NOT_IN_ADDRESS = r"@<>\"',;\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL = rf"^[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}]+\.[^{_NOT_IN_ADDRESS}]+$"
DATE_TIME = (r"^(?!0000-|0001-01-01|9999-12-3[01])[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
             r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
DATE = r"^(?!0000-)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_RE = {name: re.compile(pattern) for name, pattern in (("phone", PHONE), ("email", EMAIL), ("time", DATE_TIME),
                                                       ("date", DATE))}


def _matches(name: str, value: str) -> bool:
    return _RE[name].fullmatch(value) is not None


class Refused(Exception):
    """A record that cannot be processed: it goes to the dead-letter topic with this reason."""


# --------------------------------------------------------------------------- validation


def _time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _matches("time", value):
        raise ValueError("a time is an RFC 3339 string with its UTC offset")
    return datetime.fromisoformat(value)


def _date(value: Any) -> Any:
    if not isinstance(value, str) or not _matches("date", value):
        raise ValueError("a date is a string YYYY-MM-DD")
    return date.fromisoformat(value)


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _phone(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not _matches("phone", value):
        raise ValueError("not a Korean mobile number")
    digits = value.replace(" ", "").replace("-", "")
    return "0" + digits[3:] if digits.startswith("+82") else digits


def _email(value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or not _matches("email", value)):
        raise ValueError("not an e-mail address")
    return value



Time = Annotated[datetime, BeforeValidator(_time)]
Id = Annotated[str, Field(pattern=ID)]


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    specversion: Literal["1.0"]
    id: Id = Field(min_length=1, max_length=200)
    source: Id = Field(min_length=1, max_length=500)
    type: Literal["water.bill.issued.v1"]
    time: Time | None = None
    subject: str | None = Field(default=None, max_length=500)
    dedupkey: Id | None = Field(default=None, min_length=1, max_length=200)

    @property
    def notice_key(self) -> str:
        return f"dedup:{self.dedupkey}" if self.dedupkey else f"{self.source}#{self.id}"


class Recipient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    resident_id: Id = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=50)
    phone: Annotated[str | None, BeforeValidator(_phone)] = None
    email: Annotated[str | None, BeforeValidator(_email), Field(max_length=254)] = None
    channels: list[Literal["kakao", "sms", "email"]] | None = None
    locale: str = Field(default="ko", pattern=r"^[a-z]{2}$")


class WaterBill(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipients: list[Recipient] = Field(min_length=1, max_length=1000)
    send_at: Time | None = None
    customer_no: str = Field(min_length=1, max_length=30)
    period: str = Field(min_length=1, max_length=30)
    amount_won: Annotated[int, BeforeValidator(_whole), Strict(), Field(ge=0)]
    due_date: Annotated[date, BeforeValidator(_date)]
    account: str | None = Field(default=None, max_length=60)

    @model_validator(mode="before")
    @classmethod
    def _one_recipient(cls, value: Any) -> Any:
        if isinstance(value, dict) and "recipient" in value:
            value = dict(value)
            rest = value.get("recipients", [])
            value["recipients"] = [*rest, value.pop("recipient")] if isinstance(rest, list) else rest
        return value


class Request(BaseModel):
    """A delivery request, router -> sender (its own format: the reference's, not the hub's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    delivery_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    notice_key: str = Field(min_length=1, max_length=1000)
    event_id: str = Field(min_length=1, max_length=200)
    resident_id: str = Field(min_length=1, max_length=64)
    to: str = Field(pattern=r"^01[016789][0-9]{7,8}$")
    kind: Literal["SMS", "LMS"]
    subject: str | None = None
    text: str = Field(min_length=1)
    event_time: datetime | None = None


def read_event(headers: Sequence[tuple[str, bytes | None]], value: bytes | None) -> tuple[Envelope, WaterBill]:
    attrs: dict[str, str] = {}
    content_type = ""
    try:
        for key, raw in headers:
            if key == "content-type":
                content_type = (raw or b"").decode()
            elif key.startswith("ce_"):
                attrs[key[3:]] = (raw or b"").decode()
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise Refused(f"not a binary-mode CloudEvent with JSON data (content-type {content_type!r})")
        return Envelope.model_validate(attrs), WaterBill.model_validate_json(value or b"")
    except UnicodeDecodeError as e:
        raise Refused(f"a header is not UTF-8: {e}") from e
    except ValidationError as e:
        raise Refused(f"invalid: {e.errors(include_url=False)[:3]}") from e


# --------------------------------------------------------------------------- rendering and bytes


_WEEKDAYS = "월화수목금토일"


def won(value: int | float) -> str:
    return f"{int(value):,}원"


def date_ko(value: date) -> str:
    return f"{value.year}년 {value.month}월 {value.day}일({_WEEKDAYS[value.weekday()]})"


def euckr_len(text: str) -> int:
    """EUC-KR bytes (Hangul 2, ASCII 1); Refused for a character no carrier takes (outside KS X 1001)."""
    try:
        size = len(text.encode("euc-kr"))
    except UnicodeEncodeError as e:
        raise Refused(f"character {text[e.start]!r} is not in EUC-KR") from e
    if size != 2 * len(text) - len(text.encode("ascii", "ignore")):
        raise Refused("a Hangul syllable outside KS X 1001")
    return size


@dataclass(frozen=True)
class Sms:
    kind: Literal["SMS", "LMS"]
    subject: str | None
    text: str


class Templates:
    """The hub's SMS templates of the water bill, compiled once, in the hub's sandbox settings."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        env = SandboxedEnvironment(loader=FileSystemLoader(str(templates_dir)), undefined=StrictUndefined,
                                   autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
        env.filters.update(won=won, date_ko=date_ko)
        self.body = env.get_template(f"{EVENT_TYPE}/sms.j2")
        self.subject = env.get_template(f"{EVENT_TYPE}/sms.subject.j2")

    def render(self, envelope: Envelope, data: dict[str, Any], recipient: Recipient) -> Sms:
        context = {
            "data": data,
            "event": {"id": envelope.id, "type": envelope.type, "source": envelope.source,
                      "subject": envelope.subject, "time": envelope.time, "title": EVENT_TITLE},
            "recipient": {"resident_id": recipient.resident_id, "name": recipient.name or "주민"},
            "county": COUNTY,
        }
        try:
            text = self.body.render(context).strip()
            if not text:
                raise Refused("SMS body is empty")
            size = euckr_len(text)
            if size <= SMS_MAX:
                return Sms("SMS", None, text)
            if size > LMS_MAX:
                raise Refused(f"LMS body is {size} bytes; the limit is {LMS_MAX}")
            subject = self.subject.render(context).strip()
            if not subject or euckr_len(subject) > SUBJECT_MAX:
                raise Refused(f"LMS subject must be 1-{SUBJECT_MAX} bytes")
            return Sms("LMS", subject, text)
        except (TemplateError, ValueError, TypeError, AttributeError, LookupError) as e:
            raise Refused(f"render: {type(e).__name__}: {e}") from e


def delivery_id(notice_key: str, resident_id: str, channel: str) -> str:
    return hashlib.sha256(f"{notice_key}\x1f{resident_id}\x1f{channel}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def masked(phone: str) -> str:
    return f"{phone[:3]}-****-{phone[-4:]}"


Row = tuple[str, str, str, str, str]  # delivery id, notice key, event id, resident id, masked number
Outcome = tuple[str | None, str, str, str, str | None, str | None, int]  # id, event, resident, state, reason, ref, attempt


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


_RULES = {"suppressed": "opted-out", "deduplicated": "deduplicated"}


def status_event(source: str, outcome: Outcome, *, to_masked: str = "", latency_s: float | None = None) -> bytes:
    """A structured-mode CloudEvent in the hub's status format (hub.delivery.status.v1)."""
    did, event_id, resident_id, state, reason, ref, attempt = outcome
    at = utc_now()
    data = {"delivery_id": did, "event_id": event_id, "event_type": EVENT_TYPE, "resident_id": resident_id,
            "channel": "sms" if did else None, "state": state, "to_masked": to_masked, "reason": reason,
            "rule": _RULES.get(state),
            "provider": "sens" if state == "sent" else None, "provider_ref": ref, "attempt": attempt, "at": at,
            "latency_s": latency_s}
    return json.dumps({"specversion": "1.0", "id": f"{did or f'{event_id}:{resident_id}'}:{state}:{attempt}",
                       "source": source, "type": STATUS_TYPE, "subject": event_id, "time": at,
                       "datacontenttype": "application/json", "data": data}, ensure_ascii=False).encode()
