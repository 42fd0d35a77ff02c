"""Waste (청소과): large items and garbage bags. Pure: the models of the department's events."""

from __future__ import annotations

from pydantic import Field

from hub.core.events.common import Addressed, Item, example_config
from hub.core.fields import Integer, IsoDate, Timestamp


class LargeItemReportReceivedV1(Addressed):
    """대형폐기물 배출신고 접수."""

    model_config = example_config({"report_no": "YP-2026-000123", "items": [{"name": "장롱", "quantity": 1}],
                                   "fee_won": 15000, "address": "양평읍 양근리 123"})
    report_no: str = Field(min_length=1, max_length=30)
    items: list[Item] = Field(min_length=1, max_length=50)
    fee_won: Integer = Field(ge=0)
    address: str = Field(min_length=1, max_length=200)


class LargeItemPickupScheduledV1(Addressed):
    """대형폐기물 수거 일정 확정."""

    model_config = example_config({"report_no": "YP-2026-000123", "pickup_date": "2026-11-27", "time_window": "09:00~12:00",
                                   "address": "양평읍 양근리 123"})
    report_no: str = Field(min_length=1, max_length=30)
    pickup_date: IsoDate
    time_window: str | None = Field(default=None, max_length=20)
    address: str = Field(min_length=1, max_length=200)


class LargeItemPickupCompletedV1(Addressed):
    """대형폐기물 수거 완료."""

    model_config = example_config({"report_no": "YP-2026-000123", "completed_at": "2026-11-27T10:42:00+09:00"})
    report_no: str = Field(min_length=1, max_length=30)
    completed_at: Timestamp


class GarbageBagOrderShippedV1(Addressed):
    """종량제봉투 주문 배송 시작."""

    model_config = example_config({"order_no": "BAG-2026-004411", "bag_type": "일반용 20L", "quantity": 20,
                                   "courier": "우체국택배", "tracking_no": "6070123456789"})
    order_no: str = Field(min_length=1, max_length=30)
    bag_type: str = Field(min_length=1, max_length=30)
    quantity: Integer = Field(ge=1, le=1000)
    courier: str = Field(min_length=1, max_length=30)
    tracking_no: str = Field(min_length=1, max_length=40)
