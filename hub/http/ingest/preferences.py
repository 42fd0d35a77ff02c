"""Where resident preferences live for `GET/PUT /v1/residents/{id}/preferences`: the store's resident directory,
or a dict (tests and demos)."""

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from hub.core.errors import StoreError
from hub.core.residents import QuietHours as StoredQuietHours
from hub.core.residents import Resident
from hub.http.ingest.models import Preferences, QuietHours
from hub.store import Store


class PreferencesBackend(Protocol):
    """Where resident preferences live (the resident directory). `put` replaces them (`by`: the API key, for the
    consent evidence); it raises LookupError when the directory does not know the resident."""

    async def get(self, resident_id: str) -> dict[str, Any] | None: ...

    async def put(self, resident_id: str, prefs: Preferences, *, by: str = "") -> dict[str, Any]: ...


class StorePreferences:
    """Preferences in the resident directory (the hub's store): a change takes effect for the next send, also
    of notices already queued (the senders read the directory again before each send)."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self._store = store

    def _require(self) -> Store:
        store = self._store()
        if store is None:
            raise StoreError("the store is not open")
        return store

    @staticmethod
    def _view(r: Resident) -> dict[str, Any]:
        quiet = ({"start": f"{r.quiet_hours.start:%H:%M}", "end": f"{r.quiet_hours.end:%H:%M}"}
                 if r.quiet_hours else None)
        return Preferences(channels=r.channels or ["kakao", "sms", "email"], locale=r.locale,
                           consents=r.consents, opted_out=r.opted_out,
                           quiet_hours=QuietHours(**quiet) if quiet else None).model_dump(mode="json")

    async def get(self, resident_id: str) -> dict[str, Any] | None:
        found = (await self._require().residents([resident_id])).get(resident_id)
        return self._view(found) if found else None

    async def put(self, resident_id: str, prefs: Preferences, *, by: str = "") -> dict[str, Any]:
        """Replace them, keeping each consent change as evidence (via "api"): a running hub tells the resident
        the result (정보통신망법 제50조 ⑦), as for a change from any other path."""
        from hub.core.time import utcnow
        from hub.store.consent import write_residents

        store = self._require()
        current = (await store.residents([resident_id])).get(resident_id)
        if current is None:
            raise LookupError(resident_id)
        quiet = StoredQuietHours(start=prefs.quiet_hours.start, end=prefs.quiet_hours.end) if prefs.quiet_hours else None
        updated = current.model_copy(update={"channels": prefs.channels, "locale": prefs.locale,
                                             "consents": prefs.consents, "opted_out": prefs.opted_out,
                                             "quiet_hours": quiet})
        await write_residents(store, [updated], via="api", at=utcnow(), detail=f"PUT preferences, {by}".rstrip(", "))
        return self._view(updated)


class InMemoryPreferences:
    """A PreferencesBackend in a dict: for tests and demos. Knows only the residents it was given, unless
    `create_unknown`."""

    def __init__(self, residents: Mapping[str, Preferences | dict[str, Any]] | None = None, *,
                 create_unknown: bool = False) -> None:
        self._prefs = {rid: Preferences.model_validate(p).model_dump(mode="json")
                       for rid, p in (residents or {}).items()}
        self.create_unknown = create_unknown

    async def get(self, resident_id: str) -> dict[str, Any] | None:
        return self._prefs.get(resident_id)

    async def put(self, resident_id: str, prefs: Preferences, *, by: str = "") -> dict[str, Any]:
        if resident_id not in self._prefs and not self.create_unknown:
            raise LookupError(resident_id)
        self._prefs[resident_id] = prefs.model_dump(mode="json")
        return self._prefs[resident_id]
