"""Water (지능형 수도행정): leaks and bills. Pure: the models of the department's events."""

from __future__ import annotations

from pydantic import Field

from hub.core.events.common import Addressed, example_config
from hub.core.fields import Integer, IsoDate, Number, Timestamp


class WaterLeakSuspectedV1(Addressed):
    """스마트 계량기 누수 의심 (긴급)."""

    model_config = example_config({"meter_no": "WM-31-004512", "address": "용문면 다문리 45",
                                   "detected_at": "2026-11-24T03:10:00+09:00", "flow_lph": 38.5})
    meter_no: str = Field(min_length=1, max_length=30)
    address: str = Field(min_length=1, max_length=200)
    detected_at: Timestamp
    flow_lph: Number = Field(ge=0, description="Continuous flow seen, litres per hour.")


class WaterBillIssuedV1(Addressed):
    """상수도 요금 고지."""

    model_config = example_config({"customer_no": "0312345", "period": "2026년 10월", "amount_won": 23450,
                                   "due_date": "2026-12-10", "account": "농협 301-0000-0000-00"})
    customer_no: str = Field(min_length=1, max_length=30)
    period: str = Field(min_length=1, max_length=30)
    amount_won: Integer = Field(ge=0)
    due_date: IsoDate
    account: str | None = Field(default=None, max_length=60)
