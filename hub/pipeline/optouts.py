"""Outside opt-out lists (issue 15, point 4): the 080 service's and the SMS gateway's, imported by hand
(`hub residents optouts import FILE`) or polled by a running hub (the SMS gateway's, `OptOutSync`).

A number a resident has opts that resident out the way the residents' page does: a resident event on
`<prefix>.residents` (source: the list), so the directory applies it, the evidence says `via` 080 or
sms-gateway and the result notice follows. A number no resident has is kept as its keyed hash
(HUB_OPTOUT_HASH_KEY), and the router suppresses it in a `phones` audience; when a resident later comes to have
that number (registered with it, or changed to it), the entry is moved onto them (`carry_listed`): the person at
that number asked for no advertising, and a new directory row must not silently undo it.

Importing the same list again changes nothing. No number is logged."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from hub.core.cloudevents import CloudEvent, new_event
from hub.core.errors import ChannelError
from hub.core.optouts import EVENT_SOURCES, OptOut, Source, phone_key, sync_window
from hub.core.residents import Resident
from hub.pipeline.periodic import Periodic

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- ports


class OptOutStore(Protocol):
    """What the opt-out lists need of the store (hub.store.consent.StoreOptOuts)."""

    async def residents_by_phone(self, phones: Iterable[str]) -> Mapping[str, Resident]: ...
    async def opted_in_since(self, resident_id: str, at: datetime) -> bool:
        """Whether the resident opted in again after `at` (their own later choice wins over an older list)."""
        ...
    async def suppress(self, items: Sequence[tuple[str, datetime]], *, via: str, at: datetime) -> int:
        """Keep (keyed hash, opted-out time) of numbers no resident has; how many were new."""
        ...
    async def carry(self, residents: Mapping[str, str], at: datetime) -> list[tuple[str, str]]:
        """Move the entries of these hashes (hash -> resident id) onto their residents; (resident id, via)."""
        ...
    async def imported_until(self, source: str) -> datetime | None: ...
    async def set_imported_until(self, source: str, until: datetime, at: datetime) -> None: ...


class ResidentEvents(Protocol):
    async def publish(self, event: CloudEvent) -> None:
        """A resident event on `<prefix>.residents`, acknowledged by the broker."""
        ...


class OptOutSource(Protocol):
    """An opt-out list the hub polls (hub.gateways.sens_optouts.SensOptOutList)."""

    @property
    def source(self) -> Source: ...

    async def optouts(self, start: datetime | None, end: datetime) -> Sequence[OptOut]:
        """The numbers registered in [start, end] (start None: from the beginning); raises ChannelError."""
        ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- the import


@dataclass
class Imported:
    opted_out: list[str] = field(default_factory=list)  # resident ids
    already: int = 0  # residents already opted out, or who opted in again after the list's time
    kept: int = 0  # numbers no resident has, newly on the suppression list
    unkept: int = 0  # numbers no resident has, not kept for want of HUB_OPTOUT_HASH_KEY


def optout_event(source: Source, resident_id: str, at: datetime) -> CloudEvent:
    """The resident event of one listed opt-out; its id comes from the list, the resident and the time, so
    importing it again publishes the same event."""
    digest = hashlib.sha256(f"{source} {resident_id} {at.isoformat()}".encode()).hexdigest()[:32]
    return new_event("resident.opted_out.v1", {}, source=EVENT_SOURCES[source], id=f"optout-{digest}",
                     subject=resident_id, time=at)


def latest(optouts: Iterable[OptOut], now: datetime) -> dict[str, OptOut]:
    """One opt-out per number: a number listed twice counts from its latest time."""
    found: dict[str, OptOut] = {}
    for o in optouts:
        if o.phone not in found or (o.at or now) > (found[o.phone].at or now):
            found[o.phone] = o
    return found


async def import_optouts(store: OptOutStore, events: ResidentEvents, optouts: Iterable[OptOut], source: Source,
                         *, key: str | None, now: datetime) -> Imported:
    """Opt out the residents the list names (each acknowledged before returning) and keep the other numbers.
    Without `key`, numbers no resident has cannot be kept: the residents are still opted out, and `unkept` says
    how many numbers were not (import the list again once the key is set)."""
    result = Imported()
    listed = latest(optouts, now)
    residents = await store.residents_by_phone(listed)
    for phone, resident in residents.items():
        at = listed[phone].at or now
        if resident.opted_out or await store.opted_in_since(resident.resident_id, at):
            result.already += 1
            continue
        await events.publish(optout_event(source, resident.resident_id, at))
        result.opted_out.append(resident.resident_id)
    unknown = [o for p, o in listed.items() if p not in residents]
    if unknown and key is None:
        result.unkept = len(unknown)
    elif unknown and key is not None:
        result.kept = await store.suppress([(phone_key(key, o.phone), o.at or now) for o in unknown],
                                           via=source, at=now)
    return result


async def carry_listed(store: OptOutStore, key: str | None, residents: Iterable[Resident],
                       now: datetime) -> list[tuple[str, str]]:
    """Residents just written with a number kept on the suppression list: each is opted out (evidence `via` the
    list, and the result notice) and the entry, no longer a number no resident has, goes. (resident id, via)."""
    if key is None:
        return []
    hashes = {phone_key(key, r.phone): r.resident_id for r in residents if r.phone}
    carried = await store.carry(hashes, now)
    if carried:
        logger.info("opt-out lists: %d newly registered number(s) were on a list: opted out", len(carried))
    return carried


# --------------------------------------------------------------------------- the scheduled import


class OptOutSync(Periodic):
    """A running hub polls an outside list (the SMS gateway's) every HUB_OPTOUT_SYNC_INTERVAL_S: each poll asks
    for the registration times since the end of the last window imported (less an overlap), imports them, then
    records the new end in the store, so a restart resumes there. A failed poll records nothing: the next one
    asks for the whole span again."""

    name = "opt-out list sync"

    def __init__(self, *, source: OptOutSource, store: OptOutStore, events: ResidentEvents, key: str | None,
                 interval_s: float, clock: Callable[[], datetime]) -> None:
        super().__init__(interval_s)
        self.source, self.store, self.events, self.key, self.clock = source, store, events, key, clock

    async def step(self) -> Imported | None:
        now = self.clock()
        start, end = sync_window(await self.store.imported_until(self.source.source), now)
        try:
            optouts = await self.source.optouts(start, end)
        except ChannelError as e:  # the gateway's passing trouble: logged without a traceback, asked again
            logger.warning("%s: %s; asking again in %g s", self.name, e, self.interval_s)
            return None
        result = await import_optouts(self.store, self.events, optouts, self.source.source, key=self.key, now=now)
        if result.unkept:  # not marked imported: the next poll, once the key is set, keeps them
            logger.error("%s: %d number(s) on the list belong to no resident, and HUB_OPTOUT_HASH_KEY is not set to "
                         "keep them", self.name, result.unkept)
            return result
        await self.store.set_imported_until(self.source.source, end, now)
        if result.opted_out or result.kept:
            logger.info("%s: opted out %d resident(s), kept %d new number(s) no resident has", self.name,
                        len(result.opted_out), result.kept)
        return result

    async def stop(self) -> None:
        await super().stop()
        await self.source.close()
