"""The CloudEvents 1.0 envelope and its Kafka protocol binding. Pure.

Department systems publish CloudEvents 1.0 to the domain topics, in either mode of the CloudEvents Kafka
protocol binding: structured (the whole event as JSON, `content-type: application/cloudevents+json`) or
binary (attributes in `ce_*` headers, the data as the message value). `parse_kafka_message` accepts both.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.core.errors import EventError
from hub.core.fields import Id, Timestamp, describe

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
CE_HEADER_PREFIX = "ce_"
ATTRIBUTE_NAME_PATTERN = r"^[a-z0-9]{1,20}$"
_ATTR_NAME_RE = re.compile(ATTRIBUTE_NAME_PATTERN)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope. Extension attributes are kept in `extensions`; `dedupkey` is the hub's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = Field(description="CloudEvents version; always 1.0.")
    id: Id = Field(min_length=1, max_length=200, description="Unique per source; the hub's dedup scope.")
    source: Id = Field(min_length=1, max_length=500, description="URI-reference of the publishing system.")
    type: str = Field(min_length=1, max_length=200, description="Event type from the catalogue, e.g. waste.large_item.received.v1")
    time: Timestamp | None = None
    subject: str | None = Field(default=None, max_length=500)
    datacontenttype: str | None = None
    dataschema: str | None = None
    dedupkey: Id | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Extension: events sharing a dedup key are one notice (e.g. a re-sent bill).",
    )
    extensions: dict[str, str] = Field(default_factory=dict)
    data: Any = None

    @property
    def notice_key(self) -> str:
        """What makes two events one notice: the dedup key when given, else source + id (CloudEvents identity)."""
        return f"dedup:{self.dedupkey}" if self.dedupkey else f"{self.source}#{self.id}"

    def to_structured(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: v
            for k, v in self.model_dump(mode="json", exclude={"extensions"}).items()
            if v is not None
        }
        out.update(self.extensions)
        return out


# --------------------------------------------------------------------------- Kafka binding


def _header_map(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    """The headers the binding reads: content-type (any case) and ce_<attribute>. Other headers are not the
    hub's business, whatever their bytes. One of these without a value, not UTF-8, given twice with different
    values, or a ce_ header (any case) whose attribute name breaks CloudEvents naming makes the event
    ambiguous."""
    out: dict[str, str] = {}
    for key, value in headers:
        if (name := _read_as(key) if len(key) <= _KEPT_NAME_MAX else _judged(key)) is None:
            continue
        if value is None:
            raise EventError(f"header {key!r} has no value")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise EventError(f"header {key!r} is not UTF-8") from e
        if out.get(name, text) != text:
            raise EventError(f"header {key!r} is given twice with different values")
        out[name] = text
    return out


def _judged(key: str) -> str | None:
    """The name a header is read under (content-type in any case is content-type), or None when the binding
    does not read it; EventError for a ce_ header (any case) whose attribute name breaks CloudEvents naming."""
    name = key.lower()
    if name == "content-type":
        return name
    if not name.startswith(CE_HEADER_PREFIX):
        return None
    if not key.startswith(CE_HEADER_PREFIX) or not _ATTR_NAME_RE.fullmatch(key[len(CE_HEADER_PREFIX):]):
        raise EventError(f"header {key!r}: attribute name {key[len(CE_HEADER_PREFIX):]!r} breaks CloudEvents "
                         "naming (a header ce_ and a name of a-z, 0-9, at most 20)")
    return key


# `_judged`, kept per name: a department sends the same few names on every record (a sixth of reading an
# event). Only short names are kept, so that a producer sending long ones cannot fill the memory.
_KEPT_NAME_MAX = 64
_read_as = functools.lru_cache(maxsize=4096)(_judged)


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def parse_kafka_message(value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> CloudEvent:
    """Read a CloudEvent from a Kafka record in structured or binary mode (CloudEvents Kafka binding 1.0)."""
    hmap = _header_map(headers)
    content_type = hmap.get("content-type", "")
    try:
        if _media_type(content_type) == STRUCTURED_CONTENT_TYPE:
            return _structured(value)
        if f"{CE_HEADER_PREFIX}specversion" in hmap:
            return _binary(value, hmap, content_type)
        if ce_headers := sorted(k for k in hmap if k.startswith(CE_HEADER_PREFIX)):
            raise EventError(f"binary-mode CloudEvent without a ce_specversion header (it has {', '.join(ce_headers)})")
        if _media_type(content_type) in ("application/json", ""):
            return _structured(value)  # a JSON CloudEvent without the content-type header
    except ValidationError as e:
        raise EventError(f"not a valid CloudEvent: {describe(e)}") from e
    raise EventError(f"not a CloudEvent: content-type {content_type!r} and no ce_specversion header")


_DOUBLE_MAX = 1.7976931348623157e308
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _BeyondADouble(Exception):
    """A number no 64-bit float holds was read: the document is walked to say where."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    if (number := float(text)) in (math.inf, -math.inf):  # 1.8e308 and beyond read as infinity
        raise _BeyondADouble
    return number


def _int(text: str) -> int:
    number = int(text)  # ValueError beyond 4,300 digits
    if len(text) > 300 and not -_DOUBLE_MAX <= number <= _DOUBLE_MAX:  # anything beyond it has 309 digits
        raise _BeyondADouble
    return number


def _json(value: bytes, what: str) -> Any:
    """Decode I-JSON (RFC 7493), what the published schemas describe; whatever the bytes, an EventError.
    Python's json reads more: UTF-16 and UTF-32, a byte order mark, NaN and Infinity, numbers no double holds (1e400 as inf), and strings with
    lone surrogates ("\\ud800"), which no UTF-8 store, header or gateway can take. It also raises ValueError
    for an integer of more than 4,300 digits and RecursionError for arrays nested a few thousand deep.
    Each number is checked as it is read (a scan of the text for what might be a large number cost as much
    as the parse); the document is walked only to say where the problem is."""
    try:
        text = value.decode("utf-8")  # not UTF-16/32, nor a BOM
        try:
            data, beyond = json.loads(text, parse_constant=_no_constant, parse_float=_float, parse_int=_int), False
        except _BeyondADouble:  # refused whatever follows; read whole, as JSON is, to say why or where
            data, beyond = json.loads(text, parse_constant=_no_constant), True
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise EventError(f"{what} is not valid JSON: {str(e)[:200]}") from e
    strings = bool(_SURROGATE_ESCAPE.search(value))
    if (strings or beyond) and (problem := _not_i_json(data, strings=strings)):
        raise EventError(f"{what} is not I-JSON (RFC 7493): {problem}")
    return data


def _not_i_json(data: Any, *, strings: bool) -> str | None:
    """Where `data` leaves I-JSON, or None: a number beyond a 64-bit float, or (when `strings`) a lone
    surrogate in a string or a name."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if strings and _SURROGATE.search(key):
                    return f"{path or '(root)'}: a name with a lone surrogate"
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
        elif isinstance(item, int | float) and not isinstance(item, bool) and not -_DOUBLE_MAX <= item <= _DOUBLE_MAX:
            return f"{path or '(root)'}: a number beyond the range of a 64-bit float"
        elif strings and isinstance(item, str) and _SURROGATE.search(item):
            return f"{path or '(root)'}: a string with a lone surrogate"
    return None


def _structured(value: bytes | None) -> CloudEvent:
    if not value:
        raise EventError("empty message: expected a CloudEvent")
    raw = _json(value, "message")
    if not isinstance(raw, dict):
        raise EventError("a structured CloudEvent must be a JSON object")
    if "data_base64" in raw:
        raise EventError("data_base64 is not supported: event data must be JSON")
    return _from_attributes(raw)


def _binary(value: bytes | None, hmap: Mapping[str, str], content_type: str) -> CloudEvent:
    attrs: dict[str, Any] = {}
    for key, val in hmap.items():
        if key.startswith(CE_HEADER_PREFIX):
            if (name := key[len(CE_HEADER_PREFIX):]) in ("data", "datacontenttype"):
                raise EventError(f"header {key!r}: in binary mode the data is the value and its type content-type")
            attrs[name] = val
    if content_type:
        attrs["datacontenttype"] = content_type
    if value:
        if content_type and not _is_json(content_type):
            raise EventError(f"event data must be JSON, not content-type (datacontenttype) {content_type!r}")
        attrs["data"] = _json(value, "event data")
    return _from_attributes(attrs)


def _is_json(content_type: str) -> bool:
    """application/json or a +json type (RFC 6839), parameters allowed."""
    media = _media_type(content_type)
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


_CORE = set(CloudEvent.model_fields) - {"extensions"}


def _from_attributes(raw: dict[str, Any]) -> CloudEvent:
    extensions: dict[str, str] = {}
    core: dict[str, Any] = {}
    for key, val in raw.items():
        if key in _CORE:
            core[key] = val
        elif _ATTR_NAME_RE.fullmatch(key):
            extensions[key] = val if isinstance(val, str) else json.dumps(val, ensure_ascii=False)
        else:
            raise EventError(f"attribute name {key!r} breaks CloudEvents naming (a-z, 0-9, at most 20)")
    if "specversion" not in core:
        raise EventError("not a CloudEvent: specversion is missing")
    return CloudEvent.model_validate({**core, "extensions": extensions})


def kafka_key(event: CloudEvent) -> bytes:
    """The Kafka key an event is published with: its `partitionkey` (the CloudEvents Partitioning extension),
    else its subject, else its id. One resident's events then stay in order on one partition."""
    return (event.extensions.get("partitionkey") or event.subject or event.id).encode()


def to_kafka_binary(event: CloudEvent) -> tuple[bytes, dict[str, str]]:
    """Encode a CloudEvent in binary mode: attributes as ce_* headers, JSON data as the value."""
    headers = {"content-type": event.datacontenttype or "application/json"}
    for key, val in event.to_structured().items():
        if key in ("data", "datacontenttype"):
            continue
        headers[f"{CE_HEADER_PREFIX}{key}"] = str(val)
    value = json.dumps(event.data, ensure_ascii=False).encode() if event.data is not None else b""
    return value, headers


def to_kafka_structured(event: CloudEvent) -> tuple[bytes, dict[str, str]]:
    """Encode a CloudEvent in structured mode: the whole event as JSON."""
    body = json.dumps(event.to_structured(), ensure_ascii=False).encode()
    return body, {"content-type": f"{STRUCTURED_CONTENT_TYPE}; charset=utf-8"}


def new_event(event_type: str, data: Any, *, source: str, id: str, subject: str | None = None,
              dedupkey: str | None = None, time: datetime | None = None) -> CloudEvent:
    return CloudEvent(
        specversion="1.0", id=id, source=source, type=event_type, subject=subject, dedupkey=dedupkey,
        time=time or datetime.now(UTC), datacontenttype="application/json", data=data,
    )
