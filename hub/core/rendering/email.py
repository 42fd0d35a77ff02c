"""E-mail: a subject, a text part and an HTML part (auto-escaped). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from jinja2 import Template
from pydantic import BaseModel, ConfigDict

from hub.core.errors import RenderError

EMAIL_SUBJECT_MAX_CHARS = 150


class EmailContent(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["email"] = "email"
    subject: str
    text: str
    html: str
    unsubscribe_url: str | None = None  # the resident's own link: List-Unsubscribe, RFC 8058 one-click


def render_email(subject_template: Template, text: Template, html: Template, ctx: Mapping[str, Any]) -> EmailContent:
    subject = subject_template.render(ctx).strip()
    if not subject or any(c in subject for c in "\r\n\x00"):
        raise RenderError("email subject must be one non-empty line")
    if len(subject) > EMAIL_SUBJECT_MAX_CHARS:
        raise RenderError(f"email subject is {len(subject)} characters; keep it under {EMAIL_SUBJECT_MAX_CHARS}")
    return EmailContent(subject=subject, text=text.render(ctx).strip() + "\n", html=html.render(ctx))
