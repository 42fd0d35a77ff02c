"""A delivery status as its CloudEvent: structured mode, the status's own fields as `data`, whatever text they hold."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from hub.core.delivery import STATUS_EVENT_TYPE, DeliveryStatus

any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@given(reason=st.none() | any_text, resident=any_text.filter(bool), delivery=st.none() | st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
       attempt=st.integers(1, 10), latency=st.none() | st.floats(0, 1e6))
def test_the_cloudevent_carries_the_status_as_json(reason: str | None, resident: str, delivery: str | None,
                                                   attempt: int, latency: float | None) -> None:
    status = DeliveryStatus(delivery_id=delivery, event_id="e-1", event_type="water.bill.issued.v1",
                            resident_id=resident, channel="sms", state="sent", reason=reason, attempt=attempt,
                            latency_s=latency)
    event = json.loads(status.to_cloudevent("/notice-hub/sender/sms"))
    data = status.model_dump(mode="json")
    assert event == {"specversion": "1.0", "id": f"{delivery or f'e-1:{resident}'}:sent:{attempt}",
                     "source": "/notice-hub/sender/sms", "type": STATUS_EVENT_TYPE, "subject": "e-1",
                     "time": data["at"], "datacontenttype": "application/json", "data": data}
    assert DeliveryStatus.model_validate(event["data"]) == status
