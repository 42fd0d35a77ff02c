"""A small client of the hub's HTTP ingest API, for department developers (부서 개발자용 클라이언트).

    from hub.client import HubClient, HubClientError

    with HubClient("https://hub.yp.example.kr", api_key="nh_live_...") as hub:
        try:
            accepted = hub.publish(
                "waste.large_item.received.v1",
                {"recipient": {"resident_id": "R-0001", "name": "홍길동", "phone": "010-0000-0001"},
                 "report_no": "YP-2026-000123", "items": [{"name": "장롱", "quantity": 1}],
                 "fee_won": 15000, "address": "양평읍 양근리 123"},
                subject="YP-2026-000123",
            )
        except HubClientError as e:
            print(e.status, e.detail)      # 403: not your department's type; 422: [{loc, msg, type}, ...]
        else:
            print(accepted["id"], accepted["topic"], accepted["offset"])   # in Kafka
            print(hub.event(accepted["id"])["deliveries"])                    # what became of it so far

Times and dates may be given as Python values, in `data` and as `time`: a `datetime` must carry its zone
(`datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Asia/Seoul"))`; a naive one is refused before anything is sent,
since the hub cannot know which clock it was read from), a `date` is a calendar day.

`AsyncHubClient` has the same methods, awaited. Every publish carries an Idempotency-Key (a new UUID unless
you give one): the client retries connection failures and 503 answers with the same key, so a retry never
makes a second notice. Pass your own key (e.g. your record's id) to make your own retries safe as well.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime
from time import sleep
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["AsyncHubClient", "HubClient", "HubClientError"]

_RETRY_STATUSES = (502, 503, 504)


class HubClientError(Exception):
    """Raised when the hub refuses a request (status and the hub's `detail`) or cannot be reached (status None)."""

    def __init__(self, status: int | None, detail: Any) -> None:
        super().__init__(f"{status}: {detail}" if status else str(detail))
        self.status = status
        self.detail = detail


def _event_body(event_type: str, data: dict[str, Any], *, id: str | None, subject: str | None,
                dedupkey: str | None, time: datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": event_type, "data": data}
    for name, value in (("id", id), ("subject", subject), ("dedupkey", dedupkey)):
        if value is not None:
            body[name] = value
    if time is not None:
        body["time"] = _json_value(time)
    return body


def _json_value(value: Any) -> Any:
    """A `datetime` or `date` as the hub reads it (RFC 3339 / ISO 8601); a naive `datetime` is refused here,
    with the fix, rather than by the hub with a 422 after the round trip (or by `json` with a TypeError)."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"a time without a zone ({value.isoformat()}): the hub takes instants only; give it "
                             "one, e.g. datetime(..., tzinfo=ZoneInfo('Asia/Seoul')), or use datetime.now(UTC)")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON: give str, int, float, bool, None, list, dict, datetime "
                    "or date")


def _result(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = {"detail": response.text}
    if response.is_success:
        return payload
    detail = payload.get("detail", payload) if isinstance(payload, dict) else payload
    raise HubClientError(response.status_code, detail)


class _Base:
    def __init__(self, base_url: str, api_key: str, *, timeout_s: float, retries: int, backoff_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "notice-hub-client/1"}
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s

    def _publish_args(self, body: dict[str, Any], idempotency_key: str | None,
                      content_type: str) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4()), "Content-Type": content_type}
        return {"content": json.dumps(body, ensure_ascii=False, default=_json_value).encode(), "headers": headers}


class HubClient(_Base):
    """Synchronous client (httpx.Client). Use as a context manager, or call close()."""

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 30.0, retries: int = 2,
                 backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self._http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout_s,
                                  transport=transport)

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def publish(self, type: str, data: dict[str, Any], *, id: str | None = None, subject: str | None = None,
                dedupkey: str | None = None, idempotency_key: str | None = None,
                time: datetime | None = None) -> dict[str, Any]:
        """Publish one event (simple form); return {id, type, source, topic, partition, offset} once in Kafka."""
        body = _event_body(type, data, id=id, subject=subject, dedupkey=dedupkey, time=time)
        return self._send("POST", "/v1/events", **self._publish_args(body, idempotency_key, "application/json"))

    def publish_cloudevent(self, event: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Publish a CloudEvent you built yourself (structured JSON); its source must be your department's."""
        return self._send("POST", "/v1/events",
                          **self._publish_args(event, idempotency_key, "application/cloudevents+json"))

    def event(self, id: str) -> dict[str, Any]:
        """An event your department published, with its deliveries so far (addresses masked)."""
        return self._send("GET", f"/v1/events/{quote(id, safe='')}")

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise HubClientError(None, f"the hub cannot be reached: {type(e).__name__}: {e}") from e
            else:
                if response.status_code not in _RETRY_STATUSES or attempt == self.retries:
                    return _result(response)
            sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")


class AsyncHubClient(_Base):
    """Asynchronous client (httpx.AsyncClient). Use as an async context manager, or await aclose()."""

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 30.0, retries: int = 2,
                 backoff_s: float = 0.5, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=timeout_s,
                                       transport=transport)

    async def __aenter__(self) -> AsyncHubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def publish(self, type: str, data: dict[str, Any], *, id: str | None = None, subject: str | None = None,
                      dedupkey: str | None = None, idempotency_key: str | None = None,
                      time: datetime | None = None) -> dict[str, Any]:
        """Publish one event (simple form); return {id, type, source, topic, partition, offset} once in Kafka."""
        body = _event_body(type, data, id=id, subject=subject, dedupkey=dedupkey, time=time)
        return await self._send("POST", "/v1/events", **self._publish_args(body, idempotency_key, "application/json"))

    async def publish_cloudevent(self, event: dict[str, Any], *,
                                 idempotency_key: str | None = None) -> dict[str, Any]:
        """Publish a CloudEvent you built yourself (structured JSON); its source must be your department's."""
        return await self._send("POST", "/v1/events",
                                **self._publish_args(event, idempotency_key, "application/cloudevents+json"))

    async def event(self, id: str) -> dict[str, Any]:
        """An event your department published, with its deliveries so far (addresses masked)."""
        return await self._send("GET", f"/v1/events/{quote(id, safe='')}")

    async def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise HubClientError(None, f"the hub cannot be reached: {type(e).__name__}: {e}") from e
            else:
                if response.status_code not in _RETRY_STATUSES or attempt == self.retries:
                    return _result(response)
            await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")
