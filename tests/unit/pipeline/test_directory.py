"""The directory use case without Kafka, isolated per record: any mix of good and hostile resident events ->
each good registration is in the directory (with its consent change recorded as evidence), each bad record is
rejected exactly once with its reason, and nothing raises."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.cloudevents import new_event, to_kafka_binary
from hub.core.residents import PreferencesChange, Resident
from hub.pipeline.directory import DirectoryUpdates
from hub.pipeline.ports import InRecord

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


class MemoryDirectory:
    """hub.pipeline.ports.ResidentDirectory and ConsentLedger.record_changes, in memory."""

    def __init__(self) -> None:
        self.entries: dict[str, Resident] = {}
        self.evidence: list[tuple[str, list[str]]] = []

    async def residents(self, ids: Iterable[str]) -> dict[str, Resident]:
        return {i: self.entries[i] for i in ids if i in self.entries}

    async def upsert_residents(self, residents: Sequence[Resident], now: datetime) -> int:
        self.entries |= {r.resident_id: r for r in residents}
        return len(residents)

    async def change_preferences(self, resident_id: str, change: PreferencesChange, now: datetime) -> Resident | None:
        return None

    async def set_opt_out(self, resident_id: str, opted_out: bool, now: datetime) -> bool:
        return False

    async def delete_resident(self, resident_id: str) -> bool:
        return self.entries.pop(resident_id, None) is not None

    async def record_changes(self, items: Sequence[tuple[str, list[str]]], *, via: str, at: datetime,
                             detail: str = "") -> int:
        kept = [(rid, changes) for rid, changes in items if changes]
        self.evidence += kept
        return len(kept)


def resident_event(i: int, event_type: str, data: dict[str, Any], subject: str | None) -> InRecord:
    value, headers = to_kafka_binary(new_event(event_type, data, source="/residents", id=f"r-{i}", subject=subject))
    return InRecord("t.residents", 0, i, (subject or "").encode() or None, value,
                    [(k, v.encode()) for k, v in headers.items()])


HOSTILE: dict[str, Any] = {
    "not JSON": lambda i: InRecord("t.residents", 0, i, b"R", b"\xff", [("content-type", b"application/json")]),
    "not a resident event": lambda i: resident_event(i, "water.bill.issued.v1", {}, f"R-{i}"),
    "no district like it": lambda i: resident_event(i, "resident.registered.v1", {"district": "없는면"}, f"R-{i}"),
    "a control character in the id": lambda i: resident_event(i, "resident.registered.v1", {}, "R-\x00"),
    "opt-out of nobody": lambda i: resident_event(i, "resident.opted_out.v1", {}, f"R-{i}"),
    "data not an object": lambda i: InRecord("t.residents", 0, i, b"R", b"[1]", [
        ("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"/r"), ("ce_type", b"resident.registered.v1"),
        ("ce_subject", b"R-1"), ("content-type", b"application/json")]),
}


@settings(deadline=None)
@given(kinds=st.lists(st.sampled_from(["good", *HOSTILE]), min_size=1, max_size=20))
async def test_any_mix_of_resident_events_rejects_each_bad_one_once(kinds: list[str]) -> None:
    records = [resident_event(i, "resident.registered.v1", {"phone": "010-4000-0041",
                                                             "consents": {"advertising": True}}, f"R-{i}")
               if kind == "good" else HOSTILE[kind](i) for i, kind in enumerate(kinds)]
    store = MemoryDirectory()
    rejected = await DirectoryUpdates(store=store, evidence=store, clock=lambda: NOW).apply_batch(records)

    good = {f"R-{i}" for i, kind in enumerate(kinds) if kind == "good"}
    assert set(store.entries) == good
    assert {rid for rid, _ in store.evidence} == good
    assert [r.record.offset for r in rejected] == [i for i, kind in enumerate(kinds) if kind != "good"]
    assert all(r.reason for r in rejected)


consents = st.fixed_dictionaries({"informational": st.booleans(), "advertising": st.booleans(),
                                  "advertising_night": st.booleans()})
profiles = st.fixed_dictionaries({"name": st.sampled_from(["홍길동", "김영희", "Nguyen"]),
                                  "district": st.sampled_from(["양평읍", "서종면", "용문면"]),
                                  "phone": st.sampled_from(["010-4000-0041", "010-4000-0042"]),
                                  "consents": consents, "opted_out": st.booleans()})


@settings(deadline=None)
@given(first=profiles, again=st.lists(profiles, min_size=1, max_size=4))
async def test_a_registration_renews_the_profile_and_never_the_consent_of_someone_registered(
        first: dict[str, Any], again: list[dict[str, Any]]) -> None:
    """Registrations of one resident, again and again (a department re-sending or replaying them): the first makes
    the entry as given; every later one renews the profile but leaves consent and opt-out as the resident set them,
    and records no consent change."""
    store = MemoryDirectory()
    updates = DirectoryUpdates(store=store, evidence=store, clock=lambda: NOW)
    records = [resident_event(i, "resident.registered.v1", data, "R-1") for i, data in enumerate([first, *again])]
    assert await updates.apply_batch(records) == []

    entry, last = store.entries["R-1"], again[-1]
    assert entry.consents.model_dump() == first["consents"] and entry.opted_out == first["opted_out"]
    assert (entry.name, entry.district, entry.phone) == (last["name"], last["district"], last["phone"].replace("-", ""))
    assert len(store.evidence) <= 1  # at most the first registration's own consent
