"""The CloudEvents envelope and the catalogue of domain events. Nothing here does I/O.

Department systems publish CloudEvents 1.0 to the domain topics, in either mode of the CloudEvents Kafka
protocol binding: structured (the whole event as JSON, `content-type: application/cloudevents+json`) or
binary (attributes in `ce_*` headers, the data as the message value). `parse_kafka_message` accepts both.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    Strict,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from hub.core.errors import EventError, UnknownEventTypeError

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
CE_HEADER_PREFIX = "ce_"
DISTRICTS: tuple[str, ...] = (
    "양평읍", "강상면", "강하면", "양서면", "옥천면", "서종면",
    "단월면", "청운면", "양동면", "지평면", "용문면", "개군면",
)

Channel = Literal["kakao", "sms", "email"]
CHANNELS: tuple[Channel, ...] = ("kakao", "sms", "email")

ATTRIBUTE_NAME_PATTERN = r"^[a-z0-9]{1,20}$"
_ATTR_NAME_RE = re.compile(ATTRIBUTE_NAME_PATTERN)

# The published JSON Schemas (`hub schemas export`) carry these patterns, and the models apply the same ones
# (with `fullmatch`): what the schema accepts, the hub accepts, and nothing else. Written to mean the same
# in ECMA-262 (JSON Schema), Python and Rust regular expressions: no \d, \s or \w, whose meaning differs.
PHONE_PATTERN = r"^[ -]*(\+[ -]*8[ -]*2|0)[ -]*1[ -]*[016789]([ -]*[0-9]){7,8}[ -]*$"
_NOT_IN_ADDRESS = r"@<>\"',;\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL_PATTERN = rf"^[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}]+\.[^{_NOT_IN_ADDRESS}]+$"
ID_PATTERN = r"^[^\u0000-\u001f\u007f]+$"  # ids go into the store and its indexes: no control characters
# RFC 3339 with its offset, within the dates the hub can take to UTC and KST whatever the offset (0001-01-02
# to 9999-12-29), without leap seconds (Python has none); the `date-time` format checks the day of the month
DATE_TIME_PATTERN = (r"^(?!0000-|0001-01-01|9999-12-3[01])[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
                     r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
DATE_PATTERN = r"^(?!0000-)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_PHONE_RE, _EMAIL_RE = re.compile(PHONE_PATTERN), re.compile(EMAIL_PATTERN)
_DATE_TIME_RE, _DATE_RE = re.compile(DATE_TIME_PATTERN), re.compile(DATE_PATTERN)
_EARLIEST, _LATEST = date(1, 1, 2), date(9999, 12, 29)


def _rfc3339(value: Any) -> Any:
    """JSON carries a time as an RFC 3339 string with its offset: not a number (read as a Unix time) nor a
    time without offset. A datetime passes (events made in Python) and must be aware."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a time must carry its UTC offset")
        if not _EARLIEST <= value.date() <= _LATEST:
            raise ValueError(f"{value.isoformat()} is out of range: use a time between the years 1 and 9999")
        return value
    if not isinstance(value, str) or not _DATE_TIME_RE.fullmatch(value):
        raise ValueError("a time is an RFC 3339 string with its UTC offset, e.g. 2026-12-01T09:00:00+09:00, "
                         "between the years 1 and 9999")
    return datetime.fromisoformat(value)  # ValueError for a day the month does not have


def _iso_date(value: Any) -> Any:
    """A date is an ISO 8601 string, YYYY-MM-DD (a number would be read as a Unix time: 0 is 1970-01-01)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValueError("a date is a string YYYY-MM-DD, e.g. 2026-12-10")
    return date.fromisoformat(value)


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer: 1.0 is one; true and "1" are not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339),
                      WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN})]
IsoDate = Annotated[date, BeforeValidator(_iso_date),
                    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN})]
Integer = Annotated[int, BeforeValidator(_whole_number), Strict()]
Number = Annotated[float, Strict()]
Flag = Annotated[bool, Strict()]
Id = Annotated[str, Field(pattern=ID_PATTERN)]


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


# --------------------------------------------------------------------------- recipients


class Recipient(BaseModel):
    """A resident named by the event, with the contact points the department system knows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resident_id: Id = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, description="Mobile number, digits only or with hyphens or spaces.",
                              json_schema_extra={"anyOf": [{"type": "string", "pattern": PHONE_PATTERN},
                                                           {"type": "null"}]})
    email: str | None = Field(default=None, max_length=254,
                              json_schema_extra={"anyOf": [{"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN},
                                                           {"type": "null"}]})
    channels: list[Channel] | None = Field(
        default=None, description="Preferred channels, best first; the hub's default order when absent."
    )
    locale: str = Field(default="ko", pattern=r"^[a-z]{2}$")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else mobile_number(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL_RE.fullmatch(value):
            raise ValueError("전자우편 주소 형식이 아닙니다 (not an e-mail address)")
        return value


def mobile_number(value: str) -> str:
    """A Korean mobile number as digits ('+82 10-1234-5678' -> '01012345678'); ValueError for anything else."""
    if not _PHONE_RE.fullmatch(value):
        raise ValueError("휴대전화 번호 형식이 아닙니다 (not a Korean mobile number)")
    digits = value.replace(" ", "").replace("-", "")
    return "0" + digits[3:] if digits.startswith("+82") else digits


class DirectNotice(BaseModel):
    """Data of an event addressed to named residents: `recipients` (or one `recipient`)."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[Recipient] = Field(default_factory=list, max_length=1000)
    send_at: Timestamp | None = Field(
        default=None, description="Hold the notice until this time (RFC 3339 with offset); default: at once."
    )

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The rules the validators below apply, for the published schema (hub/schemas.py)."""
        schema = handler(core)
        cls._schema_rules(handler.resolve_ref_schema(schema))
        return schema

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        schema["properties"]["recipient"] = {**schema["properties"]["recipients"]["items"],  # the Recipient $ref
                                             "description": "One recipient: the same as one more in recipients."}
        schema.setdefault("allOf", []).append(
            {"if": {"required": ["recipient"]}, "then": {"properties": {"recipients": {"maxItems": 999}}}})

    @model_validator(mode="before")
    @classmethod
    def _single_recipient(cls, value: Any) -> Any:
        """`recipient` is one more of `recipients`; `recipients` that is not a list is left for the field's own
        validation to name (joining it would raise a TypeError, outside validation)."""
        if isinstance(value, dict) and "recipient" in value:
            value = dict(value)
            single = value.pop("recipient")
            rest = value.get("recipients", [])
            value["recipients"] = [*rest, single] if isinstance(rest, list) else rest
        return value


class Addressed(DirectNotice):
    """A notice to one resident's own business (an application, a booking, a bill): recipients required."""

    @model_validator(mode="after")
    def _needs_recipients(self) -> Addressed:
        if not self.recipients:
            raise ValueError("recipients: at least one recipient is required")
        return self

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        super()._schema_rules(schema)
        schema["allOf"].append({"anyOf": _NAMED})


_NAMED: list[dict[str, Any]] = [{"required": ["recipient"]},
                                {"required": ["recipients"], "properties": {"recipients": {"minItems": 1}}}]


def _example(data: dict[str, Any]) -> ConfigDict:
    resident = {"resident_id": "R-0001", "name": "홍길동", "phone": "010-0000-0001", "email": "hong@example.org"}
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [{"recipient": resident, **data}]})


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=50)
    quantity: Integer = Field(default=1, ge=1, le=999)


# --------------------------------------------------------------------------- waste (청소과)


class LargeItemReportReceivedV1(Addressed):
    """대형폐기물 배출신고 접수."""

    model_config = _example({"report_no": "YP-2026-000123", "items": [{"name": "장롱", "quantity": 1}],
                             "fee_won": 15000, "address": "양평읍 양근리 123"})
    report_no: str = Field(min_length=1, max_length=30)
    items: list[Item] = Field(min_length=1, max_length=50)
    fee_won: Integer = Field(ge=0)
    address: str = Field(min_length=1, max_length=200)


class LargeItemPickupScheduledV1(Addressed):
    """대형폐기물 수거 일정 확정."""

    model_config = _example({"report_no": "YP-2026-000123", "pickup_date": "2026-11-27", "time_window": "09:00~12:00",
                             "address": "양평읍 양근리 123"})
    report_no: str = Field(min_length=1, max_length=30)
    pickup_date: IsoDate
    time_window: str | None = Field(default=None, max_length=20)
    address: str = Field(min_length=1, max_length=200)


class LargeItemPickupCompletedV1(Addressed):
    """대형폐기물 수거 완료."""

    model_config = _example({"report_no": "YP-2026-000123", "completed_at": "2026-11-27T10:42:00+09:00"})
    report_no: str = Field(min_length=1, max_length=30)
    completed_at: Timestamp


class GarbageBagOrderShippedV1(Addressed):
    """종량제봉투 주문 배송 시작."""

    model_config = _example({"order_no": "BAG-2026-004411", "bag_type": "일반용 20L", "quantity": 20,
                             "courier": "우체국택배", "tracking_no": "6070123456789"})
    order_no: str = Field(min_length=1, max_length=30)
    bag_type: str = Field(min_length=1, max_length=30)
    quantity: Integer = Field(ge=1, le=1000)
    courier: str = Field(min_length=1, max_length=30)
    tracking_no: str = Field(min_length=1, max_length=40)


# --------------------------------------------------------------------------- reservation (통합예약)


class _Booking(Addressed):
    reservation_no: str = Field(min_length=1, max_length=30)
    facility: str = Field(min_length=1, max_length=60)
    starts_at: Timestamp
    ends_at: Timestamp | None = None


_BOOKING = {"reservation_no": "RSV-2026-7781", "facility": "양평 파크골프장 A코스",
            "starts_at": "2026-11-28T10:00:00+09:00", "ends_at": "2026-11-28T12:00:00+09:00"}


class ReservationConfirmedV1(_Booking):
    """공공시설 예약 확정."""

    model_config = _example({**_BOOKING, "party_size": 4})
    party_size: Integer | None = Field(default=None, ge=1, le=1000)


class ReservationReminderV1(_Booking):
    """예약 하루 전 알림."""

    model_config = _example(_BOOKING)


class ReservationCancelledV1(_Booking):
    """예약 취소."""

    model_config = _example({**_BOOKING, "reason": "우천으로 인한 시설 휴장", "refund_won": 8000})
    reason: str | None = Field(default=None, max_length=200)
    refund_won: Integer | None = Field(default=None, ge=0)


# --------------------------------------------------------------------------- water (지능형 수도행정)


class WaterLeakSuspectedV1(Addressed):
    """스마트 계량기 누수 의심 (긴급)."""

    model_config = _example({"meter_no": "WM-31-004512", "address": "용문면 다문리 45",
                             "detected_at": "2026-11-24T03:10:00+09:00", "flow_lph": 38.5})
    meter_no: str = Field(min_length=1, max_length=30)
    address: str = Field(min_length=1, max_length=200)
    detected_at: Timestamp
    flow_lph: Number = Field(ge=0, description="Continuous flow seen, litres per hour.")


class WaterBillIssuedV1(Addressed):
    """상수도 요금 고지."""

    model_config = _example({"customer_no": "0312345", "period": "2026년 10월", "amount_won": 23450,
                             "due_date": "2026-12-10", "account": "농협 301-0000-0000-00"})
    customer_no: str = Field(min_length=1, max_length=30)
    period: str = Field(min_length=1, max_length=30)
    amount_won: Integer = Field(ge=0)
    due_date: IsoDate
    account: str | None = Field(default=None, max_length=60)


# --------------------------------------------------------------------------- civil applications (종이 없는 민원)


class CivilApplicationReceivedV1(Addressed):
    """민원 신청 접수."""

    model_config = _example({"application_no": "CA-2026-05531", "title": "농지취득자격증명 발급",
                             "department": "농업정책과", "expected_date": "2026-11-28"})
    application_no: str = Field(min_length=1, max_length=30)
    title: str = Field(min_length=1, max_length=60)
    department: str = Field(min_length=1, max_length=40)
    expected_date: IsoDate | None = None


class CivilApplicationStatusChangedV1(Addressed):
    """민원 처리 상태 변경: 승인, 반려, 보완 요청."""

    model_config = _example({"application_no": "CA-2026-05531", "title": "농지취득자격증명 발급",
                             "department": "농업정책과", "status": "more_info_needed",
                             "reason": "토지 이용계획서를 첨부해 주세요."})
    application_no: str = Field(min_length=1, max_length=30)
    title: str = Field(min_length=1, max_length=60)
    department: str = Field(min_length=1, max_length=40)
    status: Literal["approved", "rejected", "more_info_needed"]
    reason: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _reason_when_not_approved(self) -> CivilApplicationStatusChangedV1:
        if self.status != "approved" and not self.reason:
            raise ValueError("reason: required when the application is rejected or needs more information")
        return self

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        super()._schema_rules(schema)
        schema["allOf"].append({"if": {"properties": {"status": {"const": "approved"}}},
                                "else": {"required": ["reason"],
                                         "properties": {"reason": {"type": "string", "minLength": 1}}}})


# --------------------------------------------------------------------------- public goods (공공재 구매)


class GoodsOrderConfirmedV1(Addressed):
    """공공재 구매 주문 확정."""

    model_config = _example({"order_no": "GD-2026-0091", "items": [{"name": "양평 친환경 쌀 10kg", "quantity": 2}],
                             "amount_won": 64000})
    order_no: str = Field(min_length=1, max_length=30)
    items: list[Item] = Field(min_length=1, max_length=50)
    amount_won: Integer = Field(ge=0)


class GoodsOrderShippedV1(Addressed):
    """공공재 구매 배송 시작."""

    model_config = _example({"order_no": "GD-2026-0091", "courier": "CJ대한통운", "tracking_no": "551234567890"})
    order_no: str = Field(min_length=1, max_length=30)
    courier: str = Field(min_length=1, max_length=30)
    tracking_no: str = Field(min_length=1, max_length=40)


# --------------------------------------------------------------------------- chatbot (AI 민원챗봇)


class ChatbotInquiryAnsweredV1(Addressed):
    """챗봇에서 담당 공무원에게 넘긴 문의에 답변 등록."""

    model_config = _example({"inquiry_no": "Q-2026-1207", "topic": "대형폐기물 수거 요일",
                             "department": "청소과", "answer_url": "https://talk.yp.example.kr/q/1207"})
    inquiry_no: str = Field(min_length=1, max_length=30)
    topic: str = Field(min_length=1, max_length=60)
    department: str = Field(min_length=1, max_length=40)
    answer_url: str | None = Field(default=None, max_length=300, pattern=r"^https://")


# --------------------------------------------------------------------------- county notices (소통홍보담당관)


class Audience(BaseModel):
    """Who a county notice targets, beyond named recipients: districts, interests, or everyone."""

    model_config = ConfigDict(extra="forbid")

    districts: list[str] = Field(default_factory=list,
                                 json_schema_extra={"items": {"enum": list(DISTRICTS), "type": "string"}})
    interests: list[str] = Field(default_factory=list)
    everyone: Flag = False
    resident_ids: list[Annotated[Id, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=10000, description="Residents of the directory")
    phones: list[str] = Field(default_factory=list, max_length=10000, description="Mobile numbers, in the directory or not",
                              json_schema_extra={"items": {"type": "string", "pattern": PHONE_PATTERN}})

    @field_validator("phones")
    @classmethod
    def _phones(cls, value: list[str]) -> list[str]:
        return [mobile_number(p) for p in value]

    @field_validator("districts")
    @classmethod
    def _known_districts(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in DISTRICTS]
        if unknown:
            raise ValueError(f"unknown district(s) {unknown}; the county's are {', '.join(DISTRICTS)}")
        return value

    @property
    def is_segment(self) -> bool:
        return self.everyone or bool(self.districts or self.interests)

    @property
    def uses_directory(self) -> bool:
        return self.is_segment or bool(self.resident_ids or self.phones)


class CountyNoticePublishedV1(DirectNotice):
    """군정 소식: 정보성 또는 광고성, 긴급 여부, 대상 읍면·관심사."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "notice_id": "N-2026-0311", "title": "양평 물맑은 김장축제 안내", "category": "informational",
            "summary": "11월 29일 양평읍 물맑은시장 일대에서 김장축제가 열립니다.",
            "url": "https://www.yp21.go.kr/notice/311", "urgent": False,
            "recipients": [{"resident_id": "R-0001", "name": "홍길동", "phone": "010-0000-0001"}],
        }]},
    )
    notice_id: str = Field(min_length=1, max_length=30)
    title: str = Field(min_length=1, max_length=60)
    summary: str = Field(min_length=1, max_length=500)
    url: str | None = Field(default=None, max_length=300, pattern=r"^https://")
    category: Literal["informational", "advertising"] = "informational"
    urgent: Flag = False
    audience: Audience = Field(default_factory=Audience)

    @model_validator(mode="after")
    def _someone(self) -> CountyNoticePublishedV1:
        if not self.recipients and not self.audience.uses_directory:
            raise ValueError("recipients or audience: a notice needs named recipients or a target segment")
        return self

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        super()._schema_rules(schema)
        targets = [{"required": ["everyone"], "properties": {"everyone": {"const": True}}},
                   *({"required": [name], "properties": {name: {"minItems": 1}}}
                     for name in ("districts", "interests", "resident_ids", "phones"))]
        schema["allOf"].append({"anyOf": [*_NAMED, {"required": ["audience"],
                                                     "properties": {"audience": {"anyOf": targets}}}]})


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class EventSpec:
    type: str
    model: type[DirectNotice]
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
    )
}
DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(spec.domain for spec in CATALOGUE.values()))


@dataclass(frozen=True)
class DomainEvent:
    """An accepted event: the envelope and its validated data."""

    envelope: CloudEvent
    spec: EventSpec
    data: DirectNotice

    @property
    def urgent(self) -> bool:
        return self.spec.urgent or bool(getattr(self.data, "urgent", False))

    @property
    def advertising(self) -> bool:
        return getattr(self.data, "category", "informational") == "advertising"


def sample_data(event_type: str) -> dict[str, Any]:
    """The catalogue's example data for an event type (also in its JSON Schema)."""
    schema_extra = CATALOGUE[event_type].model.model_config.get("json_schema_extra")
    assert isinstance(schema_extra, dict)
    return copy.deepcopy(schema_extra["examples"][0])  # type: ignore[index,no-any-return]  # callers may edit it


def validate_event(envelope: CloudEvent) -> DomainEvent:
    spec = CATALOGUE.get(envelope.type)
    if spec is None:
        raise UnknownEventTypeError(f"unknown event type {envelope.type!r}; see `hub schemas list`")
    try:
        data = spec.model.model_validate(envelope.data)
    except ValidationError as e:
        raise EventError(f"{envelope.type} data invalid: {_describe(e)}") from e
    return DomainEvent(envelope=envelope, spec=spec, data=data)


def read_event(value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> DomainEvent:
    """A Kafka record of an event topic -> an accepted event; EventError (with the reason) for anything else."""
    return validate_event(parse_kafka_message(value, headers))


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- Kafka binding


def _header_map(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    """The headers the binding reads: content-type (any case) and ce_<attribute>. Other headers are not the
    hub's business, whatever their bytes. One of these without a value, not UTF-8, given twice with different
    values, or a ce_ header (any case) whose attribute name breaks CloudEvents naming makes the event
    ambiguous."""
    out: dict[str, str] = {}
    for key, value in headers:
        name = key.lower()
        if name == "content-type":
            key = name
        elif not name.startswith(CE_HEADER_PREFIX):
            continue
        elif not key.startswith(CE_HEADER_PREFIX) or not _ATTR_NAME_RE.fullmatch(key[len(CE_HEADER_PREFIX):]):
            raise EventError(f"header {key!r}: attribute name {key[len(CE_HEADER_PREFIX):]!r} breaks CloudEvents "
                             "naming (a header ce_ and a name of a-z, 0-9, at most 20)")
        if value is None:
            raise EventError(f"header {key!r} has no value")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise EventError(f"header {key!r} is not UTF-8") from e
        if out.get(key, text) != text:
            raise EventError(f"header {key!r} is given twice with different values")
        out[key] = text
    return out


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
        raise EventError(f"not a valid CloudEvent: {_describe(e)}") from e
    raise EventError(f"not a CloudEvent: content-type {content_type!r} and no ce_specversion header")


_DOUBLE_MAX = 1.7976931348623157e308
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(value: bytes, what: str) -> Any:
    """Decode I-JSON (RFC 7493), what the published schemas describe; whatever the bytes, an EventError.
    Python's json reads more: UTF-16 and UTF-32, a byte order mark, NaN and Infinity, numbers no double holds (1e400 as inf), and strings with
    lone surrogates ("\\ud800"), which no UTF-8 store, header or gateway can take. It also raises ValueError
    for an integer of more than 4,300 digits and RecursionError for arrays nested a few thousand deep."""
    try:
        data = json.loads(value.decode("utf-8"), parse_constant=_no_constant)  # not UTF-16/32, nor a BOM
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise EventError(f"{what} is not valid JSON: {str(e)[:200]}") from e
    if problem := _not_i_json(data, strings=bool(_SURROGATE_ESCAPE.search(value))):
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
