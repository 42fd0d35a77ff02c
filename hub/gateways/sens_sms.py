"""SMS/LMS through NAVER Cloud SENS (Simple & Easy Notification Service), SMS API v2.

One call is `POST /sms/v2/services/{serviceId}/messages`, signed with the account's access key: up to 100
messages of one type (SMS or LMS) and one content type (COMM or AD), each with its own number, text and
subject. The gateway answers 202 with a `requestId` for the whole call and gives no per-message result then.

SENS has no idempotency key: a send whose outcome is in doubt (a timeout, a dropped connection) may have
gone out, and sending it again may deliver it twice (at-least-once).

Carriers count EUC-KR bytes and gateways cut what does not fit and fail on characters outside EUC-KR (most
emoji), so every message is checked here again, before any HTTP call, and refused rather than cut.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from hub.core.delivery import DeliveryRequest
from hub.core.errors import PermanentError, RenderError, TransientError
from hub.core.rendering.sms import LMS_SUBJECT_MAX_BYTES, SmsContent, euckr_len, sms_content
from hub.gateways._http import HttpGatewayChannel, Outcome, json_object, phone_digits, retry_after_s
from hub.gateways.base import DeliveryResult

logger = logging.getLogger(__name__)

MAX_MESSAGES = 100  # messages limit of one call
COUNTRY_CODE = "82"

StatusKind = Literal["ok", "transient", "permanent"]

# HTTP statuses of the SENS API (SENS overview and the Ncloud API Gateway's error table). Others: 2xx ok,
# 5xx transient, the rest permanent.
STATUS: dict[int, StatusKind] = {
    200: "ok",
    202: "ok",  # accepted: the documented answer to a send
    400: "permanent",  # bad request (fields, sender number not registered, ...)
    401: "permanent",  # authentication failed (keys, signature, timestamp more than 5 minutes off)
    403: "permanent",  # no permission for the service
    404: "permanent",  # no such service id
    413: "permanent",  # request entity too large
    429: "transient",  # too many requests / quota: after Retry-After
    500: "transient",  # internal server error
    502: "transient",
    503: "transient",  # endpoint error
    504: "transient",  # endpoint timeout
}


def status_kind(status: int) -> StatusKind:
    if status in STATUS:
        return STATUS[status]
    if 200 <= status < 300:
        return "ok"
    return "transient" if status >= 500 else "permanent"


def signature(secret_key: str, method: str, path: str, timestamp: str, access_key: str) -> str:
    """x-ncp-apigw-signature-v2: Base64(HmacSHA256(secret, "{method} {path}\\n{timestamp}\\n{accessKey}"))."""
    message = f"{method} {path}\n{timestamp}\n{access_key}".encode()
    return base64.b64encode(hmac.new(secret_key.encode(), message, hashlib.sha256).digest()).decode()


def signed_headers(secret_key: str, access_key: str, method: str, path: str, now_ms: float) -> dict[str, str]:
    """The headers that sign one SENS call (any method; `path` with its query string, as the API Gateway signs)."""
    timestamp = str(int(now_ms))
    return {
        "x-ncp-apigw-timestamp": timestamp,
        "x-ncp-iam-access-key": access_key,
        "x-ncp-apigw-signature-v2": signature(secret_key, method, path, timestamp, access_key),
    }


def sms_parts(content: SmsContent) -> tuple[Literal["SMS", "LMS"], str | None, str]:
    """(type, subject, text) for one message, checked by EUC-KR bytes; PermanentError if it cannot be sent.

    The type follows the bytes: a text over 90 bytes goes as LMS (it then needs a subject); a short text the
    renderer marked LMS stays LMS with its subject."""
    try:
        checked = sms_content(content.text, content.subject)
        if checked.kind == "SMS" and content.kind == "LMS":
            subject = (content.subject or "").strip() or None
            if subject and (size := euckr_len(subject, what="LMS subject")) > LMS_SUBJECT_MAX_BYTES:
                raise RenderError(f"LMS subject is {size} bytes (EUC-KR); the limit is {LMS_SUBJECT_MAX_BYTES}")
            return "LMS", subject, checked.text
    except RenderError as e:
        raise PermanentError(f"cannot be sent by SMS/LMS: {e}") from e
    return checked.kind, checked.subject, checked.text


@dataclass(frozen=True)
class _Message:
    type: Literal["SMS", "LMS"]
    content_type: Literal["COMM", "AD"]
    entry: dict[str, str]


class SensSmsChannel(HttpGatewayChannel[_Message]):
    channel = "sms"
    provider = "sens"
    idempotent = False  # SENS has no idempotency key
    max_batch: ClassVar[int] = MAX_MESSAGES

    def __init__(self, *, base_url: str, service_id: str, access_key: str, secret_key: str, sender_no: str,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 10.0,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(client=client, timeout_s=timeout_s)
        self.url = f"{base_url.rstrip('/')}/sms/v2/services/{service_id}/messages"
        self.path = urlsplit(self.url).path
        self.access_key, self.secret_key = access_key, secret_key
        self.sender_no = sender_no
        self.clock = clock or (lambda: time.time() * 1000)

    def _prepare(self, request: DeliveryRequest) -> _Message:
        content = request.content
        if not isinstance(content, SmsContent):
            raise PermanentError(f"an sms delivery carries {content.kind} content")
        kind, subject, text = sms_parts(content)
        entry = {"to": phone_digits(request.to), "content": text}
        if subject:
            entry["subject"] = subject
        return _Message(kind, "AD" if request.advertising else "COMM", entry)

    def _group_key(self, request: DeliveryRequest, prepared: _Message) -> Hashable:
        return (prepared.type, prepared.content_type)

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json; charset=utf-8",
                **signed_headers(self.secret_key, self.access_key, "POST", self.path, self.clock())}

    async def _call(self, items: list[tuple[DeliveryRequest, _Message]]) -> list[Outcome]:
        first = items[0][1]
        body: dict[str, Any] = {
            "type": first.type,
            "contentType": first.content_type,
            "countryCode": COUNTRY_CODE,
            "from": self.sender_no,
            "content": first.entry["content"],  # required default body; every message carries its own
            "messages": [prepared.entry for _, prepared in items],
        }
        if first.type == "LMS" and "subject" in first.entry:
            body["subject"] = first.entry["subject"]
        response = await self._post(self.url, json.dumps(body, ensure_ascii=False).encode(), self._headers())
        request_id = self._request_id(response)
        return [DeliveryResult(self.provider, request_id) for _ in items]

    def _request_id(self, response: httpx.Response) -> str | None:
        status = response.status_code
        answer = json_object(response)
        kind = status_kind(status)
        if kind == "ok":
            if answer.get("statusName", "success") != "success":
                raise PermanentError(f"{self.provider}: HTTP {status} {answer.get('statusName')}")
            # 202 is the gateway's word that it has the messages, even if the body is unreadable
            return str(answer["requestId"]) if answer.get("requestId") else None
        reason = f"{self.provider}: HTTP {status}" + (f" ({detail})" if (detail := _error_message(answer)) else "")
        if status == 429:
            raise TransientError(reason, retry_after_s=retry_after_s(response.headers.get("Retry-After")))
        if kind == "transient":
            raise TransientError(reason)
        raise PermanentError(reason)


def _error_message(answer: Mapping[str, Any]) -> str | None:
    """The reason in a SENS error body ({status, error(s), errorMessage}) or an API Gateway one
    ({"error": {errorCode, message, details}})."""
    error = answer.get("error")
    if isinstance(error, Mapping):
        parts = [str(error[k]) for k in ("errorCode", "message", "details") if error.get(k)]
        return " ".join(parts) or None
    for key in ("errorMessage", "message", "errors", "error"):
        if answer.get(key):
            return str(answer[key])
    return None
