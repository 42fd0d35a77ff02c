"""What the law requires of every advertising message (정보통신망법 제50조), added by the hub and not left to
template authors: "(광고)" first, the sender's name and contact, and a free way to opt out. Also the resident's
own preferences link (hub.core.links), which advertising always carries and county news carries when the
settings say so. Pure."""

from __future__ import annotations

from markupsafe import escape

from hub.core.errors import RenderError
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.email import EmailContent
from hub.core.rendering.identity import Identity
from hub.core.rendering.sms import SmsContent, sms_content


def advertise(content: KakaoContent | SmsContent | EmailContent, me: Identity,
              link: str | None = None) -> SmsContent | EmailContent:
    """`content` as an advertisement of `me`: AlimTalk cannot carry one (a RenderError). `link`, the
    resident's signed link, stands in for the county-wide opt-out URL."""
    if isinstance(content, KakaoContent):
        raise RenderError("AlimTalk cannot carry advertising; send it by SMS/LMS or email")
    if isinstance(content, SmsContent):
        text = f"{_ad_opening(content.text, me.name)}\n문의 {me.contact} / 무료거부 {me.optout_phone}"
        subject = _ad_opening(content.subject or me.sms_subject, me.name)
        try:
            return sms_content(text + (f"\n수신거부 {link}" if link else ""), subject)
        except RenderError as e:
            if link:  # the 080 number is the free opt-out the law asks for: without the link it still holds
                return advertise(content, me)
            raise RenderError(f"with the advertising notice added: {e}") from e
    optout_url = link or me.optout_url
    head = f"(광고) {me.name} / 연락처 {me.contact}"
    foot = f"수신을 원하지 않으시면 {optout_url} 또는 무료거부 {me.optout_phone}으로 알려 주세요."
    html_head = f'<p style="font-size:13px;color:#555">{escape(head)}</p>'
    html_foot = (f'<p style="font-size:12px;color:#777">수신을 원하지 않으시면 <a href="{escape(optout_url)}">'
                 f"수신 거부</a> 또는 무료거부 {escape(me.optout_phone)}</p>")
    return EmailContent(subject=f"(광고) {content.subject}", text=f"{head}\n\n{content.text.rstrip()}\n\n{foot}\n",
                        html=_wrap_html(content.html, html_head, html_foot), unsubscribe_url=link)


def with_link(content: KakaoContent | SmsContent | EmailContent, link: str,
              me: Identity) -> KakaoContent | SmsContent | EmailContent:
    """County news with the resident's preferences link at the end. AlimTalk text must match the template
    Kakao reviewed, so it stays as it is; an SMS the link would push past the LMS limit goes without it."""
    if isinstance(content, SmsContent):
        try:
            return sms_content(f"{content.text}\n수신설정 {link}", content.subject or me.sms_subject)
        except RenderError:
            return content
    if isinstance(content, EmailContent):
        foot = f'<p style="font-size:12px;color:#777"><a href="{escape(link)}">수신 설정</a></p>'
        return EmailContent(subject=content.subject, text=f"{content.text.rstrip()}\n\n수신 설정: {link}\n",
                            html=_wrap_html(content.html, "", foot), unsubscribe_url=link)
    return content


def _wrap_html(html: str, head: str, foot: str) -> str:
    if "</body>" in html:
        html = html.replace("</body>", foot + "</body>", 1)
        body_at = html.find(">", html.find("<body")) + 1 if "<body" in html else 0
        return html[:body_at] + head + html[body_at:]
    return head + html + foot


def _ad_opening(text: str, sender: str) -> str:
    """"(광고)" first, then the sender's name. A template's text opens with a tag naming the county
    ("[양평군] ...", "[Yangpyeong County] ..."; tests/property/test_message_wording.py holds every template to
    it): the mark goes before it, so the name is not said twice. A text without one gets the name in a tag."""
    return f"(광고){text}" if text.startswith("[") else f"(광고)[{sender}] {text}"
