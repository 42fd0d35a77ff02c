"""Reservations (통합예약): public facilities. Pure: the models of the department's events."""

from __future__ import annotations

from pydantic import Field

from hub.core.events.common import Addressed, example_config
from hub.core.fields import Integer, Timestamp


class _Booking(Addressed):
    reservation_no: str = Field(min_length=1, max_length=30)
    facility: str = Field(min_length=1, max_length=60)
    starts_at: Timestamp
    ends_at: Timestamp | None = None


_BOOKING = {"reservation_no": "RSV-2026-7781", "facility": "양평 파크골프장 A코스",
            "starts_at": "2026-11-28T10:00:00+09:00", "ends_at": "2026-11-28T12:00:00+09:00"}


class ReservationConfirmedV1(_Booking):
    """공공시설 예약 확정."""

    model_config = example_config({**_BOOKING, "party_size": 4})
    party_size: Integer | None = Field(default=None, ge=1, le=1000)


class ReservationReminderV1(_Booking):
    """예약 하루 전 알림."""

    model_config = example_config(_BOOKING)


class ReservationCancelledV1(_Booking):
    """예약 취소."""

    model_config = example_config({**_BOOKING, "reason": "우천으로 인한 시설 휴장", "refund_won": 8000})
    reason: str | None = Field(default=None, max_length=200)
    refund_won: Integer | None = Field(default=None, ge=0)
