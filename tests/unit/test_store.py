"""The store, on SQLite and on PostgreSQL: the dedup ledger (register, claim, finish) and the outcome log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from hub.core.dedup import Claim, delivery_id
from hub.core.delivery import DeliveryStatus
from hub.store import NewDelivery, Store


def new(resident_id: str = "R-1", *, event_id: str = "e-1", channel: str = "sms") -> NewDelivery:
    notice_key = f"/yp/water#{event_id}"
    return NewDelivery(
        delivery_id=delivery_id(notice_key, resident_id, channel), notice_key=notice_key, event_id=event_id,
        event_type="water.leak.suspected.v1", resident_id=resident_id, channel=channel, to_masked="010-****-5678",
    )  # fmt: skip


def outcome(row: NewDelivery, state: str, **extra: str) -> DeliveryStatus:
    return DeliveryStatus(delivery_id=row.delivery_id, event_id=row.event_id, event_type=row.event_type,
                          resident_id=row.resident_id, channel=row.channel, state=state,  # type: ignore[arg-type]
                          to_masked=row.to_masked, **extra)  # fmt: skip


async def status_of(store: Store, row: NewDelivery) -> tuple[str, int]:
    (found,) = [r for r in await store.deliveries(event_id=row.event_id) if r.delivery_id == row.delivery_id]
    return found.status, found.attempts


# --------------------------------------------------------------------------- register


async def test_register_records_queued_deliveries(store: Store) -> None:
    rows = [new("R-1"), new("R-2")]

    assert set(await store.register(rows)) == set()
    assert [await status_of(store, r) for r in rows] == [("queued", 0), ("queued", 0)]


@pytest.mark.parametrize(
    ("history", "duplicate"),
    [
        ([], False),
        (["register"], False),
        (["register", "claim"], False),
        (["register", "claim", "sent"], True),
        (["register", "claim", "failed"], True),
        (["register", "claim", "fallback"], True),
        (["register", "claim", "retried"], False),
        (["register", "claim", "dead-lettered"], False),
    ],
)
async def test_register_returns_the_finished_ids_only(store: Store, history: list[str], duplicate: bool) -> None:
    row, other = new("R-1"), new("R-2")
    await play(store, row, history)

    assert set(await store.register([row, other])) == ({row.delivery_id} if duplicate else set())
    assert await status_of(store, other) == ("queued", 0)


async def test_register_is_idempotent(store: Store) -> None:
    row = new()
    await store.register([row])
    await store.claim([row], owner="sender-1")

    assert set(await store.register([row])) == set()
    assert await status_of(store, row) == ("sending", 1)  # a second register does not reset a claim


# --------------------------------------------------------------------------- claim


async def play(store: Store, row: NewDelivery, steps: list[str]) -> None:
    for step in steps:
        if step == "register":
            await store.register([row])
        elif step == "claim":
            await store.claim([row], owner="sender-1")
        else:
            await store.finish([outcome(row, step)])


@pytest.mark.parametrize(
    ("history", "claim", "status"),
    [
        ([], Claim.NEW, ("sending", 1)),
        (["register"], Claim.NEW, ("sending", 1)),
        (["claim"], Claim.IN_DOUBT, ("sending", 1)),
        (["register", "claim"], Claim.IN_DOUBT, ("sending", 1)),
        (["register", "claim", "sent"], Claim.DONE, ("sent", 1)),
        (["register", "claim", "failed"], Claim.DONE, ("failed", 1)),
        (["register", "claim", "fallback"], Claim.DONE, ("fallback", 1)),
        (["register", "claim", "retried"], Claim.AGAIN, ("sending", 2)),
        (["register", "claim", "dead-lettered"], Claim.AGAIN, ("sending", 2)),
        (["register", "claim", "retried", "claim", "sent"], Claim.DONE, ("sent", 2)),
        (["register", "claim", "deduplicated"], Claim.IN_DOUBT, ("sending", 1)),
    ],
    ids=[
        "unknown-id", "queued", "claimed-unregistered", "claimed", "sent", "failed", "fallback", "retried",
        "dead-lettered", "retried-then-sent", "log-only-outcome",
    ],
)  # fmt: skip
async def test_claim(store: Store, history: list[str], claim: Claim, status: tuple[str, int]) -> None:
    row = new()
    await play(store, row, history)

    assert await store.claim([row], owner="sender-2") == {row.delivery_id: claim}
    assert await status_of(store, row) == status


async def test_claim_answers_for_every_row_of_a_mixed_batch(store: Store) -> None:
    queued, sending, sent, unknown = new("R-1"), new("R-2"), new("R-3"), new("R-4")
    await store.register([queued, sending, sent])
    await store.claim([sending, sent], owner="sender-1")
    await store.finish([outcome(sent, "sent")])

    claims = await store.claim([queued, sending, sent, unknown], owner="sender-2")

    assert claims == {queued.delivery_id: Claim.NEW, sending.delivery_id: Claim.IN_DOUBT,
                      sent.delivery_id: Claim.DONE, unknown.delivery_id: Claim.NEW}  # fmt: skip


async def test_a_claim_held_by_a_live_sender_is_busy_and_by_a_silent_one_in_doubt(store: Store) -> None:
    """Another sender's `sending` claim: BUSY while that sender says it is alive (it is making the call now),
    IN_DOUBT once it falls silent (it died mid-call). The claimant knows its own calls in flight."""
    row = new()
    await store.register([row])
    await store.heartbeat("sender-1")
    assert await store.claim([row], owner="sender-1", alive_within_s=15) == {row.delivery_id: Claim.NEW}

    assert await store.claim([row], owner="sender-2", alive_within_s=15) == {row.delivery_id: Claim.BUSY}
    # its own claim: busy while this process is making the call, in doubt once it is not (its batch failed)
    assert await store.claim([row], owner="sender-1", alive_within_s=15, mine_in_flight={row.delivery_id}) == {
        row.delivery_id: Claim.BUSY}
    assert await store.claim([row], owner="sender-1", alive_within_s=15) == {row.delivery_id: Claim.IN_DOUBT}
    await asyncio.sleep(0.1)  # sender-1 was last seen 0.1 s ago: silent, for a liveness of 0.05 s
    assert await store.claim([row], owner="sender-2", alive_within_s=0.05) == {row.delivery_id: Claim.IN_DOUBT}
    await store.forget("sender-1")  # a clean stop
    assert await store.claim([row], owner="sender-2", alive_within_s=15) == {row.delivery_id: Claim.IN_DOUBT}
    assert await status_of(store, row) == ("sending", 1)  # taking a claim over is not another attempt


async def test_a_claim_older_than_the_lease_or_abandoned_is_in_doubt_even_if_its_sender_lives(store: Store) -> None:
    first, second = new("R-1"), new("R-2")
    await store.register([first, second])
    await store.heartbeat("sender-1")
    await store.claim([first, second], owner="sender-1", alive_within_s=15)

    assert await store.claim([first], owner="sender-2", alive_within_s=15, lease_s=300) == {
        first.delivery_id: Claim.BUSY}
    await asyncio.sleep(0.1)
    assert await store.claim([first], owner="sender-2", alive_within_s=15, lease_s=0.05) == {
        first.delivery_id: Claim.IN_DOUBT}
    await store.abandon([second.delivery_id], "sender-1")  # its batch failed: the claim is given up
    assert await store.claim([second], owner="sender-2", alive_within_s=15) == {second.delivery_id: Claim.IN_DOUBT}
    await store.heartbeat("sender-2")  # sender-2 took `first` over when it read it in doubt
    await store.abandon([first.delivery_id], "sender-1")  # no longer sender-1's claim: nothing happens
    assert await store.claim([first], owner="sender-3", alive_within_s=15) == {first.delivery_id: Claim.BUSY}


@pytest.mark.parametrize("registered", [False, True])
async def test_a_duplicate_id_within_one_claim_is_claimed_once(store: Store, registered: bool) -> None:
    row = new()
    if registered:
        await store.register([row])

    assert await store.claim([row, row, row], owner="sender-1") == {row.delivery_id: Claim.NEW}
    assert await status_of(store, row) == ("sending", 1)
    assert len(await store.deliveries(event_id=row.event_id)) == 1


async def test_an_empty_claim_or_register_is_a_no_op(store: Store) -> None:
    assert await store.claim([], owner="sender-1") == {}
    assert set(await store.register([])) == set()


# --------------------------------------------------------------------------- finish and the log


async def test_finish_closes_the_row_and_writes_the_log(store: Store) -> None:
    row = new()
    await store.register([row])
    await store.claim([row], owner="sender-1")

    await store.finish([outcome(row, "sent", provider="outbox", provider_ref="ref-1")])

    (delivery,) = await store.deliveries(event_id=row.event_id)
    assert (delivery.status, delivery.provider_ref, delivery.claimed_by) == ("sent", "ref-1", "sender-1")
    assert delivery.sent_at is not None
    (log,) = await store.history(event_id=row.event_id)
    assert (log.delivery_id, log.state, log.provider, log.to_masked) == (row.delivery_id, "sent", "outbox",
                                                                         "010-****-5678")  # fmt: skip


async def test_every_outcome_is_logged_in_order(store: Store) -> None:
    row = new()
    await store.register([row])
    await store.claim([row], owner="sender-1")
    await store.finish([outcome(row, "retried", reason="timeout")])
    await store.claim([row], owner="sender-1")
    await store.finish([outcome(row, "sent")])
    await store.log([outcome(row, "deduplicated")])

    assert [(h.state, h.reason) for h in await store.history(event_id=row.event_id)] == [
        ("retried", "timeout"), ("sent", None), ("deduplicated", None)]  # fmt: skip
    assert await status_of(store, row) == ("sent", 2)


async def test_a_failed_delivery_keeps_its_reason_and_no_sent_time(store: Store) -> None:
    row = new()
    await store.claim([row], owner="sender-1")
    await store.finish([outcome(row, "failed", reason="invalid number")])

    (delivery,) = await store.deliveries(event_id=row.event_id)
    assert (delivery.status, delivery.detail, delivery.sent_at) == ("failed", "invalid number", None)


@pytest.mark.parametrize(
    ("event_id", "resident_id", "expected"),
    [
        ("e-1", None, [("e-1", "R-1"), ("e-1", "R-2")]),
        ("e-2", None, [("e-2", "R-1")]),
        (None, "R-1", [("e-1", "R-1"), ("e-2", "R-1")]),
        ("e-1", "R-2", [("e-1", "R-2")]),
        ("e-3", None, []),
        (None, None, [("e-1", "R-1"), ("e-1", "R-2"), ("e-2", "R-1")]),
    ],
)
async def test_history_filters_by_event_and_resident(store: Store, event_id: str | None, resident_id: str | None,
                                                     expected: list[tuple[str, str]]) -> None:  # fmt: skip
    rows = [new("R-1", event_id="e-1"), new("R-2", event_id="e-1"), new("R-1", event_id="e-2")]
    await store.log([outcome(r, "deduplicated") for r in rows])

    history = await store.history(event_id=event_id, resident_id=resident_id)
    deliveries = await store.deliveries(event_id=event_id, resident_id=resident_id)

    assert [(h.event_id, h.resident_id) for h in history] == expected
    assert deliveries == []  # log() records outcomes that close no delivery


async def test_deliveries_filter_by_event_and_resident(store: Store) -> None:
    rows = [new("R-1", event_id="e-1"), new("R-2", event_id="e-1"), new("R-1", event_id="e-2")]
    await store.register(rows)

    assert {d.resident_id for d in await store.deliveries(event_id="e-1")} == {"R-1", "R-2"}
    assert {d.event_id for d in await store.deliveries(resident_id="R-1")} == {"e-1", "e-2"}


async def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    row = new()
    first = Store(url)
    await first.init()
    await first.claim([row], owner="sender-1")
    await first.finish([outcome(row, "sent")])
    await first.close()

    second = Store(url)
    await second.init()
    try:
        assert await second.claim([row], owner="sender-2") == {row.delivery_id: Claim.DONE}
    finally:
        await second.close()


@pytest.mark.parametrize("error", [
    sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
    sa_exc.DisconnectionError("connection invalidated"),
    ConnectionResetError("reset by peer"),
])
async def test_an_unavailable_store_is_a_retriable_store_error(error: Exception) -> None:
    """The consumers retry a StoreError and dead-letter anything else: a pool with no connection to give must be
    the former, or an event that happened to meet it would be dead-lettered instead of retried."""
    from hub.core.errors import StoreError

    store = Store("sqlite+aiosqlite:///:memory:")
    with pytest.raises(StoreError) as caught:
        async with store._translate():
            raise error
    assert caught.value.retriable and type(error).__name__ in str(caught.value)


# --------------------------------------------------------------------------- a new SQLite file, opened at once


async def test_connections_opening_a_new_sqlite_file_at_once_all_open_it(tmp_path: Path) -> None:
    """Invariant: however many stores open one new SQLite file at the same moment, each gets it, in WAL mode.
    Switching a file to WAL is refused at once, not waited for, while another connection is writing it: one
    start in about a hundred failed so (CI). Many fresh files, six stores each, make the race likely."""
    rounds, per_round = 25, 6
    for n in range(rounds):
        url = f"sqlite+aiosqlite:///{tmp_path}/{n}/hub.db"
        stores = [Store(url) for _ in range(per_round)]
        try:
            outcomes = await asyncio.gather(*(s.init() for s in stores), return_exceptions=True)
            assert [o for o in outcomes if isinstance(o, BaseException)] == [], f"round {n}"
            async with stores[-1].engine.connect() as conn:
                assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        finally:
            await asyncio.gather(*(s.close() for s in stores))


# --------------------------------------------------------------------------- a start beside a busy hub


async def test_a_store_starts_on_a_ready_sqlite_file_while_another_process_holds_its_write_lock(
        tmp_path: Path) -> None:
    """Invariant: a store starting on a database that has its schema (a CLI command, the ingest API, a second hub)
    needs no write lock to start, so a running hub's writes never make it wait or fail. It waited the whole busy
    timeout (30 s) and failed with "database is locked" in CI. Here another process's connection (the standard
    library's, not ours) holds the write lock the whole time: the store still starts, and reads."""
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    first = Store(url)
    await first.init()
    await first.register([new("R-1")])
    await first.close()

    writer = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # held: the write lock, as a hub in the middle of a write has it
    writer.execute("UPDATE deliveries SET attempts = attempts + 1")
    second = Store(url)
    try:
        await asyncio.wait_for(second.init(), timeout=5)
        assert [d.resident_id for d in await second.deliveries(event_id="e-1")] == ["R-1"]
    finally:
        writer.rollback()
        writer.close()
        await second.close()


async def test_a_table_missing_from_an_existing_database_is_created(tmp_path: Path) -> None:
    """The read-only start is taken only when every table is there: a database that lacks one (a table added by
    a newer version) still gets it."""
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    first = Store(url)
    await first.init()
    await first.close()
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.execute("DROP TABLE deliveries")
    second = Store(url)
    try:
        await second.init()
        await second.register([new("R-1")])
        assert [d.resident_id for d in await second.deliveries(event_id="e-1")] == ["R-1"]
    finally:
        await second.close()


async def test_a_withdrawal_gives_each_held_delivery_its_own_masked_address(store: Store) -> None:
    """What a console cancel withdraws carries each delivery's masked address as the ledger registered it, on
    SQLite and PostgreSQL alike; another event's held deliveries stay held."""
    from datetime import UTC, datetime, timedelta

    from hub.core.delivery import DeliveryRequest
    from hub.core.rendering.email import EmailContent
    from hub.core.rendering.sms import SmsContent
    from hub.store.staff import withdraw_held

    now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)

    def held(event_id: str, i: int, channel: str, to: str) -> DeliveryRequest:
        content = (EmailContent(subject="안내", text="안내", html="<p>안내</p>") if channel == "email"
                   else SmsContent(kind="SMS", text="안내", byte_count=4))
        return DeliveryRequest(delivery_id=f"{i:032x}", notice_key=f"k-{event_id}", event_id=event_id,
                               event_type="notice.published.v1", event_source="/departments/pr",
                               resident_id=f"R-{i}", channel=channel, to=to, content=content, requested_at=now)

    cancelled = [held("e-1", 1, "sms", "01012345678"), held("e-1", 2, "sms", "01098765432"),
                 held("e-1", 3, "email", "kim@example.org")]
    other = held("e-2", 4, "sms", "01055556666")
    requests = [*cancelled, other]
    await store.register([NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type, r.resident_id,
                                      r.channel, r.masked_to) for r in requests])
    await store.hold([(r, now + timedelta(hours=2), "scheduled") for r in requests], now)

    withdrawal = await withdraw_held(store, "e-1", now)
    assert sorted(withdrawal.withdrawn) == sorted((r.delivery_id, r.resident_id, r.channel, r.masked_to)
                                                  for r in cancelled)
    assert len({w.to_masked for w in withdrawal.withdrawn}) == 3 and withdrawal.released == 0
    released = await store.claim_due(now + timedelta(days=1), "test")  # (row id, request JSON)
    assert [DeliveryRequest.from_kafka(request.encode()).delivery_id for _, request in released] == [
        other.delivery_id]
