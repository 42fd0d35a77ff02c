"""The pipeline's ports that the store's module-level functions serve (hub.store.consent): the outside opt-out
lists (`OptOutLists`) and the consent evidence with its outbox of result notices (`ConsentLedger`). The ledger,
the directory and the held deliveries are `Store` itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hub.core.residents import Resident
from hub.store import Store, consent


class OptOutLists:
    """hub.pipeline.ports.OptOutLists: the suppression list of numbers no resident has."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def suppressed(self, hashes: Sequence[str]) -> set[str]:
        return await consent.suppressed(self.store, hashes)


class ConsentLedger:
    """hub.pipeline.ports.ConsentLedger: the consent evidence, and the result notices not yet told."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record_changes(self, items: Sequence[tuple[str, list[str]]], *, via: str, at: datetime,
                             detail: str = "") -> int:
        return await consent.record_changes(self.store, items, via=via, at=at, detail=detail)

    async def untold(self) -> list[consent.ConsentChange]:
        return await consent.untold(self.store)

    async def mark_told(self, ids: Sequence[int], at: datetime) -> None:
        await consent.mark_told(self.store, ids, at)

    async def advertising_consents(self) -> list[tuple[Resident, datetime | None]]:
        return await consent.advertising_consents(self.store)
