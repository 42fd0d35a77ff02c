"""A fake NAVER Cloud SENS SMS gateway (SMS API v2) over real HTTP.

It checks what the documented gateway checks and answers as it does:
- the path (`/sms/v2/services/{serviceId}/messages`): else 404;
- the API Gateway headers: the access key, a timestamp within 5 minutes and the signature
  Base64(HmacSHA256(secret, "POST {path}\\n{timestamp}\\n{accessKey}")), recomputed with the known secret:
  else 401 with the API Gateway's error body ({"error": {"errorCode": "200", "message": ...}});
- the body: type SMS/LMS/MMS, contentType COMM/AD, from a registered number, content, 1-100 messages with
  digit-only `to`: else 400 with SENS's error body ({"status", "error", "errorMessage"}).
Byte limits (SMS 90, LMS 2,000, subject 40, EUC-KR only) are recorded as violations but, like the real
gateway (which cuts what is too long and fails a message it cannot encode later), the call is accepted with
202; a message with a character outside EUC-KR is not counted as delivered.

A scripted int is an HTTP status for the whole call (e.g. 400, 403), with an error body.

The 080 opt-out list, `GET /sms/v2/services/{serviceId}/unsubscribes` (`register_optout` adds a number): signed
like a send (the path with its query string), filtered by `clientTelNo` and by registration time (`startTime`,
`endTime`: epoch ms, inclusive), paged (`pageSize` 1-100, `pageIndex` from 0), 404 for an empty page, and
`registerTime` written in KST without an offset. Its requests go to `list_requests` and its script is
`list_script`, apart from the sends', so a hub polling the list does not disturb a test of the sends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes._server import Answer, Behaviour, FakeGateway, Received

SERVICE_ID = "ncp:sms:kr:000000000000:notice-hub"
SENDER_NO = "0317702114"
MAX_MESSAGES = 100
TIMESTAMP_TOLERANCE_MS = 5 * 60 * 1000
LIMITS = {"SMS": 90, "LMS": 2000, "MMS": 2000}
SUBJECT_MAX = 40
KST = timezone(timedelta(hours=9))  # the gateway writes registerTime on the county's wall clock, without an offset


def sign(secret_key: str, path: str, timestamp: str, access_key: str, method: str = "POST") -> str:
    message = f"{method} {path}\n{timestamp}\n{access_key}".encode()
    return base64.b64encode(hmac.new(secret_key.encode(), message, hashlib.sha256).digest()).decode()


def euckr_bytes(text: str) -> int | None:
    try:
        return len(text.encode("euc-kr"))
    except UnicodeEncodeError:
        return None


@dataclass
class FakeSens(FakeGateway):
    service_id: str = SERVICE_ID
    access_key: str = "test-access-key"
    secret_key: str = "test-secret-key"
    senders: set[str] = field(default_factory=lambda: {SENDER_NO})
    clock: Callable[[], float] = lambda: time.time() * 1000  # epoch ms

    # the 080 opt-out list: (number as the gateway writes it, registration time in epoch ms, "C" or "M"); its
    # endpoint keeps its own log and script, so a hub polling it does not disturb a test of the sends
    optouts: list[tuple[str, int, str]] = field(default_factory=list)
    list_requests: list[Received] = field(default_factory=list)
    list_script: list[Behaviour] = field(default_factory=list)  # HTTP statuses, one per list request, then "ok"

    @property
    def path(self) -> str:
        return f"/sms/v2/services/{self.service_id}/messages"

    @property
    def unsubscribes_path(self) -> str:
        return f"/sms/v2/services/{self.service_id}/unsubscribes"

    def register_optout(self, number: str, at: datetime, kind: str = "C") -> None:
        """A resident calls the 080 number (kind "C") or staff add a number by hand ("M") at `at` (aware)."""
        with self.lock:
            self.optouts.append((number, int(at.timestamp() * 1000), kind))

    def respond(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        if urlsplit(path).path != self.unsubscribes_path:
            return super().respond(method, path, headers, raw)
        rec = Received(method, path, headers, raw, None, time.time(), arrived=time.monotonic())
        with self.lock:
            self.list_requests.append(rec)
            behaviour = self.list_script.pop(0) if self.list_script else "ok"
        answer = self._unsubscribes(rec, behaviour)
        rec.status, rec.answer = answer[0], answer[2]
        return answer

    def _unsubscribes(self, rec: Received, behaviour: Behaviour) -> Answer:
        """`GET .../unsubscribes`, signed like a send: the list filtered by clientTelNo and registration time
        (startTime/endTime, epoch ms, inclusive), oldest first, paged (pageSize 1-100, default 100; pageIndex from
        0). An empty page is a 404, as the documentation allows."""
        if self.down:
            return 503, {}, {"error": "Service Unavailable"}
        if rec.method != "GET":
            return self._error(rec, 405, f"{rec.method} of the list is not faked")
        if refusal := self._check_auth(rec):
            return self._gateway_error(rec, 401, "200", "Authentication Failed", refusal)
        if isinstance(behaviour, int):
            return behaviour, {}, {"status": behaviour, "error": "Scripted", "errorMessage": f"scripted {behaviour}"}
        query = {k: v[-1] for k, v in parse_qs(urlsplit(rec.path).query, keep_blank_values=True).items()}
        try:
            size, index = int(query.get("pageSize", "100")), int(query.get("pageIndex", "0"))
            start, end = (int(query[k]) if k in query else None for k in ("startTime", "endTime"))
        except ValueError:
            return self._error(rec, 400, "pageSize, pageIndex, startTime and endTime are integers")
        if not 1 <= size <= 100 or index < 0:
            return self._error(rec, 400, "pageSize is 1 to 100 and pageIndex from 0")
        with self.lock:
            listed = sorted((at, number, kind) for number, at, kind in self.optouts
                            if (start is None or at >= start) and (end is None or at <= end)
                            and query.get("clientTelNo") in (None, number))
        page = listed[index * size:(index + 1) * size]
        if not page:
            return 404, {}, {"status": 404, "error": "Not Found", "errorMessage": "no unsubscribes"}
        return 200, {}, [{"clientTelNo": number, "registerType": kind,
                          "registerTime": datetime.fromtimestamp(at / 1000, KST).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]}
                         for at, number, kind in page]

    def handle(self, rec: Received, behaviour: Behaviour) -> Answer:
        if rec.method != "POST" or rec.path != self.path:
            return self._gateway_error(rec, 404, "300", "Not Found Exception", f"{rec.method} {rec.path}")
        if refusal := self._check_auth(rec):
            return self._gateway_error(rec, 401, "200", "Authentication Failed", refusal)
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return self._error(rec, 400, "Content-Type must be application/json")
        if refusal := self._check_body(rec.body):
            return self._error(rec, 400, refusal)
        if isinstance(behaviour, int):  # a scripted HTTP status for the whole call
            return behaviour, {}, {"status": behaviour, "error": "Scripted", "errorMessage": f"scripted {behaviour}"}
        delivered = self._check_content(rec.body)
        self.accept(rec, delivered)
        return 202, {}, {"requestId": f"RSSA-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:16]}",
                         "requestTime": time.strftime("%Y-%m-%dT%H:%M:%S.000"),
                         "statusCode": "202", "statusName": "success"}

    def _check_auth(self, rec: Received) -> str | None:
        timestamp = rec.headers.get("x-ncp-apigw-timestamp", "")
        if not timestamp.isdigit():
            return "x-ncp-apigw-timestamp is missing or not epoch milliseconds"
        if abs(int(timestamp) - self.clock()) > TIMESTAMP_TOLERANCE_MS:
            return "x-ncp-apigw-timestamp is more than 5 minutes off"
        if rec.headers.get("x-ncp-iam-access-key") != self.access_key:
            return "unknown x-ncp-iam-access-key"
        expected = sign(self.secret_key, rec.path, timestamp, self.access_key, rec.method)  # the path with its query
        if not hmac.compare_digest(rec.headers.get("x-ncp-apigw-signature-v2", ""), expected):
            return "x-ncp-apigw-signature-v2 does not match"
        return None

    def _check_body(self, body: Any) -> str | None:
        """The first reason the gateway would answer 400; None if the body is well formed."""
        if not isinstance(body, dict):
            return "the body is not a JSON object"
        if body.get("type") not in LIMITS:
            return f"type must be SMS, LMS or MMS, not {body.get('type')!r}"
        if body.get("contentType", "COMM") not in ("COMM", "AD"):
            return f"contentType must be COMM or AD, not {body.get('contentType')!r}"
        if not isinstance(body.get("countryCode", "82"), str):
            return "countryCode must be a string"
        if body.get("from") not in self.senders:
            return "from is not a registered sender number (발신번호 미등록)"
        if not isinstance(body.get("content"), str):
            return "content is required"
        if "subject" in body and not isinstance(body["subject"], str):
            return "subject must be a string"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages is required"
        if len(messages) > MAX_MESSAGES:
            return f"messages has {len(messages)} entries; at most {MAX_MESSAGES}"
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                return f"messages[{i}] is not an object"
            if not isinstance(message.get("to"), str) or not re.fullmatch(r"\d{1,16}", message["to"]):
                return f"messages[{i}].to must be digits only"
            for key in ("content", "subject"):
                if key in message and not isinstance(message[key], str):
                    return f"messages[{i}].{key} must be a string"
        return None

    def _check_content(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        """Byte limits per message (soft: recorded, the call still accepted); the messages that would arrive."""
        kind, delivered = body["type"], []
        for i, message in enumerate(body["messages"]):
            content = message.get("content", body["content"])
            subject = message.get("subject", body.get("subject"))
            size = euckr_bytes(content)
            if size is None:
                self.violation(f"messages[{i}].content has characters outside EUC-KR: the message fails")
                continue
            if size > LIMITS[kind]:
                self.violation(f"messages[{i}].content is {size} bytes; {kind} takes {LIMITS[kind]} (cut)")
            if subject is not None:
                if kind == "SMS":
                    self.violation(f"messages[{i}].subject on an SMS (ignored)")
                subject_size = euckr_bytes(subject)
                if subject_size is None or subject_size > SUBJECT_MAX:
                    self.violation(f"messages[{i}].subject is not EUC-KR or over {SUBJECT_MAX} bytes")
            delivered.append((message["to"], content))
        return delivered

    def _gateway_error(self, rec: Received, status: int, code: str, message: str, details: str) -> Answer:
        self.violation(f"{status}: {message}: {details}")
        return status, {}, {"error": {"errorCode": code, "message": message, "details": details}}

    def _error(self, rec: Received, status: int, message: str) -> Answer:
        self.violation(f"{status}: {message}")
        return status, {}, {"status": status, "error": "Bad Request", "errorMessage": message}
