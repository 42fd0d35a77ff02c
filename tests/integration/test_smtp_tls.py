"""Email over SMTP with STARTTLS and AUTH, against a real SMTP server (aiosmtpd) that requires both."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.core.delivery import DeliveryRequest
from hub.core.rendering.email import EmailContent
from hub.gateways import build_adapter
from hub.settings import Settings
from tests.conftest import _free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[int, Path, list[Any]]]:
    """aiosmtpd on a free port: STARTTLS with a self-signed certificate, AUTH required, user hub / secret."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append((session.authenticated, session.ssl is not None, envelope))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"hub", b"secret")
        return AuthResult(success=ok)

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True, auth_required=True)
    controller.start()
    try:
        yield port, cert, received
    finally:
        controller.stop()


def request() -> DeliveryRequest:
    return DeliveryRequest(delivery_id="0" * 32, notice_key="/t#1", event_id="e-1", event_type="water.bill.issued.v1",
                           event_source="/t", resident_id="R-1", channel="email", to="hong@example.org",
                           content=EmailContent(subject="[양평군] 상수도 요금 고지", text="본문", html="<p>본문</p>"))


async def test_starttls_and_auth(tls_smtp: tuple[int, Path, list[Any]]) -> None:
    port, cert, received = tls_smtp
    settings = Settings(email_adapter="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
                        smtp_username="hub", smtp_password="secret", smtp_ca_file=cert)
    adapter = build_adapter("email", settings)
    result = await adapter.send(request())
    assert result.provider_ref == f"<{'0' * 32}@notice-hub>"
    ((authenticated, over_tls, envelope),) = received
    assert authenticated and over_tls and envelope.rcpt_tos == ["hong@example.org"]

