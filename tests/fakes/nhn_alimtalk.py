"""A fake NHN Cloud AlimTalk gateway (KakaoTalk Bizmessage API v2.2, 치환 발송) over real HTTP.

It answers as the documented gateway does: HTTP 200 with `header.isSuccessful/resultCode/resultMessage` even
on errors, `message.requestId` and one `sendResults[]` row per recipient. It checks the path (appkey), the
X-Secret-Key, the body (senderKey of 40 characters, templateCode of 1-20, recipientList of 1-1,000 with
recipientNo and templateParameter, buttons as the substitution API takes them) and honours
X-NC-API-IDEMPOTENCY-KEY (the same key within 10 minutes of an accepted call: -1005, nothing delivered).

Per-recipient failures: numbers in `not_kakao_users` get 3019, in `blocked_users` 3020, and
`recipient_codes` maps any number to any code. The real gateway reports these Kakao delivery results later
(message query API, webhook), not in the send answer; the fake puts them in `sendResults` so that the
adapter's per-recipient handling can be tested. When every recipient fails, the header is -1031.

Where the fake is stricter than the documented gateway (resendParameter present, button keys the
substitution API does not list), it records a violation; the button case is also refused with -2018.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._server import Answer, Behaviour, FakeGateway, Received

SENDER_KEY = "0123456789abcdef0123456789abcdef01234567"
IDEMPOTENCY_WINDOW_S = 600.0
MAX_RECIPIENTS = 1000
BUTTON_KEYS = frozenset({"ordering", "chatExtra", "chatEvent", "target"})

MESSAGES = {
    0: "SUCCESS",
    -1000: "Invalid appKey.",
    -1001: "Invalid secretKey.",
    -1005: "The same 'X-NC-API-IDEMPOTENCY-KEY' was used within the last 10 minute.",
    -1017: "Sending in excess of daily volume failed",
    -1027: "The sender is blocked status.",
    -1028: "Blacklist can't use more than 14 characters in template value.",
    -1031: "All of receivers are failed to send.",
    -2000: "The '{}' must be at less than or equal to {}.",
    -2001: "The '{}' must not be blank.",
    -2004: "The '{}' must be between {} and {}.",
    -2005: "The '{}' must be less than or equal to {}.",
    -2017: "Not exist plus friend.",
    -2018: "Button parameter is invalid.",
    -3003: "Template does not exist.",
    -3004: "Please check template parameter.",
    -4019: "Invalid recipient number.",
    -9996: "Only application/json Content-type is supported.",
    -9997: "Client Error.",
    -9998: "Not exist API",
    3019: "메시지를 발송할 수 없음: 카카오톡 유저가 아님",
    3020: "메시지를 발송할 수 없음: 알림톡 수신 차단",
}


def _header(code: int, message: str | None = None) -> dict[str, Any]:
    return {"resultCode": code, "resultMessage": message or MESSAGES.get(code, "error"), "isSuccessful": code == 0}


@dataclass
class FakeNhnAlimtalk(FakeGateway):
    appkey: str = "test-appkey"
    secret_key: str = "test-secret"
    sender_key: str = SENDER_KEY
    templates: Mapping[str, set[str]] | None = None  # template code -> its variables; None: any template
    not_kakao_users: set[str] = field(default_factory=set)
    blocked_users: set[str] = field(default_factory=set)
    recipient_codes: dict[str, int] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    _keys: dict[str, float] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/alimtalk/v2.2/appkeys/{self.appkey}/messages"

    def handle(self, rec: Received, behaviour: Behaviour) -> Answer:
        if rec.method != "POST" or not re.fullmatch(r"/alimtalk/v2\.2/appkeys/[^/]+/messages", rec.path):
            return self._refuse(rec, -9998, status=404)
        if rec.path != self.path:
            return self._refuse(rec, -1000)
        if rec.headers.get("x-secret-key") != self.secret_key:
            return self._refuse(rec, -1001)
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return self._refuse(rec, -9996)
        if refusal := self._check_body(rec.body):
            return self._refuse(rec, *refusal)
        if isinstance(behaviour, int):  # a scripted result code for the whole call
            return 200, {}, {"header": _header(behaviour), "message": None}
        key = rec.headers.get("x-nc-api-idempotency-key")
        now = self.clock()
        with self.lock:
            if key and now - self._keys.get(key, float("-inf")) < IDEMPOTENCY_WINDOW_S:
                return 200, {}, {"header": _header(-1005), "message": None}
            request_id = f"{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:12]}"
            results, delivered = [], []
            for seq, recipient in enumerate(rec.body["recipientList"], start=1):
                number = recipient["recipientNo"]
                code = self._recipient_code(number)
                results.append({"recipientSeq": seq, "recipientNo": number, "resultCode": code,
                                "resultMessage": MESSAGES.get(code, "error"),
                                "recipientGroupingKey": recipient.get("recipientGroupingKey")})
                if code == 0:
                    delivered.append((number, str(recipient.get("recipientGroupingKey") or "")))
            header = _header(0) if delivered else _header(-1031)
            if delivered:
                if key:
                    self._keys[key] = now
                self.accept(rec, delivered)
        return 200, {}, {"header": header, "message": {"requestId": request_id, "senderGroupingKey": None,
                                                       "sendResults": results}}

    def _recipient_code(self, number: str) -> int:
        if number in self.recipient_codes:
            return self.recipient_codes[number]
        if number in self.not_kakao_users:
            return 3019
        if number in self.blocked_users:
            return 3020
        return 0

    def _refuse(self, rec: Received, code: int, message: str | None = None, *, status: int = 200) -> Answer:
        self.violation(f"{code}: {message or MESSAGES.get(code, 'error')}")
        return status, {}, {"header": _header(code, message), "message": None}

    def _check_body(self, body: Any) -> tuple[int, str] | None:
        """The first reason the gateway would refuse the body, as (result code, message); None if it is fine."""
        if not isinstance(body, dict):
            return -9997, "the body is not a JSON object"
        sender_key = body.get("senderKey")
        if not isinstance(sender_key, str) or not sender_key:
            return -2001, "The 'senderKey' must not be blank."
        if len(sender_key) != 40:
            return -2004, "The 'senderKey' must be between 40 and 40."
        if sender_key != self.sender_key:
            return -2017, MESSAGES[-2017]
        code = body.get("templateCode")
        if not isinstance(code, str) or not code:
            return -2001, "The 'templateCode' must not be blank."
        if len(code) > 20:
            return -2000, "The 'templateCode' must be at less than or equal to 20."
        if self.templates is not None and code not in self.templates:
            return -3003, MESSAGES[-3003]
        recipients = body.get("recipientList")
        if not isinstance(recipients, list) or not recipients:
            return -2001, "The 'recipientList' must not be blank."
        if len(recipients) > MAX_RECIPIENTS:
            return -2005, f"The 'recipientList' must be less than or equal to {MAX_RECIPIENTS}."
        for i, recipient in enumerate(recipients):
            if refusal := self._check_recipient(i, recipient, code):
                return refusal
        return None

    def _check_recipient(self, i: int, recipient: Any, template_code: str) -> tuple[int, str] | None:
        where = f"recipientList[{i}]"
        if not isinstance(recipient, dict):
            return -9997, f"{where} is not an object"
        number = recipient.get("recipientNo")
        if not isinstance(number, str) or not re.fullmatch(r"\d{1,15}", number):
            return -4019, f"{where}.recipientNo must be up to 15 digits"
        params = recipient.get("templateParameter")
        if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in params.items()):
            return -3004, f"{where}.templateParameter must be an object of strings"
        if self.templates is not None and set(params) != self.templates[template_code]:
            return -3004, f"{where}.templateParameter has {sorted(params)}, the template {sorted(self.templates[template_code])}"
        if "resendParameter" in recipient:
            self.violation(f"{where}.resendParameter: the hub does its own fallback and must not set it")
        buttons = recipient.get("buttons", [])
        if not isinstance(buttons, list) or len(buttons) > 5:
            return -2018, f"{where}.buttons must be a list of at most 5"
        orderings = []
        for j, button in enumerate(buttons):
            if not isinstance(button, dict) or not isinstance(button.get("ordering"), int) or button["ordering"] < 1:
                return -2018, f"{where}.buttons[{j}] needs an integer ordering >= 1"
            if extra := set(button) - BUTTON_KEYS:
                return -2018, f"{where}.buttons[{j}] has {sorted(extra)}, not taken by the substitution API"
            orderings.append(button["ordering"])
        if len(set(orderings)) != len(orderings):
            return -2018, f"{where}.buttons have repeated orderings"
        grouping = recipient.get("recipientGroupingKey")
        if grouping is not None and (not isinstance(grouping, str) or len(grouping) > 100):
            return -2000, f"{where}.recipientGroupingKey must be a string of at most 100 characters"
        return None
