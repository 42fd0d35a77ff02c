"""Hypothesis strategies for bad input: hostile text, Kafka records (bytes, headers, near-valid CloudEvents in
both binding modes), resident CSV files. Shared by the unit property tests and the consumer fuzz test."""

from __future__ import annotations

import copy
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from annotated_types import MaxLen
from hypothesis import strategies as st

from hub.core.cloudevents import STRUCTURED_CONTENT_TYPE
from hub.core.events import CATALOGUE, sample_data
from hub.core.events.common import CHANNELS, DISTRICTS
from hub.core.residents import CSV_COLUMNS

EVENT_TYPES = sorted(CATALOGUE)

# Text that has broken systems like this one: Hangul, Hangul outside EUC-KR, emoji (with modifiers), control
# characters, line and paragraph separators, BOM, zero-width and combining characters, Vietnamese, template
# syntax of Jinja and of AlimTalk, HTML.
EVALUATED = ("EVALUATED", "LOOPED")  # what the template syntax below prints if it were ever run
INJECTIONS = (
    "{{ 'EVAL' ~ 'UATED' }}",
    "{% for x in [1] %}LOOP{{ 'ED' }}{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "{% raw %}", "{% endraw %}", "{#", "{{", "}}", "{%", "%}",
    "#{name}", "#{", "<script>alert(1)</script>", "&amp;", "\"'",
)
PIECES = (
    *INJECTIONS, "홍길동", "양평군 용문면", "가나다라마바사", "똠", "뷁", "쀍", "🏠", "👍🏻", "🇰🇷", "\u200b", "\ufeff",
    "\x00", "\x07", "\x1b[31m", "\t", "\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "Nguyễn Văn An",
    "e\u0301", "ß", "İ", "①", "㈜", "\uffff", "\U0010ffff", "010-1234-5678", "a" * 200, "가" * 400,
)


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def hostile_text(max_size: int = 60, *, min_size: int = 0) -> st.SearchStrategy[str]:
    pieces = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=8).map("".join)
    return pieces.map(lambda s: s[:max_size]).filter(lambda s: len(s) >= min_size)


huge_text = st.builds(lambda piece, n: (piece * n)[:100_000], st.sampled_from((*PIECES[:12], "가", "a", "🏠")),
                      st.integers(100, 20_000))

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(),
    hostile_text(30), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text(12), children, max_size=4),
    max_leaves=12,
)

header_names = st.one_of(
    st.sampled_from(["content-type", "Content-Type", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time",
                     "ce_subject", "ce_dedupkey", "ce_data", "ce_", "CE_TYPE", "ce_extensions", "ce_x-y",
                     "ce_" + "a" * 30, "traceparent", "kafka_correlationId", "dlq_error_message", "hub_attempt"]),
    st.text(max_size=20),
)
header_values = st.one_of(
    st.none(), st.binary(max_size=40), hostile_text(40).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"1.0", b"application/json", STRUCTURED_CONTENT_TYPE.encode(), b"text/plain", b"\xff\xfe",
                     b"\xc3\x28", b"\xed\xa0\x80", "한글".encode("euc-kr"), b"2026-11-24T01:00:00Z", b"99999999999999999999"]),
)
Headers = list[tuple[str, bytes | None]]
kafka_headers = st.lists(st.tuples(header_names, header_values), max_size=8)


# --------------------------------------------------------------------------- near-valid CloudEvents

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
# the offsets the time rule names (Z, +09:00, -05:00, +05:30), any to the minute, and zones with daylight saving
named_offsets = st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5)),
                                 timezone(timedelta(hours=5, minutes=30))])
rfc3339_offsets = st.one_of(named_offsets, offsets)
any_zones = st.one_of(rfc3339_offsets, st.timezones())
# the whole calendar: times at its two ends cannot be shown in every time zone
aware_datetimes = st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), offsets)
iso_times = st.one_of(aware_datetimes.map(datetime.isoformat), st.datetimes().map(datetime.isoformat),
                      st.sampled_from(["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "2026-02-30T00:00:00Z",
                                       "2026-11-24T25:00:00+09:00", "2026-11-24T01:00:00", "1e10", "now"]))



# an event id the schema accepts: any text without control characters
event_ids = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20)


def valid_event(event_type: str, event_id: str = "fuzz-1") -> dict[str, Any]:
    """A structured CloudEvent the hub accepts: the catalogue's sample data."""
    return {"specversion": "1.0", "id": event_id, "source": "/test/fuzz", "type": event_type,
            "time": "2026-11-24T01:00:00Z", "datacontenttype": "application/json", "data": sample_data(event_type)}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += paths(item, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@dataclass
class Mutation:
    """What was done to a valid event: the path and the key a rejection's reason must name."""

    action: str
    path: tuple[Any, ...]

    @property
    def field(self) -> str:
        """The innermost name on the path (a list index names its list)."""
        return next((str(p) for p in reversed(self.path) if isinstance(p, str)), "data")


@st.composite
def mutated_event(draw: st.DrawFn, event_type: str | None = None) -> tuple[dict[str, Any], Mutation]:
    """A valid structured event with one thing changed: a value deleted, replaced or retyped, or a key added."""
    event = valid_event(event_type or draw(st.sampled_from(EVENT_TYPES)), draw(event_ids))
    action = draw(st.sampled_from(["delete", "replace", "retype", "add", "retime"]))
    if action == "retime":  # the envelope's time, send_at, or a time of the data
        names = ["send_at", *(k for k, v in event["data"].items() if isinstance(v, str) and v[:4].isdigit())]
        name = draw(st.sampled_from(["time", *names]))
        (event if name == "time" else event["data"])[name] = draw(iso_times)
        return event, Mutation(action, (name,) if name == "time" else ("data", name))
    path = draw(st.sampled_from(paths(event)))
    parent, last = _parent(event, path), path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = draw(st.one_of(hostile_text(80), huge_text, json_values, iso_times))
    elif action == "retype":
        current = parent[last]
        parent[last] = draw(st.one_of(st.sampled_from([[current], {"value": current}, json.dumps(current)]),
                                      st.sampled_from(BOUNDARY).map(copy.deepcopy)))
    else:
        container = parent[last] if isinstance(parent[last], dict) else parent
        in_list = not isinstance(container, dict)  # an item of a list of strings (consent.notice.v1's changes)
        if in_list:  # the key goes into the data itself
            container = event["data"]
        name = draw(st.one_of(st.text(min_size=1, max_size=25), st.sampled_from(["send_at", "subject", "dedupkey",
                                                                                "audience", "urgent"]))
                    .filter(lambda k: k not in container))
        container[name] = draw(st.one_of(json_values, iso_times))
        path = ("data", name) if in_list else (*path[:-1], last, name) if container is parent[last] else (
            *path[:-1], name)
    return event, Mutation(action, path)


# --------------------------------------------------------------------------- any JSON type in any field

# values at the edges of what a field's type means: whole floats (JSON Schema's integer takes 1.0), bools (not
# numbers), numbers where dates and times go (pydantic's lax mode read them as Unix times), dates and times in
# other shapes, the ends of the calendar, numbers beyond a double, strings of digits
BOUNDARY = (
    0, 1, -1, 1.0, 0.5, -0.0, 1.5, 2**53 + 1, 10**30, -(10**30), 10**400, 1e308, 5e-324, True, False, None, "", " ",
    "0", "1", "1.0", "true", "null", "2026-12-10", "2026-02-30", "0000-01-01", "0001-01-01", "9999-12-31",
    "2026-12-10T00:00:00Z", "2026-12-10T00:00:00+09:00", "2026-12-10T00:00:00", "2026-12-10 00:00:00+09:00",
    "2026-12-10t00:00:00z", "2026-12-10T00:00:00.123456789-05:00", "2026-12-10T24:00:00Z", "2026-12-31T23:59:60Z",
    "2026-12-10T00:00:00+09:60", "2026-12-10T00:00:00\n", "2026-12-10\n", "1732406400", 1732406400, "010-1234-5678",
    "+82 10 1234 5678", "01012345678\n", "١٢٣", "hong@example.org", "hong@example.org\n", "a@b.c", [], {}, [None],
    {"value": 1}, "ko\n", "KO", "https://", "양평읍", "R-0001\x00",
)
any_json = st.one_of(st.sampled_from(BOUNDARY).map(copy.deepcopy), json_values)  # a copy: BOUNDARY holds [] and {}


@st.composite
def retyped_data(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    """The catalogue's sample data of `event_type` with one to three values (at any depth) replaced by a value
    of any JSON type, or deleted, or an unknown field added: valid and near-valid instances."""
    data = sample_data(event_type)
    for _ in range(draw(st.integers(1, 3))):
        where = paths(data)
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if action == "add" or not where:
            data[draw(st.sampled_from(["send_at", "recipients", "audience", "urgent", "extra", "reason"]))] = draw(any_json)
            continue
        path = draw(st.sampled_from(where))
        parent = _parent(data, path)
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(any_json)
    return data


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def header_text(value: Any) -> bytes:
    return (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode("utf-8", "surrogatepass")


def encode(event: dict[str, Any], mode: str) -> tuple[bytes | None, Headers]:
    """A CloudEvent (perhaps a broken one) as a Kafka record, structured or binary."""
    if mode == "structured":
        return _json_bytes(event), [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
    headers: Headers = [("content-type", header_text(event.get("datacontenttype", "application/json")))]
    headers += [(f"ce_{k}", header_text(v)) for k, v in event.items() if k not in ("data", "datacontenttype")]
    return (_json_bytes(event["data"]) if "data" in event else None), headers


@dataclass
class Record:
    """One Kafka record a department might publish, and how it was made."""

    value: bytes | None
    headers: Headers
    how: str
    mutation: Mutation | None = None

    def __repr__(self) -> str:  # what a failure report shows: short enough to read
        return f"Record({self.how!r}, value={_short(self.value)}, headers={_short(self.headers)}, {self.mutation})"


@st.composite
def near_valid_record(draw: st.DrawFn) -> Record:
    event, mutation = draw(mutated_event())
    mode = draw(st.sampled_from(["structured", "binary"]))
    value, headers = encode(event, mode)
    return Record(value, headers, f"near-valid {mode}, {mutation.action}", mutation)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


any_record = st.one_of(
    st.builds(Record, st.one_of(st.none(), st.binary(max_size=200)), kafka_headers, st.just("bytes")),
    st.builds(Record, json_values.map(_json_bytes), kafka_headers, st.just("JSON")),
    st.builds(Record, st.sampled_from([_nested(5_000), b'{"a":' * 3_000 + b"1" + b"}" * 3_000, b"9" * 5_000,
                                       b'{"specversion": "1.0", "id": ' + b"1" * 5_000 + b"}"]),
              st.sampled_from([[], [("content-type", STRUCTURED_CONTENT_TYPE.encode())],
                               [("ce_specversion", b"1.0"), ("content-type", b"application/json")]]),
              st.just("pathological JSON")),
    near_valid_record(),
)


@st.composite
def binary_event_with_extra_headers(draw: st.DrawFn) -> tuple[dict[str, Any], bytes | None, Headers, Headers]:
    """A valid binary-mode event plus arbitrary extra headers, shuffled in."""
    event = valid_event(draw(st.sampled_from(EVENT_TYPES)), draw(event_ids))
    value, headers = encode(event, "binary")
    extra = draw(kafka_headers)
    mixed = draw(st.permutations(headers + extra))
    return event, value, mixed, extra


# --------------------------------------------------------------------------- event data for the templates


def _max_len(model: Any, name: str, default: int = 60) -> int:
    field = model.model_fields.get(name)
    for meta in getattr(field, "metadata", ()):
        if isinstance(meta, MaxLen):
            return meta.max_length
    return default




@st.composite
def template_data(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    """The catalogue sample with its strings, dates, times and amounts replaced by hostile values."""
    model = CATALOGUE[event_type].model
    data = sample_data(event_type)
    for name, value in list(data.items()):
        if not draw(st.booleans()):
            continue  # keep some sample values: a message needs some sane fields to render at all
        if name == "recipient":
            data[name] = {**value, "name": draw(st.one_of(st.none(), hostile_text(50)))}
        elif name == "items":
            data[name] = [{"name": draw(hostile_text(50, min_size=1)), "quantity": draw(st.integers(1, 999))}
                          for _ in range(draw(st.integers(1, 3)))]
        elif name in ("url", "answer_url"):
            data[name] = "https://" + draw(hostile_text(200))
        elif name == "category":
            data[name] = draw(st.sampled_from(["informational", "advertising"]))
        elif name == "status":
            data[name] = draw(st.sampled_from(["approved", "rejected", "more_info_needed"]))
        elif isinstance(value, bool):
            data[name] = draw(st.booleans())
        elif isinstance(value, int):
            data[name] = draw(st.integers(0, 10**30))
        elif isinstance(value, float):
            data[name] = draw(st.floats(min_value=0, allow_nan=False))
        elif isinstance(value, str) and "T" in value and value[:4].isdigit():
            data[name] = draw(iso_times)
        elif isinstance(value, str) and value[:4].isdigit() and len(value) == 10:
            data[name] = draw(st.dates(date(1, 1, 1), date(9999, 12, 31))).isoformat()
        elif isinstance(value, str):
            data[name] = draw(hostile_text(_max_len(model, name), min_size=1))
    if event_type == "notice.published.v1" and draw(st.booleans()):
        data["urgent"] = True
    return data


# --------------------------------------------------------------------------- resident CSV files

csv_anything = st.one_of(hostile_text(40), hostile_text(40), hostile_text(40), st.just("가" * 140_000))  # the last: beyond csv.field_size_limit()
flags = st.sampled_from(["Y", "N", "y", "n", "1", "0", "예", "아니오", "yes", "no", "", "true", "동의", "O", "X"])
_valid: dict[str, st.SearchStrategy[str]] = {
    "resident_id": st.from_regex(r"R-[0-9]{4}", fullmatch=True),
    "name": st.sampled_from(["홍길동", "Nguyễn Văn An", "", "김 철수"]),
    "phone": st.sampled_from(["010-1234-5678", "01012345678", "+82 10 1234 5678", ""]),
    "email": st.sampled_from(["hong@example.org", ""]),
    "district": st.sampled_from([*DISTRICTS, ""]),
    "interests": st.lists(st.sampled_from(["축제", "농업", "체육", " 문화 "]), max_size=3).map(";".join),
    "channels": st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True).map(";".join),
    "locale": st.sampled_from(["ko", "en", "vi", ""]),
    "quiet_start": st.sampled_from(["22:00", ""]),
    "quiet_end": st.sampled_from(["07:00", ""]),
}
_invalid: dict[str, st.SearchStrategy[str]] = {
    "resident_id": st.sampled_from(["", " ", "R" * 65]),
    "phone": st.sampled_from(["02-123-4567", "010-1234", "전화없음"]),
    "email": st.sampled_from(["not-an-address", "a@b.c\r\n", "<a@b.c>"]),
    "district": st.sampled_from(["서울시", "용문"]),
    "channels": st.sampled_from(["fax", "kakao;kakao;sms", "sms,pager"]),
    "locale": st.sampled_from(["KO", "kor", "k"]),
    "quiet_start": st.sampled_from(["25:00", "22", "7시"]),
    "quiet_end": st.sampled_from(["22:00", "-1:00"]),
}
for column in ("consent_informational", "consent_advertising", "consent_advertising_night", "opted_out"):
    _valid[column], _invalid[column] = flags, st.sampled_from(["maybe", "2", "네네"])


def csv_value(column: str, clean: bool) -> st.SearchStrategy[str]:
    """A good value (a clean row), else a good, bad or any value (a 140,000-character field among them)."""
    valid = _valid.get(column, hostile_text(20))
    return valid if clean else st.one_of(valid, valid, _invalid.get(column, valid), csv_anything)


@dataclass
class CsvFile:
    """A resident CSV as bytes, and what was written into it."""

    data: bytes
    columns: list[str]
    rows: list[list[str]]
    encoding: str

    def __repr__(self) -> str:
        return f"CsvFile({self.encoding}, {len(self.rows)} rows, data={_short(self.data)})"


@st.composite
def csv_files(draw: st.DrawFn) -> CsvFile:
    columns = draw(st.lists(st.sampled_from(CSV_COLUMNS[1:]), unique=True, max_size=13))
    if draw(st.integers(0, 9)) > 0:  # mostly a header that names resident_id
        columns.insert(draw(st.integers(0, len(columns))), "resident_id")
    if draw(st.integers(0, 3)) == 0:  # a column the hub does not know, or one named twice
        columns.append(draw(st.one_of(hostile_text(15), st.sampled_from(columns or ["name"]))))
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        width = len(columns) + draw(st.sampled_from([0, 0, 0, 0, 0, 0, -1, 1, 3]))
        clean = draw(st.booleans())
        rows.append([draw(csv_value(columns[i] if i < len(columns) else "", clean)) for i in range(max(width, 0))])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "cp949", "utf-16", "latin-1", "garbled"]))
    if encoding == "garbled":
        raw = text.encode("utf-8", "surrogatepass")
        at = draw(st.integers(0, len(raw)))
        data = raw[:at] + draw(st.binary(min_size=1, max_size=6)) + raw[at:]
    else:
        data = text.encode(encoding, "replace") if encoding != "utf-8" else text.encode("utf-8", "surrogatepass")
    return CsvFile(data, columns, rows, encoding)
