"""Kept for one importer, hub.http.console.preview (another change owns it): the router is hub.pipeline.routing,
on Kafka hub.kafka.router. This names the Kafka router wired to the store's opt-out lists, as hub.runtime wires
it. Delete this package once the preview imports hub.kafka.router (and hub.store.ports.OptOutLists)."""

from __future__ import annotations

from typing import Any

from hub.kafka import router
from hub.store import Store
from hub.store.ports import OptOutLists


class RouterConsumer(router.RouterConsumer):
    def __init__(self, *, store: Store, **kwargs: Any) -> None:
        super().__init__(store=store, optouts=OptOutLists(store), **kwargs)
