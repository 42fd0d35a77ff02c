"""The catalogue of domain events: each type, its department (the topic's domain) and its data model, one module
per department. `read_event` turns a Kafka record of an event topic into an accepted event. Nothing here does I/O.
"""

from __future__ import annotations

import builtins
import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from hub.core.cloudevents import CloudEvent, parse_kafka_message
from hub.core.errors import EventError, UnknownEventTypeError
from hub.core.events.chatbot import ChatbotInquiryAnsweredV1
from hub.core.events.civil import CivilApplicationReceivedV1, CivilApplicationStatusChangedV1
from hub.core.events.common import DirectNotice
from hub.core.events.consent import ConsentNoticeV1
from hub.core.events.goods import GoodsOrderConfirmedV1, GoodsOrderShippedV1
from hub.core.events.notice import CountyNoticePublishedV1
from hub.core.events.reservation import ReservationCancelledV1, ReservationConfirmedV1, ReservationReminderV1
from hub.core.events.waste import (
    GarbageBagOrderShippedV1,
    LargeItemPickupCompletedV1,
    LargeItemPickupScheduledV1,
    LargeItemReportReceivedV1,
)
from hub.core.events.water import WaterBillIssuedV1, WaterLeakSuspectedV1
from hub.core.fields import describe


@dataclass(frozen=True)
class EventSpec:
    type: str
    model: builtins.type[DirectNotice]  # `type` is the field above, in this class's body
    title: str
    urgent: bool = False
    county_news: bool = False  # a county notice: residents of the directory receive it only when subscribed

    @property
    def domain(self) -> str:
        return self.type.split(".", 1)[0]


CATALOGUE: dict[str, EventSpec] = {
    spec.type: spec
    for spec in (
        EventSpec("waste.large_item.received.v1", LargeItemReportReceivedV1, "대형폐기물 배출신고 접수"),
        EventSpec("waste.large_item.pickup_scheduled.v1", LargeItemPickupScheduledV1, "대형폐기물 수거 일정"),
        EventSpec("waste.large_item.pickup_completed.v1", LargeItemPickupCompletedV1, "대형폐기물 수거 완료"),
        EventSpec("waste.bag_order.shipped.v1", GarbageBagOrderShippedV1, "종량제봉투 배송 시작"),
        EventSpec("reservation.confirmed.v1", ReservationConfirmedV1, "예약 확정"),
        EventSpec("reservation.reminder.v1", ReservationReminderV1, "예약 전날 알림"),
        EventSpec("reservation.cancelled.v1", ReservationCancelledV1, "예약 취소"),
        EventSpec("water.leak.suspected.v1", WaterLeakSuspectedV1, "누수 의심 (긴급)", urgent=True),
        EventSpec("water.bill.issued.v1", WaterBillIssuedV1, "상수도 요금 고지"),
        EventSpec("civil.application.received.v1", CivilApplicationReceivedV1, "민원 접수"),
        EventSpec("civil.application.status_changed.v1", CivilApplicationStatusChangedV1, "민원 처리 결과"),
        EventSpec("goods.order.confirmed.v1", GoodsOrderConfirmedV1, "공공재 주문 확정"),
        EventSpec("goods.order.shipped.v1", GoodsOrderShippedV1, "공공재 배송 시작"),
        EventSpec("chatbot.inquiry.answered.v1", ChatbotInquiryAnsweredV1, "챗봇 문의 답변"),
        EventSpec("notice.published.v1", CountyNoticePublishedV1, "군정 소식", county_news=True),
        EventSpec("consent.notice.v1", ConsentNoticeV1, "수신 동의 안내"),
    )
}
DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(spec.domain for spec in CATALOGUE.values()))


@dataclass(frozen=True)
class DomainEvent:
    """An accepted event: the envelope and its validated data."""

    envelope: CloudEvent
    spec: EventSpec
    data: DirectNotice

    @functools.cached_property
    def urgent(self) -> bool:
        return self.spec.urgent or bool(data_field(self.data, "urgent", False))

    @functools.cached_property
    def advertising(self) -> bool:
        return bool(data_field(self.data, "category", "informational") == "advertising")


def data_field(data: BaseModel, name: str, default: Any = None) -> Any:
    """A field (or property: `ConsentNoticeV1.urgent`) of the event's data that only some event types have
    (`send_at`, `audience`, `category`, `urgent`), or `default`. Not `getattr(data, name, default)`: on a model
    without it, pydantic's `__getattr__` raises an AttributeError for getattr to catch, ~5 µs a call, and the
    router asked several times a notice (a tenth of its time in a sampled profile of the burst)."""
    return getattr(data, name) if _has(type(data), name) else default


@functools.cache
def _has(model: type[BaseModel], name: str) -> bool:
    return name in model.model_fields or hasattr(model, name)


def sample_data(event_type: str) -> dict[str, Any]:
    """The catalogue's example data for an event type (also in its JSON Schema)."""
    schema_extra = CATALOGUE[event_type].model.model_config.get("json_schema_extra")
    assert isinstance(schema_extra, dict)
    examples = cast(list[dict[str, Any]], schema_extra["examples"])  # example_config writes a list of objects
    return copy.deepcopy(examples[0])  # callers may edit it


def validate_event(envelope: CloudEvent) -> DomainEvent:
    spec = CATALOGUE.get(envelope.type)
    if spec is None:
        raise UnknownEventTypeError(f"unknown event type {envelope.type!r}; see `hub schemas list`")
    try:
        data = spec.model.model_validate(envelope.data)
    except ValidationError as e:
        raise EventError(f"{envelope.type} data invalid: {describe(e)}") from e
    return DomainEvent(envelope=envelope, spec=spec, data=data)


def read_event(value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> DomainEvent:
    """A Kafka record of an event topic -> an accepted event; EventError (with the reason) for anything else."""
    return validate_event(parse_kafka_message(value, headers))

