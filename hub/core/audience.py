"""Who receives a notice, when, and on which channel. Pure functions: the router feeds them the residents
it resolved (named in the event, or from the directory) and the current time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from hub.core.events.common import Channel, Recipient
from hub.core.time import KST, kst

if TYPE_CHECKING:
    from hub.core.residents import Resident

RECIPIENT_BATCH = 1000


def contact_for(recipient: Recipient, channel: str) -> str | None:
    return recipient.email if channel == "email" else recipient.phone


def choose_channel(recipient: Recipient, available: Sequence[str], default_order: Sequence[str]) -> Channel | None:
    """The recipient's most preferred channel that has a template for this event and a contact point."""
    for channel in recipient.channels or default_order:
        if channel in available and contact_for(recipient, channel):
            return channel  # type: ignore[return-value]  # one of `available`, which are channels
    return None


# --------------------------------------------------------------------------- the rules (정보통신망법 제50조 and residents' choices)

NIGHT_START, NIGHT_END = time(21, 0), time(8, 0)

RULES: dict[str, str] = {
    "ok": "보낼 수 있음 (no rule holds it back)",
    "opted-out": "주민이 수신을 거부함 (the resident opted out)",
    "no-advertising-consent": "광고성 정보 수신 동의 없음 (no consent to advertising)",
    "no-informational-consent": "군정 소식 수신 동의 없음 (not subscribed to county notices)",
    "scheduled": "발신 부서가 정한 예약 시각 (scheduled by the sender)",
    "night-advertising": "야간(21:00-08:00) 광고 수신 동의 없음: 08:00에 발송 (no night consent: held until 08:00)",
    "quiet-hours": "주민이 정한 방해 금지 시간 (the resident's quiet hours)",
    "no-lawful-hour": "광고를 보낼 수 있는 시간 없음: 방해 금지 시간이 야간(21:00-08:00) 밖의 시간을 모두 덮음 "
                      "(no hour is outside both the resident's quiet hours and the night)",
    "no-channel": "쓸 수 있는 채널 없음 (no channel with both a template and a contact point)",
    "render-error": "이 주민에게 맞게 메시지를 만들 수 없음 (the message cannot be rendered for this resident)",
    "deduplicated": "이미 처리한 알림 (this notice was already handled)",
}


@dataclass(frozen=True)
class Decision:
    """What the rules say for one resident and one notice, and which rule said it."""

    action: Literal["send", "defer", "suppress"]
    rule: str
    until: datetime | None = None

    @property
    def reason(self) -> str:
        text = RULES.get(self.rule, self.rule)
        return f"{text}; until {kst(self.until)}" if self.until else text


def in_window(t: time, start: time, end: time) -> bool:
    """Whether a time of day falls in [start, end), a window that may cross midnight."""
    return start <= t < end if start < end else (t >= start or t < end)


def window_end(at: datetime, start: time, end: time) -> datetime:
    """The first moment at or after `at` (in KST) that is outside the window [start, end)."""
    local = at.astimezone(KST)
    candidate = local.replace(hour=end.hour, minute=end.minute, second=end.second, microsecond=end.microsecond)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


def decide(*, advertising: bool, urgent: bool, segment: bool, resident: Resident | None, now: datetime,
           send_at: datetime | None = None) -> Decision:
    """The rules, in order. A resident unknown to the directory has given no consent to advertising and
    has no quiet hours; informational notices about the resident's own business need no subscription."""
    if (first := still_wanted(advertising=advertising, urgent=urgent, standing=Standing.of(resident))).action == "suppress":
        return first
    if segment and not advertising and resident is not None and not resident.consents.informational and not urgent:
        return Decision("suppress", "no-informational-consent")
    at, rule = now, "ok"
    if send_at is not None and send_at > now:
        at, rule = send_at, "scheduled"
    # The night and the quiet hours may push each other: from the night to 08:00, into the quiet hours, to their
    # end, into the night again. Where an instant outside both exists, three pushes reach it; a fourth means the
    # two go round for ever (quiet hours that cover every daytime hour): no lawful hour, and the advertisement is
    # not sent (holding it until the quiet hours end would send it at night, without the night consent).
    for _ in range(5):
        local = at.astimezone(KST).time()
        if advertising and in_window(local, NIGHT_START, NIGHT_END) and not (resident and resident.consents.advertising_night):
            at, rule = window_end(at, NIGHT_START, NIGHT_END), "night-advertising"
            continue
        quiet = resident.quiet_hours if resident is not None else None
        if not urgent and quiet is not None and in_window(local, quiet.start, quiet.end):
            at, rule = window_end(at, quiet.start, quiet.end), "quiet-hours"
            continue
        break
    else:
        return Decision("suppress", "no-lawful-hour")
    return Decision("defer", rule, until=at) if at > now else Decision("send", "ok")


class Standing(NamedTuple):
    """What the send-time check (`still_wanted`) reads of a resident: an opt-out, and the advertising consent. A
    sender reads only these from the directory (`DeliveryStore.standings`), not the whole entry."""

    opted_out: bool
    advertising: bool

    @classmethod
    def of(cls, resident: Resident | None) -> Standing | None:
        return None if resident is None else cls(resident.opted_out, resident.consents.advertising)


def still_wanted(*, advertising: bool, urgent: bool, standing: Standing | None) -> Decision:
    """The rules checked again just before a send: an opt-out or a withdrawn consent since the notice was
    routed (or held) takes effect at once, also for deliveries already queued. `standing`: None for a
    recipient the directory does not know."""
    if standing is not None and standing.opted_out and not urgent:
        return Decision("suppress", "opted-out")
    if advertising and not (standing is not None and standing.advertising):
        return Decision("suppress", "no-advertising-consent")
    return Decision("send", "ok")
