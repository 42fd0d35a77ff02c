"""Personal data out of logs: masks for phone numbers and e-mail addresses, and a logging filter that
applies them to every record as a last line of defence."""

from __future__ import annotations

import logging
import re

_PHONE_RE = re.compile(r"(?<![\d+])(?:\+82[-\s]?|0)(1[016789])[-\s]?(\d{3,4})[-\s]?(\d{4})(?!\d)")
_EMAIL_RE = re.compile(r"([^\s@<>\"',;:()\[\]])[^\s@<>\"',;:()\[\]]*@([\w.-]+\.\w{2,})")


def mask_phone(phone: str | None) -> str:
    """'01012345678' -> '010-****-5678'."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}-****-{digits[-4:]}"


def mask_email(email: str | None) -> str:
    """'hong@example.org' -> 'h***@example.org'."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_address(channel: str, address: str | None) -> str:
    return mask_email(address) if channel == "email" else mask_phone(address)


def redact(text: str) -> str:
    """Mask every phone number and e-mail address found in free text."""
    text = _PHONE_RE.sub(lambda m: f"0{m.group(1)}-****-{m.group(3)}", text)
    return _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with `redact`, whatever the module logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction() -> None:
    """Attach the filter to every handler of the root logger (call after logging is configured)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
