"""What the HTTP gateway adapters share: the client's lifecycle, one POST or GET with httpx errors translated into
hub errors, Retry-After, phone numbers, and batches as a template method over provider calls.

A provider subclass implements `_prepare` (check one request, refuse it before any HTTP call), `_group_key`
(which requests may share one call) and `_call` (one API call for up to `max_batch` requests, returning one
outcome per request in order). `_send`, `batch_calls` (the calls of a batch, for the sender to make one at a
time and record as each answers) and `send_batch` (all of them) are built from them here.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from abc import abstractmethod
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Generic, TypeVar

import httpx

from hub.core.delivery import DeliveryRequest
from hub.core.errors import ChannelError, PermanentError, TransientError
from hub.gateways.base import ChannelAdapter, DeliveryResult
from hub.pipeline.ports import MAX_PAUSE_S, BatchCall, BatchGateway, BatchPlan, Outcome

logger = logging.getLogger(__name__)

Prepared = TypeVar("Prepared")

_PHONE = re.compile(r"\d{8,15}")


def retry_after_s(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now, at most MAX_PAUSE_S; None when absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_PAUSE_S)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when the body is not one."""
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def raise_if_busy(provider: str, response: httpx.Response) -> None:
    """429 and 5xx are the gateway's passing troubles: a TransientError (with Retry-After for 429)."""
    if response.status_code == 429:
        raise TransientError(f"{provider}: HTTP 429 too many requests",
                             retry_after_s=retry_after_s(response.headers.get("Retry-After")))
    if response.status_code >= 500:
        raise TransientError(f"{provider}: HTTP {response.status_code}")


def phone_digits(to: str) -> str:
    """'010-1234-5678' -> '01012345678'; anything else than 8-15 digits (after dropping '-' and spaces) is refused."""
    digits = re.sub(r"[\s-]", "", to)
    if not _PHONE.fullmatch(digits):
        raise PermanentError("the recipient is not a phone number (8-15 digits)")
    return digits



def copy_error(error: ChannelError) -> ChannelError:
    """A fresh exception like `error`, for each request of a call that failed as a whole."""
    if isinstance(error, TransientError):
        return TransientError(str(error), retry_after_s=error.retry_after_s)
    if isinstance(error, PermanentError):
        return PermanentError(str(error), fallback_ok=error.fallback_ok)
    return type(error)(str(error))


class HttpClient:
    """One `httpx.AsyncClient` to a gateway: injected (owned by whoever created it) or, when none is given,
    created at the first call and closed on `close`. Transport failures become TransientError."""

    provider: ClassVar[str]

    def __init__(self, *, client: httpx.AsyncClient | None, timeout_s: float) -> None:
        self._client = client
        self._owns_client = False
        self.timeout_s = timeout_s

    async def close(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client, self._owns_client = None, False

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
            self._owns_client = True
        return self._client

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """One POST; transport failures become TransientError (the gateway may or may not have the request)."""
        return await self._request("POST", url, headers, body)

    async def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """One GET; transport failures become TransientError."""
        return await self._request("GET", url, headers)

    async def _request(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> httpx.Response:
        try:
            return await self._http().request(method, url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.TimeoutException as e:
            raise TransientError(f"{self.provider}: no answer within {self.timeout_s:g} s ({type(e).__name__})") from e
        except httpx.TransportError as e:
            raise TransientError(f"{self.provider}: gateway unreachable ({type(e).__name__}: {e})") from e


class HttpGatewayChannel(HttpClient, ChannelAdapter, BatchGateway, Generic[Prepared]):
    """Base of the adapters that call an HTTP gateway with one `httpx.AsyncClient` (`HttpClient`), created on
    `start` (or the first send) when none is injected."""

    max_batch: ClassVar[int] = 1

    async def start(self) -> None:
        self._http()

    # -- the template method: one request, or many in as few calls as the provider allows

    async def _send(self, request: DeliveryRequest) -> DeliveryResult:
        # `send` has taken the rate limit and waits out short 429s around this
        (outcome,) = await self._call([(request, self._prepare(request))])
        if isinstance(outcome, ChannelError):
            raise outcome
        return outcome

    def batch_calls(self, requests: Sequence[DeliveryRequest]) -> BatchPlan:
        """The gateway calls that send these requests, in as few calls as allowed, not yet made: the sender makes
        them one at a time and records each call's outcomes as soon as it answers.

        A request this adapter refuses fails alone and is in no call; a call carries requests of one group key,
        at most `max_batch` of them and never more than the rate limit lets arrive in one second."""
        refused: dict[int, ChannelError] = {}
        groups: dict[Hashable, list[tuple[int, Prepared]]] = {}
        for i, request in enumerate(requests):
            try:
                if request.channel != self.channel:
                    raise PermanentError(f"{self.provider} sends {self.channel}, not {request.channel}")
                prepared = self._prepare(request)
            except ChannelError as e:
                self._log_failure(request, e)
                refused[i] = e
                continue
            groups.setdefault(self._group_key(request, prepared), []).append((i, prepared))
        size = min(self.max_batch, self.limiter.window_size)
        calls = [
            BatchCall(tuple(i for i, _ in chunk), functools.partial(self._make_call, [(requests[i], p) for i, p in chunk]))
            for members in groups.values()
            for chunk in (members[start : start + size] for start in range(0, len(members), size))
        ]
        return BatchPlan(refused, calls)

    async def send_batch(self, requests: Sequence[DeliveryRequest]) -> list[DeliveryResult | ChannelError]:
        """Send many requests in as few gateway calls as allowed; one outcome per request, in order.

        A request this adapter refuses, or one the gateway refuses for that recipient alone, fails alone; a call
        that fails as a whole (timeout, 5xx, 429, ...) fails every request it carried."""
        plan = self.batch_calls(requests)
        outcomes: dict[int, Outcome] = dict(plan.refused)
        started = time.perf_counter()
        for call in plan.calls:
            outcomes.update(zip(call.positions, await call.make(), strict=True))
        logger.debug("batch provider=%s requests=%d calls=%d in %.1f ms", self.provider, len(requests),
                     len(plan.calls), (time.perf_counter() - started) * 1000)
        return [outcomes[i] for i in range(len(requests))]

    async def _make_call(self, items: list[tuple[DeliveryRequest, Prepared]]) -> list[Outcome]:
        """One call under the provider's rate limit (a short 429 waited out in place, as `send` does); a call
        that fails as a whole fails each of its requests."""
        try:
            results = await self._limited(len(items), lambda: self._call(items), f"a call of {len(items)}")
        except ChannelError as e:
            results = [copy_error(e) for _ in items]
        for (request, _), outcome in zip(items, results, strict=True):
            if isinstance(outcome, ChannelError):
                self._log_failure(request, outcome)
        return results

    @abstractmethod
    def _prepare(self, request: DeliveryRequest) -> Prepared:
        """Check one request and extract what the call needs; raise PermanentError to refuse it unsent."""

    @abstractmethod
    def _group_key(self, request: DeliveryRequest, prepared: Prepared) -> Hashable:
        """Requests with equal keys may share one gateway call."""

    @abstractmethod
    async def _call(self, items: list[tuple[DeliveryRequest, Prepared]]) -> list[Outcome]:
        """One gateway call for 1..max_batch requests: one outcome per request, in order; raise a ChannelError
        when the call failed as a whole."""
