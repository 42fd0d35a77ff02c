"""The directory use case: resident events from `<prefix>.residents` (compacted, keyed by resident id) into the
directory. A registration makes the entry (for someone already registered: renews
the profile, keeping consent and opt-out), a preferences change merges into it, an opt-out takes effect at
once (the senders check it again before every send), a deletion or a tombstone removes it. Each change of
opt-out or advertising consent is recorded as evidence, which is also the outbox of the result notice
(hub.pipeline.consent).

Records are handled one at a time, isolated (hub.pipeline.isolation): a record that cannot be applied is
returned rejected, with its reason, and the others go on. The Kafka side is hub.kafka.directory."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from hub.core.cloudevents import parse_kafka_message
from hub.core.consent import consent_changes, via_of
from hub.core.errors import EventError
from hub.core.fields import ID_PATTERN
from hub.core.residents import RESIDENT_EVENT_TYPES, PreferencesChange, Resident
from hub.pipeline.isolation import Isolation, Rejected
from hub.pipeline.optouts import OptOutStore, carry_listed
from hub.pipeline.ports import ConsentLedger, Record, ResidentDirectory

logger = logging.getLogger(__name__)


class DirectoryUpdates:
    def __init__(self, *, store: ResidentDirectory, evidence: ConsentLedger, clock: Callable[[], datetime],
                 isolation: Isolation | None = None, optouts: OptOutStore | None = None,
                 optout_key: str | None = None) -> None:
        self.store, self.evidence, self.clock = store, evidence, clock
        self.isolation = isolation or Isolation("directory")
        self.optouts, self.optout_key = optouts, optout_key  # outside opt-out lists (hub.pipeline.optouts)

    async def apply_batch(self, records: Sequence[Record]) -> list[Rejected]:
        """Apply each record in order; the records rejected, with their reasons."""
        rejected = []
        for record in records:
            with self.isolation.each(record) as attempt:
                await self.apply(record)
            if attempt.rejected is not None:
                rejected.append(attempt.rejected)
        return rejected

    async def apply(self, record: Record) -> None:
        now = self.clock()
        key = record.key.decode("utf-8", "replace") if record.key else None
        if record.value is None:  # a tombstone: the resident is gone
            if key:
                await self.store.delete_resident(_resident_id(key))
            return
        event = parse_kafka_message(record.value, record.headers or ())
        if event.type not in RESIDENT_EVENT_TYPES:
            raise EventError(f"{event.type!r} is not a resident event ({', '.join(RESIDENT_EVENT_TYPES)})")
        if event.data is not None and not isinstance(event.data, dict):  # was read as no data: a silent no-op
            raise EventError(f"{event.type} data must be a JSON object, not {type(event.data).__name__}")
        data = event.data or {}
        resident_id = _resident_id(event.subject or data.get("resident_id") or key)
        before = (await self.store.residents([resident_id])).get(resident_id)
        after: Resident | None = None
        try:
            if event.type == "resident.registered.v1":
                after = _registered(Resident.model_validate({**data, "resident_id": resident_id}), before, event.id)
                await self.store.upsert_residents([after], now)
            elif event.type == "resident.preferences_changed.v1":
                change = PreferencesChange.model_validate({k: v for k, v in data.items() if k != "resident_id"})
                if (after := await self.store.change_preferences(resident_id, change, now)) is None:
                    raise EventError(f"preferences for {resident_id!r}, who is not in the directory")
            elif event.type in ("resident.opted_out.v1", "resident.opted_in.v1"):
                opted_out = event.type == "resident.opted_out.v1"
                if before is None or not await self.store.set_opt_out(resident_id, opted_out, now):
                    raise EventError(f"opt-out for {resident_id!r}, who is not in the directory")
                after = before.model_copy(update={"opted_out": opted_out})
            else:
                await self.store.delete_resident(resident_id)
        except ValidationError as e:
            raise EventError(f"{event.type} data invalid: {e.errors(include_url=False)[:5]}") from e
        # the evidence, and the outbox of the result notice (hub.pipeline.consent): a repeat of this event changes nothing
        await self.evidence.record_changes([(resident_id, consent_changes(before, after))],
                                           via=via_of(event.source), at=now, detail=f"{event.source} {event.id}")
        if (self.optouts is not None and after is not None
                and (event.type == "resident.registered.v1" or before is None or before.phone != after.phone)):
            # a number an outside opt-out list named, now a resident's: the opt-out moves onto them
            await carry_listed(self.optouts, self.optout_key, [after], now)


def _registered(given: Resident, before: Resident | None, event_id: str) -> Resident:
    """The entry a registration makes. For someone already registered it renews the profile (name, contacts,
    district, interests, locale, channels, quiet hours) but keeps their consent and opt-out: those change only by
    the resident's own act (resident.preferences_changed / opted_out / opted_in: the page, an 080 list, the
    API). Otherwise a department's system re-sending or replaying a registration would silently undo an opt-out
    or give advertising consent the resident never gave (정보통신망법 제50조)."""
    if before is None:
        return given
    kept = {"consents": before.consents, "opted_out": before.opted_out}
    if given.consents != before.consents or given.opted_out != before.opted_out:
        logger.info("registration %s of %s, already registered: consent and opt-out kept as they are (they change "
                    "by resident.preferences_changed.v1, opted_out.v1 or opted_in.v1)", event_id, given.resident_id)
    return given.model_copy(update=kept)


def _resident_id(value: Any) -> str:
    """The id the store is asked about: text it can hold (PostgreSQL refuses a NUL, as bad data its driver
    reports like an outage, which would rewind the batch for ever)."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or len(value) > 64:
        raise EventError("a resident event names its resident in subject, data.resident_id or the key: a string "
                         "of 1 to 64 characters without control characters")
    return value


_ID_RE = re.compile(ID_PATTERN)
