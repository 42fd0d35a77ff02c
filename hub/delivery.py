"""What travels between the hub's stages: a delivery request (router -> sender) and a delivery status
(sender -> status topic). Both are JSON on Kafka; the status is a CloudEvent so department systems can
read it with any CloudEvents SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import EventError
from hub.events import Channel
from hub.masking import mask_address
from hub.rendering import RenderedMessage, SmsContent

DeliveryState = Literal[
    "sent", "delivered", "failed", "fallback", "deduplicated", "suppressed", "deferred", "retried", "dead-lettered"
]
STATUS_EVENT_TYPE = "hub.delivery.status.v1"


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryRequest(BaseModel):
    """One rendered notice for one resident on one channel. Keyed by resident id on its topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_id: str = Field(description="Stable id: the same notice, resident and channel give the same id.")
    notice_key: str
    event_id: str
    event_type: str
    event_source: str
    event_time: datetime | None = None
    resident_id: str
    channel: Channel
    to: str = Field(description="Phone number or e-mail address (personal data: never logged).")
    locale: str = "ko"
    content: RenderedMessage
    fallback: SmsContent | None = Field(default=None, description="SMS/LMS rendition for 대체발송.")
    advertising: bool = False
    urgent: bool = False
    requested_at: datetime = Field(default_factory=utcnow)

    @property
    def masked_to(self) -> str:
        return mask_address(self.channel, self.to)

    def to_kafka(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_kafka(cls, value: bytes | None) -> DeliveryRequest:
        return cls.model_validate_json(value or b"")


def read_delivery(value: bytes | None, channel: str) -> DeliveryRequest:
    """A record of the channel's deliveries topic -> its request; EventError (with the reason) for anything
    else. The sender reads every record so, and `hub dlq replay` checks a dead letter so before replaying it."""
    try:
        request = DeliveryRequest.from_kafka(value)
    except ValidationError as e:
        raise EventError(f"not a delivery request: {e}") from e
    if request.channel != channel:
        raise EventError(f"a {request.channel} delivery on the {channel} topic")
    return request


class DeliveryStatus(BaseModel):
    """An outcome for a delivery (or a recipient that got none), as recorded in the ledger."""

    model_config = ConfigDict(extra="forbid")

    delivery_id: str | None
    event_id: str
    event_type: str
    resident_id: str
    channel: str | None
    state: DeliveryState
    to_masked: str = ""
    reason: str | None = None
    rule: str | None = Field(default=None, description="The rule that decided a suppression or deferral.")
    provider: str | None = None
    provider_ref: str | None = None
    attempt: int = 1
    at: datetime = Field(default_factory=utcnow)
    latency_s: float | None = Field(
        default=None, description="Event time to gateway accepted, in seconds (sent and fallback outcomes)."
    )

    def to_cloudevent(self, source: str) -> bytes:
        """A structured-mode CloudEvent, built in one pass (this runs for every outcome)."""
        data = self.model_dump(mode="json")
        return json.dumps({
            "specversion": "1.0",
            "id": f"{self.delivery_id or f'{self.event_id}:{self.resident_id}'}:{self.state}:{self.attempt}",
            "source": source, "type": STATUS_EVENT_TYPE, "subject": self.event_id, "time": data["at"],
            "datacontenttype": "application/json", "data": data,
        }, ensure_ascii=False).encode()
