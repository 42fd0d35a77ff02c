"""Event data against the wire formats: through the real broker, the real SMTP server and the fake gateways
(real HTTP), data written to break out of its place (HTML, CR/LF, SMTP's end-of-data, JSON) arrives as text
in its place, and the resident's address is the only one any message goes to."""

from __future__ import annotations

import asyncio
from email.utils import parseaddr
from typing import Any

import pytest

from hub.core.cloudevents import new_event
from hub.core.events import validate_event
from hub.core.rendering.renderer import Renderer
from hub.kafka.dlq import read_dead_letters
from hub.settings import Settings
from tests.conftest import wait_for
from tests.fakes.nhn_alimtalk import SENDER_KEY, FakeNhnAlimtalk
from tests.fakes.sens import SENDER_NO, FakeSens
from tests.integration.test_pipeline import send_event

pytestmark = pytest.mark.integration

TYPE = "chatbot.inquiry.answered.v1"  # topic: in the e-mail subject, the SMS, AlimTalk and the HTML body
SMUGGLED_PHONE = "01099998888"
SMUGGLED_EMAIL = "evil@example.org"
DATA = {
    "inquiry_no": "\r\n.\r\nRCPT TO:<ev@ex.org>",  # SMTP's end of data, then a command
    "topic": f'<b>굵게</b> & "q" x","to":"{SMUGGLED_PHONE}',
    "department": '<script>alert(1)</script>"}],"from":"0',
    "answer_url": 'https://talk.example/q" onclick="alert(1)',
}
EMAIL = {"resident_id": "R-email", "name": "<img src=x onerror=alert(1)>", "email": "mail@example.org",
         "channels": ["email"]}
SMS = {"resident_id": "R-sms", "name": f'김"}},{{"to":"{SMUGGLED_PHONE}', "phone": "010-2222-0002",
       "channels": ["sms"]}
KAKAO = {"resident_id": "R-kakao", "name": '이"\n#{name}', "phone": "010-1111-0001", "channels": ["kakao"]}
# the id goes into a header of every e-mail; ids with control characters (CR, LF) are refused outright (below)
EVENT_ID = f"inj-1 Bcc: {SMUGGLED_EMAIL} X-Evil: 1"
CRLF_EVENT_ID = f"inj-1\r\nBcc: {SMUGGLED_EMAIL}\r\nX-Evil: 1"
MAIL_HEADERS = {"Content-Type", "MIME-Version", "From", "To", "Subject", "Date", "Message-ID", "X-Notice-Hub-Event"}
SENS_FIELDS = {"type", "contentType", "countryCode", "from", "content", "messages"}  # + subject for an LMS


def _decoded(message: Any, subtype: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == f"text/{subtype}")
    return str(part.get_content())


def test_an_event_id_with_cr_or_lf_is_refused_before_it_reaches_any_header() -> None:
    from pydantic import ValidationError

    from hub.core.cloudevents import to_kafka_structured
    from hub.core.errors import EventError
    from hub.core.events import read_event

    with pytest.raises(ValidationError):
        new_event(TYPE, {**DATA, "recipients": [EMAIL]}, source="/test/chatbot", id=CRLF_EVENT_ID)
    valid = new_event(TYPE, {**DATA, "recipients": [EMAIL]}, source="/test/chatbot", id="inj-ok")
    value, headers = to_kafka_structured(valid)
    smuggled = value.replace(b'"inj-ok"', b'"inj-1\\r\\nBcc: evil@example.org"')
    assert smuggled != value
    with pytest.raises(EventError):
        read_event(smuggled, [(k, v.encode()) for k, v in headers.items()])


async def test_event_data_cannot_leave_its_place_on_any_channel(gw: Settings, hub_factory: Any, producer: Any,
                                                                nhn: FakeNhnAlimtalk, sens: FakeSens,
                                                                smtp_server: Any) -> None:
    await hub_factory(None, **gw.model_dump())
    event = new_event(TYPE, {**DATA, "recipients": [EMAIL, SMS, KAKAO]}, source="/test/chatbot", id=EVENT_ID)
    await send_event(producer, gw, event)
    await wait_for(lambda: smtp_server.messages and sens.received and nhn.received, timeout_s=60,
                   what="one message on each channel")
    await asyncio.sleep(1)  # nothing more may arrive

    renderer, accepted = Renderer(), validate_event(event)
    # e-mail: one message, to the resident only, the headers the hub writes and no others
    (rcpts, message), = smtp_server.messages
    assert rcpts == ["mail@example.org"]
    assert set(message.keys()) == MAIL_HEADERS, sorted(message.keys())
    assert parseaddr(str(message["To"]))[1] == "mail@example.org"
    assert parseaddr(str(message["From"]))[1] == parseaddr(gw.email_from)[1]
    assert "\n" not in str(message["X-Notice-Hub-Event"]) and SMUGGLED_EMAIL not in str(message["To"])
    html, text = _decoded(message, "html"), _decoded(message, "plain")
    for raw in ("<script>", "<img src=x", "<b>굵게</b>", '" onclick="'):
        assert raw not in html, f"{raw!r} reached the HTML part unescaped"
    for escaped in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;",
                    "&lt;b&gt;굵게&lt;/b&gt; &amp; &#34;q&#34;", "q&#34; onclick=&#34;alert(1)"):
        assert escaped in html, f"{escaped!r} missing from the HTML part"
    expected_email = renderer.render(accepted, validate_event(event).data.recipients[0], "email")
    assert text.strip() == expected_email.text.strip()  # type: ignore[union-attr]
    assert "RCPT TO:<ev@ex.org>" in text  # as text, inside the message

    # SMS: exactly the documented fields; the one number is the resident's
    (sens_call,) = sens.received
    assert set(sens_call.body) - {"subject"} == SENS_FIELDS, sorted(sens_call.body)
    assert sens_call.body["from"] == SENDER_NO and sens_call.body["countryCode"] == "82"
    (sms_message,) = sens_call.body["messages"]
    assert sms_message["to"] == "01022220002" and set(sms_message) <= {"to", "content", "subject"}
    expected_sms = renderer.render(accepted, accepted.data.recipients[1], "sms")
    assert sms_message["content"] == expected_sms.text  # type: ignore[union-attr]
    assert f'"to":"{SMUGGLED_PHONE}' in sms_message["content"]  # the data, as text
    assert [to for to, _ in sens.delivered] == ["01022220002"]

    # AlimTalk: the documented fields; recipientNo is the resident's, the parameters are the rendered text
    (call,) = nhn.received
    assert set(call.body) == {"senderKey", "templateCode", "recipientList"} and call.body["senderKey"] == SENDER_KEY
    (entry,) = call.body["recipientList"]
    assert set(entry) == {"recipientNo", "templateParameter", "buttons", "recipientGroupingKey"}, sorted(entry)
    expected_kakao = renderer.render(accepted, accepted.data.recipients[2], "kakao")
    assert entry["recipientNo"] == "01011110001"
    assert entry["templateParameter"] == expected_kakao.parameters  # type: ignore[union-attr]
    assert entry["templateParameter"]["name"] == '이"\n#{name}' and SMUGGLED_PHONE in entry["templateParameter"]["topic"]
    assert nhn.violations == [] and sens.violations == []
    print(f"\ninjection: 1 e-mail ({len(message.keys())} headers, 1 recipient), 1 SENS call ({len(sens_call.body)} "
          f"fields, 1 message to the resident), 1 AlimTalk call ({len(call.body)} fields, 1 recipient); "
          "every payload arrived as text")


@pytest.mark.parametrize("topic", [f"문의\r\nBcc: {SMUGGLED_EMAIL}", f"문의\nTo: {SMUGGLED_EMAIL}"])
async def test_a_line_break_bound_for_the_subject_sends_nothing(gw: Settings, hub_factory: Any, producer: Any,
                                                                 smtp_server: Any, topic: str) -> None:
    """A subject is one line: an event whose data would break it is dead-lettered, nothing is mailed."""
    await hub_factory(["router", "sender:email"], **gw.model_dump())
    event = new_event(TYPE, {**DATA, "topic": topic, "recipients": [EMAIL]}, source="/test/chatbot", id="inj-2")
    await send_event(producer, gw, event)

    async def dead() -> list[Any]:
        return [d for d in await read_dead_letters(gw) if d.headers.get("ce_id") == "inj-2"]

    (letter,) = await wait_for(dead, timeout_s=30, what="the event in the dead-letter topic")
    await asyncio.sleep(1)
    assert smtp_server.messages == []
    assert "subject" in (letter.headers.get("dlq_reason") or letter.headers.get("dlq_error") or str(letter.headers))
