"""Notices the hub itself sends about a resident's consent (정보통신망법 제50조 ⑦ ⑧): the result of a change,
the reconfirmation every two years, and a fresh link the resident asked for. Pure: the model of the event.

The hub publishes them (source `/notice-hub/...`) on `<prefix>.events.consent` and routes them like any other
notice; the renderer adds the resident's own link (`link` in the templates)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from hub.core.events.common import Addressed
from hub.core.fields import Timestamp

CHANGES = ("opted_out", "opted_in", "advertising_on", "advertising_off", "night_on", "night_off",
           "news_on", "news_off")
VIA = ("page", "email", "csv", "api", "080", "sms-gateway", "event")


class ConsentNoticeV1(Addressed):
    """수신 동의 처리 결과 안내, 2년 주기 재확인, 새 링크."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "result", "changes": ["opted_out"], "via": "page", "changed_at": "2026-11-28T10:15:00+09:00",
        "recipient": {"resident_id": "R-0001", "name": "홍길동", "phone": "010-0000-0001",
                      "email": "hong@example.org"},
    }]})
    kind: Literal["result", "reconfirmation", "link"]
    changes: list[Literal[CHANGES]] = Field(default_factory=list, max_length=len(CHANGES))  # type: ignore[valid-type]
    via: Literal[VIA] | None = None  # type: ignore[valid-type]
    changed_at: Timestamp = Field(description="When the change was made (result), or when this was sent.")
    consented_at: Timestamp | None = Field(default=None, description="When advertising consent was given or "
                                                                     "last reconfirmed (reconfirmation).")

    @property
    def urgent(self) -> bool:
        """A result and a requested link go past an opt-out and quiet hours: the law wants the result told (the
        resident has usually just opted out), and the resident asked for the link. A reconfirmation waits for
        the resident's hours like any notice."""
        return self.kind != "reconfirmation"
