"""The ingest API's request and response bodies, and what its OpenAPI document says about them."""

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.core.cloudevents import STRUCTURED_CONTENT_TYPE
from hub.core.events import CATALOGUE, sample_data
from hub.core.events.common import Channel
from hub.core.residents import Consents

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class QuietHours(BaseModel):
    """방해 금지 시간 (KST). Urgent notices (water leak, disaster) ignore it."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=_HHMM, examples=["22:00"])
    end: str = Field(pattern=_HHMM, examples=["07:00"])

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours: start and end must differ")
        return self


class Preferences(BaseModel):
    """A resident's notification preferences (수신 설정)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channels": ["kakao", "sms"], "locale": "ko",
        "consents": {"informational": True, "advertising": True, "advertising_night": False},
        "opted_out": False, "quiet_hours": {"start": "22:00", "end": "07:00"},
    }]})

    channels: list[Channel] = Field(
        default_factory=lambda: list[Channel](["kakao", "sms", "email"]), min_length=1, max_length=3,
        description="Channels in order of preference (선호 채널 순서).",
    )
    locale: str = Field(default="ko", pattern=r"^[a-z]{2}$", description="ko, en, vi, ...; Korean is the fallback.")
    consents: Consents = Field(default_factory=Consents)
    opted_out: bool = Field(default=False, description="수신 거부: no notice at all, effective at once.")
    quiet_hours: QuietHours | None = None

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("channels: each channel at most once")
        return value


class SimpleEventIn(BaseModel):
    """간편 형식: the type and data; the hub fills id (UUID), source (/departments/<name>), specversion, time."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="Event type from the catalogue, e.g. waste.large_item.received.v1")
    data: dict[str, Any] = Field(description="Event data: see schemas/<type>.json")
    id: str | None = Field(default=None, min_length=1, max_length=200, description="Default: a new UUID.")
    subject: str | None = Field(default=None, max_length=500, description="Also the Kafka key (ordering).")
    dedupkey: str | None = Field(default=None, min_length=1, max_length=200,
                                 description="Events sharing it are one notice (e.g. a re-sent bill).")
    time: datetime | None = Field(default=None, description="RFC 3339 with an offset; default: now.")


class CloudEventIn(BaseModel):
    """CloudEvents 1.0, structured JSON. For the documentation: the hub reads it with hub.core.cloudevents."""

    model_config = ConfigDict(extra="allow")
    specversion: str = Field(examples=["1.0"])
    id: str
    source: str = Field(description="/departments/<your department>, optionally with a sub-path.")
    type: str
    time: datetime | None = None
    subject: str | None = None
    dedupkey: str | None = None
    datacontenttype: str | None = Field(default=None, examples=["application/json"])
    data: dict[str, Any]


class Accepted(BaseModel):
    """The event is in Kafka: acknowledged by all in-sync replicas."""

    id: str = Field(examples=["3f0c9a52-6f3e-4d52-9a43-1c2b8f1e7d10"])
    type: str = Field(examples=["waste.large_item.received.v1"])
    source: str = Field(examples=["/departments/sanitation"])
    topic: str = Field(examples=["hub.events.waste"])
    partition: int = Field(examples=[2])
    offset: int = Field(examples=[1041])


class Delivery(BaseModel):
    """One recorded outcome for one resident (주소는 마스킹)."""

    at: datetime
    state: str = Field(description="sent, failed, fallback, deduplicated, suppressed, retried, dead-lettered")
    channel: str | None
    resident_id: str
    to: str = Field(description="Masked address, e.g. 010-****-0001")
    attempt: int
    provider: str | None = None
    reason: str | None = None


class EventDeliveries(BaseModel):
    id: str
    type: str
    topic: str | None
    partition: int | None
    offset: int | None
    published_at: datetime | None
    deliveries: list[Delivery]


class Problem(BaseModel):
    detail: str


def _body_examples() -> dict[str, Any]:
    examples: dict[str, Any] = {}
    for event_type, spec in CATALOGUE.items():
        examples[event_type] = {"summary": f"{spec.title} ({event_type})",
                                "value": {"type": event_type, "data": sample_data(event_type)}}
    examples["cloudevent"] = {
        "summary": "CloudEvent (structured): 상수도 요금 고지",
        "value": {"specversion": "1.0", "id": "b-2026-10-0312345", "source": "/departments/water/billing",
                  "type": "water.bill.issued.v1", "time": "2026-11-20T09:00:00+09:00",
                  "dedupkey": "bill-0312345-2026-10", "datacontenttype": "application/json",
                  "data": sample_data("water.bill.issued.v1")},
    }
    return examples


def request_body_doc() -> dict[str, Any]:
    simple = SimpleEventIn.model_json_schema()
    simple["properties"]["type"]["enum"] = list(CATALOGUE)
    full = CloudEventIn.model_json_schema()
    full["properties"]["type"]["enum"] = list(CATALOGUE)
    examples = _body_examples()
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [simple, full]}, "examples": examples},
        STRUCTURED_CONTENT_TYPE: {"schema": full, "examples": {"cloudevent": examples["cloudevent"]}},
    }}}


NO_NUL = r"^[^\x00]+$"
"""Path parameters: U+0000 cannot be stored by PostgreSQL, so it is refused (422) rather than looked up (503)."""

BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body could not be read to its end (the client disconnected)"},
    413: {"model": Problem, "description": "Body larger than HUB_API_MAX_BODY_BYTES (checked as it streams in)"},
}

NO_DIRECTORY: dict[int | str, dict[str, Any]] = {
    501: {"model": Problem, "description": "No resident directory is configured for this API"},
}

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API 키 없음, 알 수 없는 키 또는 폐기된 키 (missing, unknown or revoked key)"},
    403: {"model": Problem, "description": "키에 허용되지 않은 이벤트 유형·범위 (type or scope not allowed for this key)"},
}
