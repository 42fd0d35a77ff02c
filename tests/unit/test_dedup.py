"""Delivery ids: derived, never random; one per notice, resident and channel."""

from __future__ import annotations

import re

import pytest

from hub.core.dedup import delivery_id

BASE = ("/yp/water#evt-1", "R-0001", "sms")


def test_the_same_notice_resident_and_channel_give_the_same_id() -> None:
    assert delivery_id(*BASE) == delivery_id(*BASE)
    assert re.fullmatch(r"[0-9a-f]{32}", delivery_id(*BASE))


@pytest.mark.parametrize(
    "other",
    [
        ("/yp/water#evt-2", "R-0001", "sms"),
        ("dedup:bill-1", "R-0001", "sms"),
        ("/yp/water#evt-1", "R-0002", "sms"),
        ("/yp/water#evt-1", "R-0001", "kakao"),
        ("/yp/water#evt-1", "R-0001", "email"),
        ("/yp/water#evt-1R", "-0001", "sms"),  # the separator keeps the parts apart
        ("/yp/water#evt-", "1R-0001", "sms"),
    ],
)
def test_any_difference_gives_another_id(other: tuple[str, str, str]) -> None:
    assert delivery_id(*other) != delivery_id(*BASE)


def test_ids_are_distinct_across_many_deliveries() -> None:
    ids = {delivery_id(f"/src#e{e}", f"R-{r}", c) for e in range(20) for r in range(20) for c in ("kakao", "sms")}

    assert len(ids) == 20 * 20 * 2
