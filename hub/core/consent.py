"""What changed in a resident's consent, and how it came (정보통신망법 제50조 ⑦: the result of every consent,
opt-out or withdrawal is told to the resident; the KISA guide: keep when, how and what). Pure."""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from hub.core.time import KST

if TYPE_CHECKING:
    from hub.core.residents import Resident

# the changes the law wants told to the resident (a county-news subscription is kept as evidence, not told)
TOLD = frozenset({"opted_out", "opted_in", "advertising_on", "advertising_off", "night_on", "night_off"})

# the CloudEvent source of a resident event -> how the change came
SOURCES = {"/notice-hub/public": "page", "/notice-hub/public/one-click": "email",
           "/notice-hub/optouts/080": "080", "/notice-hub/optouts/sens": "sms-gateway"}


def via_of(source: str) -> str:
    """How a change published on `<prefix>.residents` came: the hub's own pages and imports name themselves;
    anything else is a department (or platform) system's event."""
    return SOURCES.get(source, "event")


def consent_changes(before: Resident | None, after: Resident | None) -> list[str]:
    """The consent changes from `before` to `after` (None: not in the directory). A new resident's consents
    count as given now; a deleted resident's are not 'withdrawn' (there is no one left to tell)."""
    if after is None:
        return []
    pairs = (
        ("opted_out", "opted_in", before.opted_out if before else False, after.opted_out),
        ("advertising_on", "advertising_off", before.consents.advertising if before else False,
         after.consents.advertising),
        ("night_on", "night_off", before.consents.advertising_night if before else False,
         after.consents.advertising_night),
        ("news_on", "news_off", before.consents.informational if before else True, after.consents.informational),
    )
    return [on if now else off for on, off, was, now in pairs if was != now]


# 제50조 ⑧: advertising consent is confirmed with the resident every 2 years from the consent (or the last
# confirmation); the hub records each reconfirmation notice sent as evidence with this change
RECONFIRM_EVERY = timedelta(days=730)
RECONFIRMATION_SENT = "reconfirmation_sent"


def reconfirmation_due(consented_at: datetime | None, now: datetime, lead: timedelta) -> bool:
    """Whether a resident whose advertising consent dates from `consented_at` (None: unknown, e.g. given
    before the hub kept evidence, so confirmed now to be safe) is due a reconfirmation `lead` before 2 years."""
    return consented_at is None or consented_at + RECONFIRM_EVERY - lead <= now


def daytime(now: datetime, start: time, end: time) -> bool:
    """Whether `now` is in [start, end) of the KST day: reconfirmations go in the daytime only."""
    local = now.astimezone(KST).time()
    return start <= local < end


def reconfirmation_id(resident_id: str, consented_at: datetime | None) -> str:
    """The notice's event id: one per resident and consent instant, so a cycle sent twice is one notice."""
    basis = f"{resident_id} {consented_at.isoformat() if consented_at else '-'}"
    return "consent-reconfirm-" + hashlib.sha256(basis.encode()).hexdigest()[:32]
