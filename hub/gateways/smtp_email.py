"""Email over SMTP (aiosmtplib): multipart text + HTML, STARTTLS or implicit TLS, AUTH when configured.

SMTP has no idempotency key: a stable Message-ID (from the delivery id) lets mail systems and people spot a
repeat, but a send whose outcome is in doubt is sent again (at-least-once; see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ssl
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib

from hub.core.delivery import DeliveryRequest
from hub.core.errors import PermanentError, TransientError
from hub.core.rendering.email import EmailContent
from hub.core.time import utcnow
from hub.gateways.base import ChannelAdapter, DeliveryResult

# Built with the classic MIME classes: the `email.policy` folder drops the space between two RFC 2047
# encoded words, so a long Korean subject arrived as "요금고지" instead of "요금 고지"; `Header` keeps it,
# folded into short lines of encoded words.


def to_wire(message: MIMEMultipart) -> bytes:
    """The bytes the SMTP server receives (what aiosmtplib writes for a classic message)."""
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class SmtpEmailChannel(ChannelAdapter):
    channel = "email"
    provider = "smtp"

    def __init__(self, *, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, start_tls: bool = False, use_tls: bool = False,
                 timeout_s: float = 10.0, message_id_domain: str = "notice-hub",
                 unsubscribe_url: str | None = None, unsubscribe_mailto: str | None = None,
                 ca_file: str | None = None) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.start_tls, self.use_tls, self.timeout_s = start_tls, use_tls, timeout_s
        self.tls_context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.message_id_domain = message_id_domain
        self.unsubscribe_url = unsubscribe_url
        self.unsubscribe_mailto = f"mailto:{unsubscribe_mailto}" if unsubscribe_mailto else None

    def build_message(self, request: DeliveryRequest) -> MIMEMultipart:
        content = request.content
        if not isinstance(content, EmailContent):
            raise PermanentError(f"email delivery carries {content.kind} content")
        if any(c in request.to for c in "\r\n,;<>") or "@" not in request.to:
            raise PermanentError("not a single e-mail address")
        name, addr = parseaddr(self.sender)
        msg = MIMEMultipart("alternative")
        msg["From"] = formataddr((str(Header(name, "utf-8")), addr)) if name else addr
        msg["To"] = request.to
        msg["Subject"] = Header(content.subject, "utf-8")  # type: ignore[assignment]  # email accepts a Header (RFC 2047); typeshed says str
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = f"<{request.delivery_id}@{self.message_id_domain}>"
        msg["X-Notice-Hub-Event"] = Header(request.event_id, "utf-8")  # type: ignore[assignment]  # as Subject
        self._list_unsubscribe(msg, request, content)
        msg.attach(MIMEText(content.text, "plain", "utf-8"))
        msg.attach(MIMEText(content.html, "html", "utf-8"))
        return msg

    def _list_unsubscribe(self, msg: MIMEMultipart, request: DeliveryRequest, content: EmailContent) -> None:
        """RFC 2369 List-Unsubscribe and RFC 8058 one-click: the resident's own signed link when the message
        carries one (the hub's public pages answer its POST), else the county-wide opt-out URL on advertising."""
        url = content.unsubscribe_url or (self.unsubscribe_url if request.advertising else None)
        mailto = self.unsubscribe_mailto if url or request.advertising else None
        targets = [f"<{u}>" for u in (url, mailto) if u]
        if not targets:
            return
        msg["List-Unsubscribe"] = ", ".join(targets)
        if url and url.startswith(("https://", "http://")):  # the county serves it over https (RFC 8058)
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    async def _send(self, request: DeliveryRequest) -> DeliveryResult:
        try:
            message = self.build_message(request)
        except (ValueError, TypeError) as e:  # e.g. an address the email package refuses
            raise PermanentError(f"cannot build the message: {e}") from e
        try:
            _, response = await aiosmtplib.send(
                message, sender=parseaddr(self.sender)[1], recipients=[request.to], hostname=self.host, port=self.port, username=self.username, password=self.password,
                start_tls=self.start_tls, use_tls=self.use_tls, timeout=self.timeout_s, tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            if all(c < 500 for c in codes):
                raise TransientError(f"recipient deferred by the SMTP server ({codes})") from e
            raise PermanentError(f"recipient refused by the SMTP server ({codes})") from e
        except aiosmtplib.SMTPResponseException as e:
            if 400 <= e.code < 500:
                raise TransientError(f"SMTP {e.code}: {e.message}") from e
            raise PermanentError(f"SMTP {e.code}: {e.message}") from e
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as e:
            raise TransientError(f"SMTP server unreachable: {type(e).__name__}: {e}") from e
        return DeliveryResult(provider=self.provider, provider_ref=message["Message-ID"], detail=response)
