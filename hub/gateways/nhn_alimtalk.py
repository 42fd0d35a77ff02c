"""KakaoTalk AlimTalk through NHN Cloud Notification (KakaoTalk Bizmessage, AlimTalk API v2.2).

(Longer than the ~400 lines the project aims for, on purpose: the module is the provider's one seam, its three
APIs (send, the per-message query, the list query) share one signing, one rate limiter and one result-code table,
and a third of it is that table and the protocol notes below; split, a reader would need all the parts at once.)

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
message query API and webhooks. This adapter maps those codes when a gateway returns them in `sendResults`,
and `delivery_results` asks for them afterwards:

- a send the gateway accepted returns `DeliveryResult.provider_ref = "{requestId}#{recipientSeq}"` (see
  `make_ref`); a duplicate (-1005) has no ref, as the gateway does not say which earlier call it was;
- `delivery_results(refs)` calls the single-message query API (메시지 단건 조회,
  `GET /alimtalk/v2.2/appkeys/{appkey}/messages/{requestId}/{recipientSeq}`) once per ref, at most
  `QUERY_CONCURRENCY` at a time, each under the adapter's rate limiter, and answers per ref a
  `DeliveryOutcome`: "pending" (ask again later), "delivered", or "failed" (with `fallback_ok`).

What the query answer means (field names as documented: `message.messageStatus` "요청 상태( COMPLETED ->
성공, FAILED -> 실패, CANCEL -> 취소 )", `message.resultCode` "수신 결과 코드" (a String), and
`message.resultCodeName` "수신 결과 코드명"):

- COMPLETED: delivered, unless `resultCode` is a failure code of `RESULT_CODES` (then failed, fallback_ok);
- FAILED: failed with Kakao's code (3018, 3019, 3020, ...), fallback_ok=True;
- CANCEL: failed, fallback_ok=False (someone cancelled it on purpose: no SMS in its place);
- any other or no `messageStatus` (the gateway or Kakao has not finished: the v2.2 guide documents READY for
  mass-message recipients only): pending;
- header -1016 (no message for that requestId/recipientSeq), -2028 (invalid requestId), -4017 (older than 90
  days), or a ref that is not "{requestId}#{seq}": failed, fallback_ok=False;
- no answer, a timeout, HTTP 5xx or 429, or any other refusal (appkey, secret key, -9999, ...): pending, with
  the reason, so that the caller asks again later. The caller needs its own deadline for refs that stay
  pending.

Finding deliveries again (`find_sent`): every recipient carries `recipientGroupingKey` = its delivery id
(documented "수신자 그룹핑 키(최대 100자)"; hub delivery ids are 32 characters). When a process died after the
gateway accepted a call but before the hub recorded it, the delivery is "in doubt", and a re-send may go in a
call of another composition, i.e. with another idempotency key, which the gateway would accept again.
`find_sent(delivery_ids, since=...)` asks the documented message list query (메시지 리스트 조회,
`GET /alimtalk/v2.2/appkeys/{appkey}/messages`) which of them the gateway already has:

- one query per distinct delivery id: `startRequestDate` / `endRequestDate` ("yyyy-MM-dd HH:mm", read as
  Korean time: the guide names no zone), `senderKey` (ours), `recipientGroupingKey` (the delivery id),
  `pageNum`, `pageSize` (1,000, the documented maximum); `QUERY_CONCURRENCY` at a time, each page under one
  slot of the rate limiter. The window runs from `since` to now, widened by `LIST_WINDOW_MARGIN` each side
  for clock skew, cut into windows of at most 30 days ("발송 요청 일시의 범위는 최대 30일입니다."); `since`
  may not be older than 90 days ("90일 이전 발송 요청 데이터는 조회되지 않습니다.": ValueError);
- a delivery counts as sent when a listed message carries its grouping key (a row without the field is
  trusted to the filter), whatever its `messageStatus`: the list holds what the gateway accepted, and a
  message Kakao fails later (FAILED, 3019, ...) or someone cancels (CANCEL) is the result checker's
  (`delivery_results`), not a reason to send it again;
- a query that is not answered (timeout, unreachable, HTTP 5xx, a 429 longer than the inline wait, an
  unreadable answer, a refusal such as -1001, or more than `LIST_MAX_PAGES` pages) leaves the delivery
  unknown: `find_sent` then raises TransientError (after the first such failure it asks nothing more), so
  the caller tries again later instead of risking a duplicate.

The list answer also names each message's requestId/recipientSeq, but `find_sent` answers ids only: a
delivery found this way has no provider_ref for `delivery_results`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlencode

import httpx

from hub.core.delivery import DeliveryRequest
from hub.core.errors import ChannelError, PermanentError, TransientError
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.time import KST, as_utc
from hub.gateways._http import HttpGatewayChannel, Outcome, json_object, phone_digits, raise_if_busy, retry_after_s
from hub.gateways.base import DeliveryResult
from hub.pipeline.ports import FallsBack, ResultSource, SentFinder

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 1000  # recipientList limit of one call
IDEMPOTENCY_KEY_CHARS = 40
DUPLICATE_DETAIL = "duplicate request (idempotency key reused)"
QUERY_CONCURRENCY = 10  # delivery_results, find_sent: queries in flight at once (the rate limiter still applies)
REF_SEPARATOR = "#"
GROUPING_KEY_CHARS = 100  # recipientGroupingKey: "수신자 그룹핑 키(최대 100자)"

# The message list query (메시지 리스트 조회), as documented
LIST_DATE_FORMAT = "%Y-%m-%d %H:%M"  # "yyyy-MM-dd HH:mm"
LIST_PAGE_SIZE = 1000  # pageSize "조회 건수(Default: 15, Max: 1000)"
LIST_MAX_RANGE = timedelta(days=30)  # "발송 요청 일시의 범위는 최대 30일입니다."
LIST_RETENTION = timedelta(days=90)  # "90일 이전 발송 요청 데이터는 조회되지 않습니다."
LIST_WINDOW_MARGIN = timedelta(minutes=10)  # clock skew between the hub and the gateway, each side
LIST_MAX_PAGES = 10  # one delivery id is one message (a few if sent twice): more pages mean a filter ignored

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
    3005: "ok",  # sent, receipt not confirmed: Kakao keeps it 3 days for the phone to fetch (no SMS on top)
    3008: "permanent",  # phone number error
    3018: "permanent",  # cannot deliver (not an active KakaoTalk user, number moved to another phone, ...)
    3019: "permanent",  # not a KakaoTalk user
    3020: "permanent",  # the recipient blocked AlimTalk
    3021: "permanent",  # KakaoTalk version too old
}


# Documented unknown-message answers of the query API: the ref will never be found.
UNKNOWN_MESSAGE_CODES = frozenset({
    -1016,  # "It is not found any messages responding with that requestId or recipientSeq."
    -2028,  # "The `requestId` is invalid"
    -4017,  # "You can not search the messages before 90 days."
})
# The list query's documented resultCode filter values ("MRC01 -> 성공 MRC02 -> 실패"), read if a query answers
# with them instead of a numeric code.
RESULT_CODE_NAMES: dict[str, ResultKind] = {"MRC01": "ok", "MRC02": "permanent"}


def result_kind(code: int) -> ResultKind:
    return RESULT_CODES.get(code, "ok" if code == 0 else "permanent")


@dataclass(frozen=True)
class DeliveryOutcome:
    """What Kakao made of one accepted AlimTalk message, from the message query API.

    `state` "pending": not final yet, or the query did not answer (ask again later); `message` says why.
    "delivered": Kakao delivered it (`code` "1000", or no code with messageStatus COMPLETED).
    "failed": it will not be delivered; `code`/`message` are Kakao's (resultCode / resultCodeName) or the
    gateway's, and `fallback_ok` says whether the hub may send the SMS rendition instead."""

    state: Literal["pending", "delivered", "failed"]
    code: str | None = None
    message: str | None = None
    fallback_ok: bool = False


def make_ref(request_id: str, recipient_seq: int | str) -> str:
    """The provider_ref of one accepted recipient: "{requestId}#{recipientSeq}"."""
    return f"{request_id}{REF_SEPARATOR}{recipient_seq}"


def parse_ref(ref: str) -> tuple[str, int] | None:
    """"{requestId}#{recipientSeq}" -> (requestId, recipientSeq); None for anything else."""
    request_id, sep, seq = ref.rpartition(REF_SEPARATOR)
    if not sep or not request_id or not seq.isdigit() or int(seq) < 1:
        return None
    return request_id, int(seq)


def _code_kind(code: str) -> ResultKind:
    if code in RESULT_CODE_NAMES:
        return RESULT_CODE_NAMES[code]
    try:
        return result_kind(int(code))
    except ValueError:
        return "permanent"


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def list_windows(since: datetime, now: datetime) -> list[tuple[str, str]]:
    """(startRequestDate, endRequestDate) pairs, Korean time to the minute, that cover `since` to `now` (each
    widened by LIST_WINDOW_MARGIN, the start never older than 90 days), each at most 30 days long.
    A naive datetime raises. `since` older than 90 days is a ValueError: the gateway no longer lists it."""
    since, now = as_utc(since), as_utc(now)
    if since < now - LIST_RETENTION:
        raise ValueError(f"the message list query covers the last {LIST_RETENTION.days} days, not since {since}")
    oldest = _minute((now - LIST_RETENTION).astimezone(KST)) + timedelta(minutes=1)
    start = max(_minute((since - LIST_WINDOW_MARGIN).astimezone(KST)), oldest)
    end = _minute((now + LIST_WINDOW_MARGIN).astimezone(KST)) + timedelta(minutes=1)
    end = max(end, start + timedelta(minutes=1))
    windows: list[tuple[str, str]] = []
    while True:
        stop = min(start + LIST_MAX_RANGE, end)
        windows.append((start.strftime(LIST_DATE_FORMAT), stop.strftime(LIST_DATE_FORMAT)))
        if stop >= end:
            return windows
        start = stop


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


class NhnAlimtalkChannel(HttpGatewayChannel[_Recipient], SentFinder, ResultSource, FallsBack):
    channel = "kakao"
    fallback_channel = "sms"  # 대체발송: what Kakao cannot deliver goes as SMS/LMS (the request's fallback rendition)
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
        if len(request.delivery_id) > GROUPING_KEY_CHARS:  # find_sent could not find it again
            raise _permanent(f"a delivery id longer than {GROUPING_KEY_CHARS} characters")
        entry["recipientGroupingKey"] = request.delivery_id  # find_sent looks deliveries up by it
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
        raise_if_busy(self.provider, response)
        answer = json_object(response)
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
        for position, maybe in enumerate(matched, start=1):
            if maybe is None:  # the call was accepted, and nothing says this recipient was not
                ref = make_ref(request_id, position) if request_id else None  # recipientSeq numbers the list from 1
                outcomes.append(DeliveryResult(self.provider, ref, "accepted (no result for this recipient)"))
                continue
            row = maybe
            try:
                code = int(row.get("resultCode", 0))
            except (TypeError, ValueError):
                code = -1
            kind = result_kind(code)
            ref = make_ref(request_id, row["recipientSeq"] if by_seq else position) if request_id else None
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

    # -- delivery results (메시지 단건 조회)

    async def delivery_results(self, refs: Sequence[str]) -> dict[str, DeliveryOutcome]:
        """Kakao's result for each provider_ref this adapter returned: one DeliveryOutcome per distinct ref.

        One query per ref, `QUERY_CONCURRENCY` at a time, each holding one slot of the rate limiter (the same
        limiter as the sends). Never raises for a ref: a query that fails answers "pending" with the reason."""
        unique = list(dict.fromkeys(refs))
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def one(ref: str) -> DeliveryOutcome:
            async with gate:
                return await self._delivery_result(ref)

        outcomes = await asyncio.gather(*(one(ref) for ref in unique))
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
        logger.debug("delivery results provider=%s refs=%d %s", self.provider, len(unique), counts)
        return dict(zip(unique, outcomes, strict=True))

    async def _delivery_result(self, ref: str) -> DeliveryOutcome:
        parsed = parse_ref(ref) if isinstance(ref, str) else None  # type: ignore[redundant-expr]  # a ref read from a Kafka header may be anything
        if parsed is None:
            return DeliveryOutcome("failed", None, f"{self.provider}: not a reference of this adapter: {ref!r}")
        request_id, seq = parsed
        url = f"{self.url}/{quote(request_id, safe='')}/{seq}"
        headers = {"Content-Type": "application/json;charset=UTF-8", "X-Secret-Key": self.secret_key}
        try:
            async with self.limiter.slot(1):
                response = await self._get(url, headers)
        except TransientError as e:
            return DeliveryOutcome("pending", None, str(e))
        return self._query_outcome(ref, response)

    def _query_outcome(self, ref: str, response: httpx.Response) -> DeliveryOutcome:
        status = response.status_code
        if status == 429:
            wait = retry_after_s(response.headers.get("Retry-After"))
            if wait:
                self.limiter.block_for(wait)
            return DeliveryOutcome("pending", None, f"{self.provider}: HTTP 429 too many requests")
        if status >= 500:
            return DeliveryOutcome("pending", None, f"{self.provider}: HTTP {status}")
        answer = json_object(response)
        header = _mapping(answer.get("header"))
        try:
            code, successful = int(header["resultCode"]), bool(header["isSuccessful"])
        except (KeyError, TypeError, ValueError):
            return self._query_refused(ref, f"{self.provider}: unreadable answer to HTTP {status}")
        if code in UNKNOWN_MESSAGE_CODES:
            return DeliveryOutcome("failed", str(code), f"{self.provider}: result {code} ({header.get('resultMessage')})")
        if not successful or not 200 <= status < 300:
            return self._query_refused(ref, f"{self.provider}: query refused, HTTP {status}, result {code} "
                                            f"({header.get('resultMessage')})")
        message = answer.get("message")
        if not isinstance(message, Mapping):
            return DeliveryOutcome("pending", None, f"{self.provider}: no message in the answer")
        return self._message_outcome(message)

    def _query_refused(self, ref: str, reason: str) -> DeliveryOutcome:
        # the gateway said nothing about this message (wrong keys, system error, a proxy's page, ...)
        logger.warning("delivery result unknown provider=%s ref=%s reason=%s", self.provider, ref, reason)
        return DeliveryOutcome("pending", None, reason)

    def _message_outcome(self, message: Mapping[str, Any]) -> DeliveryOutcome:
        state = message.get("messageStatus")
        raw_code = message.get("resultCode")
        code = str(raw_code).strip() if raw_code not in (None, "") else None
        name = message.get("resultCodeName")
        name = str(name) if name not in (None, "") else None
        if state == "COMPLETED":
            if code is None or _code_kind(code) == "ok":
                return DeliveryOutcome("delivered", code, name)
            return DeliveryOutcome("failed", code, name, fallback_ok=True)
        if state == "FAILED":
            return DeliveryOutcome("failed", code, name or "failed", fallback_ok=True)
        if state == "CANCEL":
            return DeliveryOutcome("failed", code or "CANCEL", name or "cancelled", fallback_ok=False)
        return DeliveryOutcome("pending", code, f"messageStatus {state}" if state else "no messageStatus yet")


    # -- deliveries the gateway already accepted (메시지 리스트 조회)

    async def find_sent(self, delivery_ids: Sequence[str], *, since: datetime) -> set[str]:
        """Of these deliveries, those the gateway accepted (sent by this adapter since `since`).

        One list query per distinct delivery id (its recipientGroupingKey), `QUERY_CONCURRENCY` at a time, each
        page under one slot of the rate limiter. Raises TransientError when any delivery could not be asked
        about (timeout, 5xx, refusal, ...): its state is unknown, so ask again later rather than send it again.
        Raises ValueError when `since` is older than the 90 days the gateway lists."""
        unique = list(dict.fromkeys(delivery_ids))
        if not unique:
            return set()
        windows = list_windows(since, datetime.now(UTC))
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)
        failures: list[TransientError] = []

        async def one(delivery_id: str) -> bool | None:
            async with gate:
                if failures:  # the answer is already "unknown": ask no more
                    return None
                try:
                    for start, end in windows:
                        if await self._listed(delivery_id, start, end):
                            return True
                    return False
                except TransientError as e:
                    failures.append(e)
                    return None

        answers = await asyncio.gather(*(one(d) for d in unique))
        if failures:
            waits = [e.retry_after_s for e in failures if e.retry_after_s is not None]
            unasked = sum(1 for a in answers if a is None) - len(failures)
            raise TransientError(
                f"{self.provider}: could not tell whether {len(failures) + unasked} of {len(unique)} deliveries "
                f"were accepted ({failures[0]})", retry_after_s=max(waits) if waits else None)
        found = {d for d, answer in zip(unique, answers, strict=True) if answer}
        logger.info("find sent provider=%s deliveries=%d accepted=%d", self.provider, len(unique), len(found))
        return found

    async def _listed(self, delivery_id: str, start: str, end: str) -> bool:
        """Whether the list query shows a message with this grouping key sent between start and end."""
        headers = {"Content-Type": "application/json;charset=UTF-8", "X-Secret-Key": self.secret_key}
        seen = 0
        for page in range(1, LIST_MAX_PAGES + 1):
            query = urlencode({
                "startRequestDate": start, "endRequestDate": end, "senderKey": self.sender_key,
                "recipientGroupingKey": delivery_id, "pageNum": page, "pageSize": LIST_PAGE_SIZE,
            }, quote_via=quote)  # fmt: skip
            messages, total = await self._list_page(f"{self.url}?{query}", headers)
            # a row without the field is trusted to the filter; one with another key is not ours
            if any(m.get("recipientGroupingKey", delivery_id) == delivery_id for m in messages):
                return True
            seen += len(messages)
            if not messages or seen >= total:
                return False
        raise TransientError(f"{self.provider}: the list query for one delivery ran past {LIST_MAX_PAGES} pages")

    async def _list_page(self, url: str, headers: dict[str, str]) -> tuple[list[Mapping[str, Any]], int]:
        """One page of the list query, under the rate limit and a 429's pause, as for sends."""
        async def ask() -> tuple[list[Mapping[str, Any]], int]:
            return self._list_answer(await self._get(url, headers))

        return await self._limited(1, ask, "a list query")

    def _list_answer(self, response: httpx.Response) -> tuple[list[Mapping[str, Any]], int]:
        status = response.status_code
        raise_if_busy(self.provider, response)
        answer = json_object(response)
        header = _mapping(answer.get("header"))
        try:
            code, successful = int(header["resultCode"]), bool(header["isSuccessful"])
        except (KeyError, TypeError, ValueError) as e:
            raise TransientError(f"{self.provider}: unreadable answer to the list query, HTTP {status}") from e
        if not successful or not 200 <= status < 300:
            raise TransientError(f"{self.provider}: list query refused, HTTP {status}, result {code} "
                                 f"({header.get('resultMessage')})")
        body = answer.get("messageSearchResultResponse")
        listed = body.get("messages") if isinstance(body, Mapping) else None
        if not isinstance(body, Mapping) or not isinstance(listed, list):
            raise TransientError(f"{self.provider}: no messageSearchResultResponse.messages in the list answer")
        messages = [m for m in listed if isinstance(m, Mapping)]
        total = body.get("totalCount")
        return messages, total if isinstance(total, int) and not isinstance(total, bool) else len(messages)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
