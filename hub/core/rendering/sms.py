"""SMS and LMS: the EUC-KR byte counts the carriers use, and the choice between SMS and LMS. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hub.core.errors import RenderError

SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
LMS_SUBJECT_MAX_BYTES = 40


class SmsContent(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["SMS", "LMS"]
    subject: str | None = None
    text: str
    byte_count: int


def euckr_len(text: str, *, what: str = "text") -> int:
    """Bytes the carriers count (EUC-KR: Hangul 2, ASCII 1). Characters outside EUC-KR are a RenderError."""
    try:
        size = len(text.encode("euc-kr"))
    except UnicodeEncodeError as e:
        raise _not_euckr(what, text, e.start) from e
    if size != 2 * len(text) - len(text.encode("ascii", "ignore")):  # Hangul outside KS X 1001 ('똠'): 8 bytes
        position = next(i for i, c in enumerate(text) if len(c.encode("euc-kr")) > 2)
        raise _not_euckr(what, text, position)
    return size


def _not_euckr(what: str, text: str, position: int) -> RenderError:
    bad = text[position]
    return RenderError(
        f"{what}: character {bad!r} (U+{ord(bad):04X}) at position {position} cannot be sent by SMS/LMS "
        "(not in EUC-KR; e.g. emoji). 문자로 보낼 수 없는 글자입니다."
    )


def sms_content(text: str, subject: str | Callable[[], str | None] | None) -> SmsContent:
    """Choose SMS or LMS by EUC-KR bytes; refuse what does not fit rather than let a gateway cut it. `subject`
    may be a function, called only when the text needs an LMS (a subject template rendered for nothing cost
    as much as the body)."""
    text = text.strip()
    if not text:
        raise RenderError("SMS body is empty")
    size = euckr_len(text, what="SMS body")
    if size <= SMS_MAX_BYTES:
        return SmsContent(kind="SMS", text=text, byte_count=size)
    if size > LMS_MAX_BYTES:
        raise RenderError(f"LMS body is {size} bytes (EUC-KR); the limit is {LMS_MAX_BYTES}")
    subject = ((subject() if callable(subject) else subject) or "").strip()
    if not subject:
        raise RenderError("LMS needs a subject")
    subject_size = euckr_len(subject, what="LMS subject")
    if subject_size > LMS_SUBJECT_MAX_BYTES:
        raise RenderError(f"LMS subject is {subject_size} bytes (EUC-KR); the limit is {LMS_SUBJECT_MAX_BYTES}")
    return SmsContent(kind="LMS", subject=subject, text=text, byte_count=size)
