"""Who the county is in its messages. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.settings import Settings


@dataclass(frozen=True)
class Identity:
    """Who the county is in its messages."""

    name: str = "양평군"
    contact: str = "031-770-2114"
    sms_subject: str = "양평군 알림"
    optout_phone: str = "080-000-0000"  # 무료 수신거부 번호 for advertising
    optout_url: str = "https://talk.yp.example.kr/unsubscribe"

    @classmethod
    def of(cls, settings: Settings) -> Identity:
        """The county as the settings name it (HUB_COUNTY_NAME, HUB_COUNTY_CONTACT, ...)."""
        return cls(settings.county_name, settings.county_contact, settings.sms_default_subject,
                   settings.advertising_optout_phone, settings.advertising_optout_url)
