"""The SMS gateway's opt-out list (NAVER Cloud SENS v2): the numbers its 080 service registered, read with
`GET /sms/v2/services/{serviceId}/unsubscribes`, signed like the send call (hub.gateways.sens_sms), page by page
(`pageSize` up to 100, `pageIndex` from 0), for a span of registration times (`startTime`/`endTime`, epoch ms).
An empty list may come as 404. `registerTime` is the gateway's local time (KST) without an offset.

Numbers never leave this module in a log line or an error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from hub.core.errors import PermanentError, TransientError
from hub.core.optouts import OptOut, Source, read_sens_items, sens_list
from hub.gateways._http import HttpClient, raise_if_busy
from hub.gateways.sens_sms import signed_headers

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # the API's largest page
MAX_PAGES = 10_000  # a gateway that never ends its list (a bug) stops here: 1,000,000 numbers


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class SensOptOutList(HttpClient):
    """An OptOutSource (hub.pipeline.optouts): the gateway's list for a span of registration times."""

    source: Source = "sms-gateway"
    provider = "sens"

    def __init__(self, *, base_url: str, service_id: str, access_key: str, secret_key: str,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 10.0, page_size: int = PAGE_SIZE,
                 clock: Callable[[], float] | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/sms/v2/services/{service_id}/unsubscribes"
        self.path = urlsplit(self.url).path
        self.access_key, self.secret_key = access_key, secret_key
        self.page_size = max(1, min(page_size, PAGE_SIZE))
        self.clock = clock or (lambda: time.time() * 1000)
        super().__init__(client=client, timeout_s=timeout_s)

    async def optouts(self, start: datetime | None, end: datetime) -> list[OptOut]:
        """Every number registered in [start, end] (start None: from the beginning), all pages. Unreadable items
        are counted in the log, never shown."""
        found: list[OptOut] = []
        bad = 0
        for index in range(MAX_PAGES):
            items = await self._page(index, start, end)
            for _, optout, _ in read_sens_items(items):
                if optout is None:
                    bad += 1
                else:
                    found.append(optout)
            if len(items) < self.page_size:
                break
        else:
            logger.warning("%s: the opt-out list did not end after %d pages", self.provider, MAX_PAGES)
        if bad:
            logger.warning("%s: %d item(s) of the opt-out list were not a mobile number with a time", self.provider, bad)
        return found

    async def _page(self, index: int, start: datetime | None, end: datetime) -> list[Any]:
        query = {"pageSize": self.page_size, "pageIndex": index, "endTime": epoch_ms(end)}
        if start is not None:
            query["startTime"] = epoch_ms(start)
        target = f"{self.path}?{urlencode(query)}"
        headers = {"Content-Type": "application/json; charset=utf-8",
                   **signed_headers(self.secret_key, self.access_key, "GET", target, self.clock())}
        response = await self._get(f"{self.url}?{urlencode(query)}", headers)
        if response.status_code == 404:  # the documented answer for an empty list (or page)
            return []
        raise_if_busy(self.provider, response)
        if response.status_code != 200:
            raise PermanentError(f"{self.provider}: the opt-out list answered HTTP {response.status_code}")
        try:
            items = sens_list(response.json())
        except ValueError as e:
            raise TransientError(f"{self.provider}: the opt-out list's answer is not JSON") from e
        if items is None:
            raise TransientError(f"{self.provider}: the opt-out list's answer is not a list")
        return items
