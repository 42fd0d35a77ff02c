"""`read_delivery`, the senders' check of every record of a deliveries topic: ids and addresses with a control
character are refused (they go into SQL, HTTP bodies and e-mail headers), anything else the hub writes is read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.delivery import DeliveryRequest, read_delivery
from hub.core.errors import EventError
from hub.core.rendering.sms import SmsContent

FIELDS = ("notice_key", "event_id", "event_type", "event_source", "resident_id", "to")
some_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


def request(**fields: str) -> DeliveryRequest:
    values = {"notice_key": "/dept/water#e-1", "event_id": "e-1", "event_type": "water.bill.issued.v1",
              "event_source": "/dept/water", "resident_id": "R-1", "to": "01012345678", **fields}
    return DeliveryRequest(delivery_id="0123456789abcdef0123456789abcdef", channel="sms",
                           content=SmsContent(kind="SMS", text="안내", byte_count=4), **values)


@given(field=st.sampled_from(FIELDS), text=some_text)
def test_a_field_is_read_exactly_when_it_has_no_control_character(field: str, text: str) -> None:
    value = request(**{field: text}).to_kafka()
    if len(text) <= 1000 and not any(ord(c) < 32 for c in text):
        assert getattr(read_delivery(value, "sms"), field) == text
    else:
        with pytest.raises(EventError, match=field):
            read_delivery(value, "sms")
