"""Public goods (공공재 구매): orders. Pure: the models of the department's events."""

from __future__ import annotations

from pydantic import Field

from hub.core.events.common import Addressed, Item, example_config
from hub.core.fields import Integer


class GoodsOrderConfirmedV1(Addressed):
    """공공재 구매 주문 확정."""

    model_config = example_config({"order_no": "GD-2026-0091", "items": [{"name": "양평 친환경 쌀 10kg", "quantity": 2}],
                                   "amount_won": 64000})
    order_no: str = Field(min_length=1, max_length=30)
    items: list[Item] = Field(min_length=1, max_length=50)
    amount_won: Integer = Field(ge=0)


class GoodsOrderShippedV1(Addressed):
    """공공재 구매 배송 시작."""

    model_config = example_config({"order_no": "GD-2026-0091", "courier": "CJ대한통운", "tracking_no": "551234567890"})
    order_no: str = Field(min_length=1, max_length=30)
    courier: str = Field(min_length=1, max_length=30)
    tracking_no: str = Field(min_length=1, max_length=40)
