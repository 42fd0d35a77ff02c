"""What the law requires of every advertising message (정보통신망법 제50조), added by the hub and not left to
template authors: "(광고)" first, the sender's name and contact, and a free way to opt out. Pure."""

from __future__ import annotations

from markupsafe import escape

from hub.core.errors import RenderError
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.email import EmailContent
from hub.core.rendering.identity import Identity
from hub.core.rendering.sms import SmsContent, sms_content


def advertise(content: KakaoContent | SmsContent | EmailContent, me: Identity) -> SmsContent | EmailContent:
    """`content` as an advertisement of `me`: AlimTalk cannot carry one (a RenderError)."""
    if isinstance(content, KakaoContent):
        raise RenderError("AlimTalk cannot carry advertising; send it by SMS/LMS or email")
    if isinstance(content, SmsContent):
        text = f"{_ad_opening(content.text, me.name)}\n문의 {me.contact} / 무료거부 {me.optout_phone}"
        subject = _ad_opening(content.subject or me.sms_subject, me.name)
        try:
            return sms_content(text, subject)
        except RenderError as e:
            raise RenderError(f"with the advertising notice added: {e}") from e
    head = f"(광고) {me.name} / 연락처 {me.contact}"
    foot = f"수신을 원하지 않으시면 {me.optout_url} 또는 무료거부 {me.optout_phone}으로 알려 주세요."
    html_head = f'<p style="font-size:13px;color:#555">{escape(head)}</p>'
    html_foot = (f'<p style="font-size:12px;color:#777">수신을 원하지 않으시면 <a href="{escape(me.optout_url)}">'
                 f"수신 거부</a> 또는 무료거부 {escape(me.optout_phone)}</p>")
    html = content.html
    if "</body>" in html:
        html = html.replace("</body>", html_foot + "</body>", 1)
        body_at = html.find(">", html.find("<body")) + 1 if "<body" in html else 0
        html = html[:body_at] + html_head + html[body_at:]
    else:
        html = html_head + html + html_foot
    return EmailContent(subject=f"(광고) {content.subject}", text=f"{head}\n\n{content.text.rstrip()}\n\n{foot}\n",
                        html=html)


def _ad_opening(text: str, sender: str) -> str:
    """"(광고)" first, then the sender's name. A template's text opens with a tag naming the county
    ("[양평군] ...", "[Yangpyeong County] ..."; tests/property/test_message_wording.py holds every template to
    it): the mark goes before it, so the name is not said twice. A text without one gets the name in a tag."""
    return f"(광고){text}" if text.startswith("[") else f"(광고)[{sender}] {text}"
