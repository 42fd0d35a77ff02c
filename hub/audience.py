"""Who receives a notice, and on which channel. Pure functions.

In this version an event names its recipients. Segment audiences (districts, interests, everyone) need the
resident directory: `AudienceResolver` is the seam where a directory-backed resolver plugs in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from hub.errors import AudienceError
from hub.events import Channel, DomainEvent, Recipient

RECIPIENT_BATCH = 1000


class AudienceResolver(Protocol):
    """Yields an event's recipients in batches, so a county-wide notice never sits in memory whole."""

    def __call__(self, event: DomainEvent) -> AsyncIterator[list[Recipient]]: ...


async def direct_audience(event: DomainEvent) -> AsyncIterator[list[Recipient]]:
    """The recipients the event names, deduplicated by resident id (first mention wins)."""
    audience = getattr(event.data, "audience", None)
    if audience is not None and audience.is_segment:
        raise AudienceError(
            "this event targets a segment (districts / interests / everyone), which needs the resident "
            "directory; name the recipients instead"
        )
    first: dict[str, Recipient] = {}
    for recipient in event.data.recipients:
        first.setdefault(recipient.resident_id, recipient)
    unique = list(first.values())
    for start in range(0, len(unique), RECIPIENT_BATCH):
        yield unique[start : start + RECIPIENT_BATCH]


def contact_for(recipient: Recipient, channel: str) -> str | None:
    return recipient.email if channel == "email" else recipient.phone


def choose_channel(recipient: Recipient, available: Sequence[str], default_order: Sequence[str]) -> Channel | None:
    """The recipient's most preferred channel that has a template for this event and a contact point."""
    for channel in recipient.channels or default_order:
        if channel in available and contact_for(recipient, channel):
            return channel  # type: ignore[return-value]
    return None
