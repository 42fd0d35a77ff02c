"""The idempotency rules: what makes two deliveries the same one, and what a claim on a delivery can find.

A delivery's id is derived, never random: the same notice (the event's dedup key, else its source and id),
the same resident and the same channel always give the same id, however many times the event is published,
redelivered or replayed. The store keeps one row per id; a sender claims the row before calling a gateway
and finishes it after, so a redelivered request finds the row finished (DONE) and sends nothing, or finds it
claimed by a sender that died mid-call (IN_DOUBT) and lets the adapter decide (see docs/ARCHITECTURE.md), or
finds it claimed by a sender that is still alive (BUSY: another consumer is making that call right now) and
comes back later rather than making the call a second time.
"""

from __future__ import annotations

import enum
import hashlib


def delivery_id(notice_key: str, resident_id: str, channel: str) -> str:
    digest = hashlib.sha256(f"{notice_key}\x1f{resident_id}\x1f{channel}".encode("utf-8", "surrogatepass")).hexdigest()  # any text: ids are not refused here
    return digest[:32]


class Claim(enum.Enum):
    NEW = "new"  # nobody has tried it: send
    AGAIN = "again"  # tried before and failed (a retry, a replay): send, unless the gateway says it got it
    DONE = "done"  # already finished (sent or failed for good): send nothing
    IN_DOUBT = "in_doubt"  # claimed before, never finished: a sender died between claim and finish
    BUSY = "busy"  # claimed by a sender that is alive (seen within HUB_SENDER_LIVENESS_S): not now
