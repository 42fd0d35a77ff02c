"""JSON Schema of every event's data, generated from the models (`hub schemas export`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hub.core.cloudevents import ATTRIBUTE_NAME_PATTERN, CloudEvent
from hub.core.events import CATALOGUE

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_BASE_URI = "https://notice-hub.example.kr/schemas/"


# pydantic writes a bound of a nullable number whose type has a before-validator (`Integer | None` with ge=1) as
# its own keyword name ("ge"), which JSON Schema does not know and validators ignore: the schema then accepted
# `party_size: 0`, which the hub refuses. Bounds are written in JSON Schema's words.
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def standard(schema: Any) -> Any:
    """`schema` with pydantic's own names for numeric bounds replaced by JSON Schema's, at every depth."""
    if isinstance(schema, list):
        return [standard(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    numeric = schema.get("type") in ("integer", "number")
    return {(_BOUNDS[k] if numeric and k in _BOUNDS else k): standard(v) for k, v in schema.items()}


def schema_for(event_type: str) -> dict[str, Any]:
    spec = CATALOGUE[event_type]
    schema = standard(spec.model.model_json_schema(mode="validation"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}{event_type}.json",
        "title": f"{event_type}: {spec.title}",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def envelope_schema() -> dict[str, Any]:
    """A structured-mode CloudEvent as it travels: the model's `extensions` are attributes beside the others,
    each named with a-z and 0-9 (at most 20), of any JSON value (the hub keeps a string, or the JSON text)."""
    schema = standard(CloudEvent.model_json_schema(mode="validation"))
    del schema["properties"]["extensions"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}cloudevent.json",
        **schema,
        "patternProperties": {ATTRIBUTE_NAME_PATTERN: {"description": "An extension attribute."}},
    }


def resident_schema(event_type: str) -> dict[str, Any]:
    from hub.core.residents import PreferencesChange, Resident

    models: dict[str, type[BaseModel]] = {"resident.registered.v1": Resident,
                                          "resident.preferences_changed.v1": PreferencesChange}
    model = models.get(event_type)
    body = standard(model.model_json_schema(mode="validation")) if model else {
        "type": "object", "additionalProperties": True, "description": "No data: the event's subject names the resident.",
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{SCHEMA_BASE_URI}{event_type}.json",
            **{k: v for k, v in body.items() if k != "title"}, "title": event_type}


def rendered() -> dict[str, str]:
    """File name -> file text, exactly as `export` writes them."""
    from hub.core.residents import RESIDENT_EVENT_TYPES

    files = {f"{t}.json": schema_for(t) for t in CATALOGUE}
    files.update({f"{t}.json": resident_schema(t) for t in RESIDENT_EVENT_TYPES})
    files["cloudevent.json"] = envelope_schema()
    return {name: json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n" for name, body in files.items()}


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = rendered()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    return written


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that differ from the models (missing, changed or stale)."""
    expected = rendered()
    problems = [n for n, text in expected.items()
                if not (directory / n).is_file() or (directory / n).read_text(encoding="utf-8") != text]
    problems += [p.name for p in directory.glob("*.json") if p.name not in expected]
    return sorted(problems)
