"""A fake NHN Cloud AlimTalk gateway (KakaoTalk Bizmessage API v2.2) over real HTTP: the 치환 발송 API, the
메시지 단건 조회 API and the 메시지 리스트 조회 API.

Sending (`POST /alimtalk/v2.2/appkeys/{appkey}/messages`): it answers as the documented gateway does: HTTP 200
with `header.isSuccessful/resultCode/resultMessage` even on errors, `message.requestId` and one
`sendResults[]` row per recipient. It checks the path (appkey), the X-Secret-Key, the body (senderKey of 40
characters, templateCode of 1-20, recipientList of 1-1,000 with recipientNo and templateParameter, buttons as
the substitution API takes them) and honours X-NC-API-IDEMPOTENCY-KEY (the same key within 10 minutes of an
accepted call: -1005, nothing delivered).

Kakao's delivery results (발송 결과 코드): numbers in `not_kakao_users` get 3019, in `blocked_users` 3020,
and `delivery_codes` maps any number to any Kakao result code; every other number gets 1000 (delivered).
- By default (`sync_failures = False`), as the real gateway: the send answer accepts such a recipient
  (`sendResults[].resultCode` 0, header 0), and the result comes from the query API.
- With `sync_failures = True` (the fake's earlier behaviour): the send answer carries the Kakao code in that
  recipient's `sendResults` row, the recipient is not accepted and cannot be queried.
`recipient_codes` maps a number to a code the send answer gives for that recipient (either mode, e.g. -4019);
such a recipient is not accepted. When no recipient of a call is accepted, the header is -1031.

Querying (`GET /alimtalk/v2.2/appkeys/{appkey}/messages/{requestId}/{recipientSeq}`, X-Secret-Key): every
accepted recipient is remembered in `results` ((requestId, recipientSeq) -> `AcceptedRecipient`: number,
template, parameters, grouping key, Kakao's result). The answer has the documented `message` fields. Until
`result_delay_s` has passed since the call was accepted, `messageStatus` is "READY" with no resultCode (the
v2.2 guide documents READY for mass-message recipients only; the single query lists COMPLETED, FAILED and
CANCEL); after it, "COMPLETED" with resultCode "1000" / resultCodeName "성공", or "FAILED" with the Kakao code
("3019", ...) and its name. An unknown requestId/recipientSeq is answered with header -1016. Scripted
behaviours (5xx, 429, timeout, a header result code) apply to queries as to sends, in arrival order.

Listing (`GET /alimtalk/v2.2/appkeys/{appkey}/messages?...`, X-Secret-Key): answers from the same record of
accepted recipients (a call whose answer the client never got, the "timeout" behaviour, included; refused
recipients are not in it), with the documented query parameters: requestId, or startRequestDate and
endRequestDate, or startCreateDate and endCreateDate ("yyyy-MM-dd HH:mm", Korean time, at most 30 days
apart; a message's request and create dates are both its acceptance time), and the filters recipientNo,
senderKey, templateCode, senderGroupingKey, recipientGroupingKey (exact), messageStatus (COMPLETED, FAILED,
CANCEL; a READY message matches none), resultCode (MRC01, MRC02), createUser; pageNum (default 1) and
pageSize (default 15, at most 1,000). Messages older than 90 days are not listed. The answer is the
documented `messageSearchResultResponse` with `messages` (oldest first) and `totalCount`. A missing condition,
a malformed date, a range over 30 days or a bad page is refused with result code 4 (파라미터 유효성 검증
실패) and a violation; an undocumented parameter is a violation. List requests are recorded in
`list_queries` (their `path` includes the query string). Scripted behaviours apply as to the other calls.

`delivered` lists (number, recipientGroupingKey) of each recipient that Kakao delivers (result 1000; the hub's
adapter sets the grouping key to the delivery id), appended when the send call is accepted (not after
`result_delay_s`). A recipient whose Kakao result is a failure
(not_kakao_users, blocked_users, delivery_codes other than 1000) is never in `delivered`, in either mode; in
the default mode it is in `results`. `received` holds the accepted send calls, `queries` the query requests.

Where the fake is stricter than the documented gateway (resendParameter present, button keys the
substitution API does not list), it records a violation; the button case is also refused with -2018.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.fakes._server import Answer, Behaviour, FakeGateway, Received

SENDER_KEY = "0123456789abcdef0123456789abcdef01234567"
IDEMPOTENCY_WINDOW_S = 600.0
MAX_RECIPIENTS = 1000
BUTTON_KEYS = frozenset({"ordering", "chatExtra", "chatEvent", "target"})
DELIVERED = 1000
QUERY_PATH = re.compile(r"/alimtalk/v2\.2/appkeys/([^/]+)/messages/([^/?]+)/([^/?]+)")
MESSAGES_PATH = re.compile(r"/alimtalk/v2\.2/appkeys/([^/]+)/messages")
KST = timezone(timedelta(hours=9), "KST")
LIST_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
LIST_MAX_RANGE_S = 30 * 86400.0
LIST_RETENTION_S = 90 * 86400.0
LIST_MAX_PAGE_SIZE = 1000
LIST_DEFAULT_PAGE_SIZE = 15
LIST_PARAMS = frozenset({
    "requestId", "startRequestDate", "endRequestDate", "startCreateDate", "endCreateDate", "recipientNo", "senderKey",
    "templateCode", "senderGroupingKey", "recipientGroupingKey", "messageStatus", "resultCode", "createUser",
    "pageNum", "pageSize",
})

MESSAGES = {
    0: "SUCCESS",
    4: "Invalid parameter.",
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
    -1016: "It is not found any messages responding with that requestId or recipientSeq.",
    1000: "성공",
    3018: "메시지를 전송할 수 없음",
    3019: "메시지를 발송할 수 없음: 카카오톡 유저가 아님",
    3020: "메시지를 발송할 수 없음: 알림톡 수신 차단",
    3021: "메시지를 발송할 수 없음: 카카오톡 최소 버전 미지원",
}


def _header(code: int, message: str | None = None) -> dict[str, Any]:
    return {"resultCode": code, "resultMessage": message or MESSAGES.get(code, "error"), "isSuccessful": code == 0}


def _date(at: float) -> str:
    """The gateway's dates are Korean time."""
    return datetime.fromtimestamp(at, KST).strftime("%Y-%m-%d %H:%M:%S")


def _minute(at: float) -> datetime:
    """The minute (Korean time) of a moment, as the list query's "yyyy-MM-dd HH:mm" compares it."""
    return datetime.fromtimestamp(at, KST).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class AcceptedRecipient:
    """One recipient the fake accepted, as the query API reports it."""

    request_id: str
    recipient_seq: int
    number: str
    template_code: str
    params: dict[str, str]
    grouping_key: str | None
    accepted_at: float  # the fake's clock
    kakao_code: int  # Kakao's result once final: 1000 delivered, else a failure (3019, ...)


@dataclass
class FakeNhnAlimtalk(FakeGateway):
    appkey: str = "test-appkey"
    secret_key: str = "test-secret"
    sender_key: str = SENDER_KEY
    templates: Mapping[str, set[str]] | None = None  # template code -> its variables; None: any template
    not_kakao_users: set[str] = field(default_factory=set)
    blocked_users: set[str] = field(default_factory=set)
    recipient_codes: dict[str, int] = field(default_factory=dict)  # send-answer codes, either mode
    delivery_codes: dict[str, int] = field(default_factory=dict)  # Kakao results (query, or send if sync_failures)
    sync_failures: bool = False
    result_delay_s: float = 0.0
    ready_queries: int = 0  # the first n queries of each recipient answer READY, however late they come
    clock: Callable[[], float] = time.time
    results: dict[tuple[str, int], AcceptedRecipient] = field(default_factory=dict)
    queries: list[Received] = field(default_factory=list)
    list_queries: list[Received] = field(default_factory=list)
    _keys: dict[str, float] = field(default_factory=dict)
    _asked: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/alimtalk/v2.2/appkeys/{self.appkey}/messages"

    def handle(self, rec: Received, behaviour: Behaviour) -> Answer:
        path, _, query = rec.path.partition("?")
        if rec.method == "GET" and QUERY_PATH.fullmatch(path):
            return self._query(rec, behaviour)
        if rec.method == "GET" and MESSAGES_PATH.fullmatch(path):
            return self._list(rec, path, query, behaviour)
        if rec.method != "POST" or not MESSAGES_PATH.fullmatch(path):
            return self._refuse(rec, -9998, status=404)
        if path != self.path:
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
            results, accepted, delivered = [], [], []
            for seq, recipient in enumerate(rec.body["recipientList"], start=1):
                number = recipient["recipientNo"]
                grouping = recipient.get("recipientGroupingKey")
                code = self._send_code(number)
                results.append({"recipientSeq": seq, "recipientNo": number, "resultCode": code,
                                "resultMessage": MESSAGES.get(code, "error"), "recipientGroupingKey": grouping})
                if code != 0:
                    continue
                kakao = self._kakao_code(number)
                accepted.append(AcceptedRecipient(request_id, seq, number, rec.body["templateCode"],
                                                  dict(recipient["templateParameter"]), grouping, now, kakao))
                if kakao == DELIVERED:
                    delivered.append((number, str(grouping or "")))
            header = _header(0) if accepted else _header(-1031)
            if accepted:
                if key:
                    self._keys[key] = now
                self.results.update({(a.request_id, a.recipient_seq): a for a in accepted})
                self.accept(rec, delivered)
        return 200, {}, {"header": header, "message": {"requestId": request_id, "senderGroupingKey": None,
                                                       "sendResults": results}}

    def _kakao_code(self, number: str) -> int:
        """Kakao's delivery result for a number: 1000, or the failure it is configured with."""
        if number in self.delivery_codes:
            return self.delivery_codes[number]
        if number in self.not_kakao_users:
            return 3019
        if number in self.blocked_users:
            return 3020
        return DELIVERED

    def _send_code(self, number: str) -> int:
        """The send answer's code for a recipient: 0 accepted; with sync_failures, Kakao's failure too."""
        if number in self.recipient_codes:
            return self.recipient_codes[number]
        if self.sync_failures and (kakao := self._kakao_code(number)) != DELIVERED:
            return kakao
        return 0

    # -- 메시지 단건 조회

    def _query(self, rec: Received, behaviour: Behaviour) -> Answer:
        with self.lock:
            self.queries.append(rec)
        match = QUERY_PATH.fullmatch(rec.path)
        assert match is not None
        appkey, request_id, seq = unquote(match[1]), unquote(match[2]), match[3]
        if appkey != self.appkey:
            return self._refuse(rec, -1000)
        if rec.headers.get("x-secret-key") != self.secret_key:
            return self._refuse(rec, -1001)
        if isinstance(behaviour, int):
            return 200, {}, {"header": _header(behaviour), "message": None}
        key = (request_id, int(seq)) if seq.isdigit() else None
        with self.lock:
            found = self.results.get(key) if key else None
            if key is not None and found is not None:
                self._asked[key] = self._asked.get(key, 0) + 1
            early = key is not None and self._asked.get(key, 0) <= self.ready_queries
        if found is None:
            return 200, {}, {"header": _header(-1016), "message": None}
        return 200, {}, {"header": _header(0), "message": self._query_message(found, early)}

    def _status(self, r: AcceptedRecipient, early: bool = False) -> tuple[str, str | None, str | None, str | None]:
        """(messageStatus, resultCode, resultCodeName, receiveDate) of an accepted recipient now."""
        final_at = r.accepted_at + self.result_delay_s
        if early or self.clock() < final_at:
            return "READY", None, None, None
        if r.kakao_code == DELIVERED:
            return "COMPLETED", str(DELIVERED), MESSAGES[DELIVERED], _date(final_at)
        return "FAILED", str(r.kakao_code), MESSAGES.get(r.kakao_code, "실패"), None

    def _query_message(self, r: AcceptedRecipient, early: bool = False) -> dict[str, Any]:
        """The documented `message` of the single-message query for one accepted recipient."""
        status, code, name, received = self._status(r, early)
        return {
            "requestId": r.request_id, "recipientSeq": r.recipient_seq, "plusFriendId": "@yangpyeong",
            "senderKey": self.sender_key, "templateCode": r.template_code, "recipientNo": r.number,
            "content": None, "templateTitle": None, "templateSubtitle": None, "templateExtra": None,
            "templateAd": None, "requestDate": _date(r.accepted_at),
            "receiveDate": received,
            "createDate": _date(r.accepted_at), "resendStatus": "RSC01", "resendStatusName": "대체 발송 미대상",
            "resendResultCode": None, "resendRequestId": None, "messageStatus": status, "resultCode": code,
            "resultCodeName": name, "createUser": None, "buttons": [], "messageOption": None,
            "senderGroupingKey": None, "recipientGroupingKey": r.grouping_key,
        }  # fmt: skip

    # -- 메시지 리스트 조회

    def _list(self, rec: Received, path: str, query: str, behaviour: Behaviour) -> Answer:
        with self.lock:
            self.list_queries.append(rec)
        if path != self.path:
            return self._refuse(rec, -1000)
        if rec.headers.get("x-secret-key") != self.secret_key:
            return self._refuse(rec, -1001)
        if isinstance(behaviour, int):
            return 200, {}, {"header": _header(behaviour), "messageSearchResultResponse": None}
        params = {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}
        if extra := sorted(set(params) - LIST_PARAMS):
            self.violation(f"list query parameters not documented: {extra}")
        window = self._list_window(params)
        if isinstance(window, str):
            return self._refuse(rec, 4, window)
        page = self._list_page(params)
        if isinstance(page, str):
            return self._refuse(rec, 4, page)
        page_num, page_size = page
        with self.lock:
            ordered = sorted(self.results.values(), key=lambda r: (r.accepted_at, r.request_id, r.recipient_seq))
            found = [r for r in ordered if self._listed(r, params, window)]
        messages = [self._list_message(r) for r in found[(page_num - 1) * page_size : page_num * page_size]]
        return 200, {}, {"header": _header(0),
                         "messageSearchResultResponse": {"messages": messages, "totalCount": len(found)}}

    def _list_window(self, params: dict[str, str]) -> tuple[datetime, datetime] | str | None:
        """The date range asked for (request or create date: the fake has one date), None for a requestId
        query, or why the gateway refuses it."""
        for start_name, end_name in (("startRequestDate", "endRequestDate"), ("startCreateDate", "endCreateDate")):
            if start_name not in params and end_name not in params:
                continue
            bounds = []
            for name in (start_name, end_name):
                value = params.get(name, "")
                if not LIST_DATE.fullmatch(value):
                    return f"The '{name}' must be yyyy-MM-dd HH:mm, not {value!r}."
                try:
                    bounds.append(datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=KST))
                except ValueError:
                    return f"The '{name}' is not a date: {value!r}."
            start, end = bounds
            if end < start:
                return f"The '{end_name}' is before the '{start_name}'."
            if (end - start).total_seconds() > LIST_MAX_RANGE_S:
                return "The range of the request date must be at most 30 days."
            return start, end
        if params.get("requestId"):
            return None
        return ("The 'requestId', or 'startRequestDate' and 'endRequestDate', or 'startCreateDate' and 'endCreateDate' "
                "must not be blank.")

    @staticmethod
    def _list_page(params: dict[str, str]) -> tuple[int, int] | str:
        try:
            page_num = int(params.get("pageNum", "1"))
            page_size = int(params.get("pageSize", str(LIST_DEFAULT_PAGE_SIZE)))
        except ValueError:
            return "The 'pageNum' and 'pageSize' must be integers."
        if page_num < 1:
            return "The 'pageNum' must be at least 1."
        if not 1 <= page_size <= LIST_MAX_PAGE_SIZE:
            return f"The 'pageSize' must be between 1 and {LIST_MAX_PAGE_SIZE}."
        return page_num, page_size

    def _listed(self, r: AcceptedRecipient, params: dict[str, str], window: tuple[datetime, datetime] | None) -> bool:
        if self.clock() - r.accepted_at > LIST_RETENTION_S:
            return False
        if window is not None and not window[0] <= _minute(r.accepted_at) <= window[1]:
            return False
        status, _, _, _ = self._status(r)
        result = {"COMPLETED": "MRC01", "FAILED": "MRC02"}.get(status)
        fields: dict[str, str | None] = {
            "requestId": r.request_id, "recipientNo": r.number, "senderKey": self.sender_key,
            "templateCode": r.template_code, "senderGroupingKey": None, "recipientGroupingKey": r.grouping_key,
            "messageStatus": status, "resultCode": result, "createUser": None,
        }  # fmt: skip
        return all(params[name] == value for name, value in fields.items() if name in params)

    def _list_message(self, r: AcceptedRecipient) -> dict[str, Any]:
        """One documented `messages[]` row of the list query."""
        status, code, name, received = self._status(r)
        return {
            "requestId": r.request_id, "recipientSeq": r.recipient_seq, "plusFriendId": "@yangpyeong",
            "senderKey": self.sender_key, "templateCode": r.template_code, "recipientNo": r.number, "content": None,
            "requestDate": _date(r.accepted_at), "createDate": _date(r.accepted_at), "receiveDate": received,
            "resendStatus": "RSC01", "resendStatusName": "대체 발송 미대상", "messageStatus": status,
            "resultCode": code, "resultCodeName": name, "createUser": None, "buttons": [],
            "senderGroupingKey": None, "recipientGroupingKey": r.grouping_key,
        }  # fmt: skip

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
