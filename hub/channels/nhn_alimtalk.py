"""KakaoTalk AlimTalk through NHN Cloud Notification (KakaoTalk Bizmessage, AlimTalk API v2.2).

One call is the 치환 발송 API (`POST /alimtalk/v2.2/appkeys/{appkey}/messages`): the registered template code
and, per recipient, the template parameters; Kakao fills in the registered text and buttons. The gateway
answers HTTP 200 even when it refuses: `header.isSuccessful` / `header.resultCode` for the call, and
`message.sendResults[]` with a result code per recipient.

Idempotency: every call carries `X-NC-API-IDEMPOTENCY-KEY`: the delivery id for a call of one request, else a
hash of the call's sorted delivery ids. The gateway refuses the same key within 10 minutes with -1005, which
this adapter reports as sent ("duplicate request"). After 10 minutes the gateway forgets the key, so a repeat
that late is sent again.

대체발송 is the hub's: no `resendParameter` is sent. Every PermanentError raised here carries
`fallback_ok=True`, whatever the cause (recipient not on KakaoTalk, channel blocked, our template refused,
...), so the sender may try the request's SMS rendition; AlimTalk never carries advertising, so no law
stands in the way.

Per-recipient outcomes: the send API's `sendResults[].resultCode` says whether the gateway *accepted* the
message for that recipient. Whether Kakao then delivered it (3018 not deliverable, 3019 not a KakaoTalk user,
3020 AlimTalk blocked, ...) is documented as a *delivery result* (발송 결과 코드), reported later by the
message query API and webhooks; this adapter maps those codes too when a gateway returns them in
`sendResults`, but does not poll for them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx

from hub.channels._http import HttpGatewayChannel, Outcome, phone_digits, retry_after_s
from hub.channels.base import DeliveryResult
from hub.delivery import DeliveryRequest
from hub.errors import ChannelError, PermanentError, TransientError
from hub.rendering import KakaoContent

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 1000  # recipientList limit of one call
IDEMPOTENCY_KEY_CHARS = 40
DUPLICATE_DETAIL = "duplicate request (idempotency key reused)"

ResultKind = Literal["ok", "transient", "permanent", "duplicate"]

# NHN Cloud result codes (header.resultCode and sendResults[].resultCode), from the KakaoTalk Bizmessage
# error-code page (API 응답 코드), plus Kakao's delivery result codes (발송 결과 코드) from the same page.
# A code not listed here: 0 is success, anything else a PermanentError.
RESULT_CODES: dict[int, ResultKind] = {
    0: "ok",
    -1000: "permanent",  # invalid appkey
    -1001: "permanent",  # invalid secretKey
    -1003: "permanent",  # invalid SMS sender number (resendSendNo)
    -1005: "duplicate",  # the same X-NC-API-IDEMPOTENCY-KEY within 10 minutes: the call was already made
    -1006: "permanent",  # the sender profile has no sender key
    -1014: "permanent",  # sender profile not activated
    -1017: "transient",  # daily sending volume exceeded: passes the next day
    -1027: "permanent",  # sender profile blocked
    -1028: "permanent",  # template variables differ from the template by more than 14 characters
    -1031: "permanent",  # every recipient of the call failed (see sendResults)
    -2017: "permanent",  # no such sender profile
    -2018: "permanent",  # invalid button parameter
    -2019: "permanent",  # substituted text longer than 1,300 characters
    -3003: "permanent",  # no such template
    -3004: "permanent",  # template parameter error
    -3005: "permanent",  # template not approved
    -3010: "permanent",  # content does not match the registered template
    -3011: "permanent",  # buttons do not match the registered template
    -3049: "permanent",  # template parameters do not match the template
    -4019: "permanent",  # invalid recipient number
    -5000: "permanent",  # invalid recipient number
    -7000: "transient",  # the vendor's (Kakao's) API failed
    -9999: "transient",  # system error
    # Kakao delivery results (발송 결과 코드)
    1000: "ok",
    3008: "permanent",  # phone number error
    3018: "permanent",  # cannot deliver (not an active KakaoTalk user, number moved to another phone, ...)
    3019: "permanent",  # not a KakaoTalk user
    3020: "permanent",  # the recipient blocked AlimTalk
    3021: "permanent",  # KakaoTalk version too old
}


def result_kind(code: int) -> ResultKind:
    return RESULT_CODES.get(code, "ok" if code == 0 else "permanent")


def idempotency_key(delivery_ids: list[str]) -> str:
    """The delivery id for a call of one request; else the first 40 hex digits of sha256 of the sorted ids."""
    if len(delivery_ids) == 1:
        return delivery_ids[0]
    joined = "\n".join(sorted(delivery_ids)).encode()
    return hashlib.sha256(joined).hexdigest()[:IDEMPOTENCY_KEY_CHARS]


def recipient_buttons(buttons: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The per-recipient `buttons` of the 치환 발송 API.

    For this API the buttons themselves (type, name, links) are the registered template's; the request may
    only give, by `ordering` (1-based), what the v2.2 guide lists: `chatExtra`, `chatEvent`, `target`. Our
    template's type/name/url_mobile/url_pc are checked locally and are not sent (they are `linkMo`/`linkPc`
    of the 전문 발송 API, which this adapter does not use)."""
    out: list[dict[str, Any]] = []
    for ordering, button in enumerate(buttons, start=1):
        extra = {api: button[ours] for ours, api in (("chat_extra", "chatExtra"), ("chat_event", "chatEvent"),
                                                     ("target", "target")) if button.get(ours)}
        out.append({"ordering": ordering, **extra})
    return out


def _permanent(message: str) -> PermanentError:
    return PermanentError(message, fallback_ok=True)


@dataclass(frozen=True)
class _Recipient:
    template_code: str
    entry: dict[str, Any]


class NhnAlimtalkChannel(HttpGatewayChannel[_Recipient]):
    channel = "kakao"
    provider = "nhn-alimtalk"
    idempotent = True  # within the gateway's 10-minute idempotency window
    max_batch: ClassVar[int] = MAX_RECIPIENTS

    def __init__(self, *, base_url: str, appkey: str, secret_key: str, sender_key: str,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 10.0) -> None:
        super().__init__(client=client, timeout_s=timeout_s)
        self.url = f"{base_url.rstrip('/')}/alimtalk/v2.2/appkeys/{appkey}/messages"
        self.secret_key, self.sender_key = secret_key, sender_key

    def _prepare(self, request: DeliveryRequest) -> _Recipient:
        content = request.content
        if not isinstance(content, KakaoContent):
            raise _permanent(f"a kakao delivery carries {content.kind} content")
        try:
            number = phone_digits(request.to)
        except PermanentError as e:
            raise _permanent(str(e)) from e
        entry: dict[str, Any] = {"recipientNo": number, "templateParameter": dict(content.parameters)}
        if content.buttons:
            entry["buttons"] = recipient_buttons(content.buttons)
        entry["recipientGroupingKey"] = request.event_id[:100]
        return _Recipient(content.template_code, entry)

    def _group_key(self, request: DeliveryRequest, prepared: _Recipient) -> Hashable:
        return prepared.template_code

    async def _call(self, items: list[tuple[DeliveryRequest, _Recipient]]) -> list[Outcome]:
        body = {
            "senderKey": self.sender_key,
            "templateCode": items[0][1].template_code,
            "recipientList": [prepared.entry for _, prepared in items],
        }
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "X-Secret-Key": self.secret_key,
            "X-NC-API-IDEMPOTENCY-KEY": idempotency_key([request.delivery_id for request, _ in items]),
        }
        response = await self._post(self.url, json.dumps(body, ensure_ascii=False).encode(), headers)
        return self._outcomes(response, len(items))

    def _outcomes(self, response: httpx.Response, count: int) -> list[Outcome]:
        status = response.status_code
        if status == 429:
            raise TransientError(f"{self.provider}: HTTP 429 too many requests",
                                 retry_after_s=retry_after_s(response.headers.get("Retry-After")))
        if status >= 500:
            raise TransientError(f"{self.provider}: HTTP {status}")
        answer = _json_object(response)
        header = _mapping(answer.get("header"))
        if not 200 <= status < 300:
            raise self._error("permanent", None, header.get("resultMessage") or f"HTTP {status}")
        try:
            code, successful = int(header["resultCode"]), bool(header["isSuccessful"])
        except (KeyError, TypeError, ValueError) as e:
            # the call may have been accepted: a retry within 10 minutes is answered -1005
            raise TransientError(f"{self.provider}: unreadable answer to HTTP {status}") from e
        message = _mapping(answer.get("message"))
        results = message.get("sendResults")
        results = results if isinstance(results, list) else []
        if not successful:
            kind = result_kind(code)
            if kind == "duplicate":
                return [DeliveryResult(self.provider, None, DUPLICATE_DETAIL) for _ in range(count)]
            if code != -1031 or not results:  # the call failed as a whole
                raise self._error(kind, code, header.get("resultMessage"))
        return self._per_recipient(results, count, message.get("requestId"))

    def _per_recipient(self, results: list[Any], count: int, request_id: str | None) -> list[Outcome]:
        """One outcome per recipient of the call, matched by recipientSeq (1-based), else by position."""
        rows = [r for r in results if isinstance(r, Mapping)][:count]
        seqs = [r.get("recipientSeq") for r in rows]
        by_seq = all(isinstance(s, int) and 1 <= s <= count for s in seqs) and len(set(seqs)) == len(seqs)
        matched: list[Mapping[str, Any] | None] = [None] * count
        for i, row in enumerate(rows):
            matched[row["recipientSeq"] - 1 if by_seq else i] = row
        outcomes: list[Outcome] = []
        for maybe in matched:
            if maybe is None:  # the call was accepted, and nothing says this recipient was not
                outcomes.append(DeliveryResult(self.provider, request_id, "accepted (no result for this recipient)"))
                continue
            row = maybe
            try:
                code = int(row.get("resultCode", 0))
            except (TypeError, ValueError):
                code = -1
            kind = result_kind(code)
            ref = f"{request_id}/{row.get('recipientSeq')}" if request_id else None
            if kind == "ok":
                outcomes.append(DeliveryResult(self.provider, ref))
            elif kind == "duplicate":
                outcomes.append(DeliveryResult(self.provider, ref, DUPLICATE_DETAIL))
            else:
                outcomes.append(self._error(kind, code, row.get("resultMessage")))
        return outcomes

    def _error(self, kind: ResultKind, code: int | None, message: object) -> ChannelError:
        reason = f"{self.provider}: " + (f"result {code}" if code is not None else "refused") + (
            f" ({message})" if message else "")
        if kind == "transient":
            return TransientError(reason)
        return _permanent(reason)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
