"""An oracle the hub did not write: what a department may publish, judged from the published contract alone.

The contract is the JSON Schemas in schemas/ (read from disk, as a department would), checked by jsonschema-rs
(a Rust implementation with ECMA-262 patterns and RFC 3339 formats, nothing shared with pydantic), on
I-JSON documents (RFC 7493) carried by the CloudEvents Kafka binding as docs/ARCHITECTURE.md describes it.
`judge` answers for a Kafka record, `data_verdict` for an event's data; the tests compare both with the hub.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
STRUCTURED = "application/cloudevents+json"
_ATTRIBUTE_HEADER = re.compile(r"ce_[a-z0-9]{1,20}")


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    why: str = ""


@cache
def _validator(name: str) -> Any:
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def event_types() -> list[str]:
    """The catalogue as published: every schema but the envelope's and the directory's."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.json") if p.stem != "cloudevent" and not p.stem.startswith("resident."))


def _i_json(value: bytes) -> Any:
    """RFC 8259 JSON in UTF-8 without a BOM, within I-JSON: no lone surrogates, numbers a double holds."""
    def refuse(name: str) -> Any:
        raise ValueError(name)

    data = json.loads(value.decode("utf-8"), parse_constant=refuse)
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in item:
                key.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            item.encode("utf-8")
        elif isinstance(item, int | float) and not isinstance(item, bool):
            if not math.isfinite(float(item)):  # OverflowError (not a ValueError) beyond a double: refuse too
                raise ValueError("not a double")
    return data


def _parse(value: bytes) -> Any:
    try:
        return _i_json(value)
    except (ValueError, OverflowError, RecursionError):
        return _REFUSED


_REFUSED = object()


def data_verdict(event_type: str, data: Any) -> Verdict:
    if event_type not in event_types():
        return Verdict(False, "unknown type")
    validator = _validator(event_type)
    if validator.is_valid(data):
        return Verdict(True)
    return Verdict(False, "; ".join(e.message[:120] for e in list(validator.iter_errors(data))[:3]))


def _event(attributes: Any) -> Verdict:
    if not isinstance(attributes, dict):
        return Verdict(False, "not an object")
    envelope = _validator("cloudevent")
    if not envelope.is_valid(attributes):
        return Verdict(False, "envelope: " + next(envelope.iter_errors(attributes)).message[:120])
    return data_verdict(attributes["type"], attributes.get("data"))


def judge(value: bytes | None, headers: list[tuple[str, bytes | None]]) -> Verdict:
    """Would a hub that keeps the published contract accept this record as an event?"""
    binding: dict[str, str] = {}
    for name, raw in headers:
        if name.lower() == "content-type":
            name = "content-type"
        elif name.lower().startswith("ce_"):
            if not _ATTRIBUTE_HEADER.fullmatch(name):
                return Verdict(False, f"attribute header name {name!r}")
        else:
            continue  # not the binding's business
        if raw is None:
            return Verdict(False, f"{name} without a value")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Verdict(False, f"{name} not UTF-8")
        if binding.setdefault(name, text) != text:
            return Verdict(False, f"{name} twice, different")
    content_type = binding.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == STRUCTURED or (media in ("application/json", "") and not any(k.startswith("ce_") for k in binding)):
        event = _parse(value) if value else _REFUSED
        return Verdict(False, "not I-JSON") if event is _REFUSED else _event(event)
    if "ce_specversion" not in binding:
        return Verdict(False, "neither mode")
    attributes: dict[str, Any] = {k[3:]: v for k, v in binding.items() if k.startswith("ce_")}
    if "data" in attributes or "datacontenttype" in attributes:
        return Verdict(False, "data attributes as headers")
    if content_type:
        attributes["datacontenttype"] = content_type
    if value:
        if content_type and not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
            return Verdict(False, "data not JSON")
        attributes["data"] = _parse(value)
        if attributes["data"] is _REFUSED:
            return Verdict(False, "data not I-JSON")
    return _event(attributes)
