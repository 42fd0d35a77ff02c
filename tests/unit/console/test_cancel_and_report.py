"""Cancelling a scheduled notice withdraws its held deliveries (also those the router holds after the cancel),
and a notice's report is the ledger's figures, counted by the store, exported as CSV Excel reads."""

from datetime import timedelta
from typing import Any

from hub.core.delivery import DeliveryStatus
from hub.core.time import KST
from hub.http.console import Console
from hub.http.console.preview import notice_event
from hub.kafka.router import RouterConsumer
from hub.store import NewDelivery
from hub.store.staff import NoticeRow
from tests.unit.console.conftest import NOW, draft, resident, seed
from tests.unit.console.test_notices import signed


async def route(console: Console, row: NoticeRow) -> Any:
    """What the router does with the published notice (its own plan and the store's register/hold/log)."""
    from hub.http.console.forms import NoticeForm

    event = notice_event(NoticeForm.of_row(row).data(row.notice_id), department=row.department,
                         event_id=row.event_id or "")
    router = RouterConsumer(broker=console.broker, store=console.db(), renderer=console.renderer,
                            settings=console.settings, topics=console.topics, clock=lambda: NOW)
    held_all, send_all = [], []
    async for targets in router.targets(event):
        send_now, held, outcomes = router.plan(event, targets, NOW)
        requests = [*send_now, *(r for r, _, _ in held)]
        await console.db().register([NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type,
                                                 r.resident_id, r.channel, r.masked_to) for r in requests])
        await console.db().hold(held, NOW)
        await console.db().log(outcomes)
        held_all += held
        send_all += send_now
    return send_all, held_all


async def get_row(console: Console, notice_id: str) -> NoticeRow:
    async with console.db().sessions() as session:
        row = await session.get(NoticeRow, notice_id)
    assert row is not None
    return row


async def scheduled(browser: Any, console: Console) -> tuple[Any, str]:
    await seed(console)
    writer = await signed(browser, "writer")
    send_at = NOW + timedelta(hours=2)
    notice = await draft(writer, districts=["강상면"], when="later", send_at=f"{send_at.astimezone(KST):%Y-%m-%dT%H:%M}")
    await writer.get(f"/notices/{notice}")
    assert (await writer.post(f"/notices/{notice}/submit")).status_code == 303
    return writer, notice


async def test_a_cancel_withdraws_the_held_deliveries_and_none_is_released(browser: Any, console: Console) -> None:
    writer, notice = await scheduled(browser, console)
    page = (await writer.get(f"/notices/{notice}")).text
    assert 'data-testid="state">예약<' in page and 'id="cancel"' in page
    row = await get_row(console, notice)
    send_now, held = await route(console, row)
    assert send_now == [] and len(held) == 1  # held until its time
    assert (await writer.post(f"/notices/{notice}/cancel")).status_code == 303
    assert (await get_row(console, notice)).state == "cancelled"
    later = NOW + timedelta(days=2)
    assert await console.db().claim_due(later, "test") == []
    await route(console, row)  # the router meets the event again (a replay): what it holds stays withdrawn
    assert await console.db().claim_due(later, "test") == []
    report = (await writer.get(f"/notices/{notice}/report")).text
    assert 'data-key="전체"' in report and "발송 취소" in report
    assert (await writer.post(f"/notices/{notice}/cancel")).status_code == 409  # once


async def test_a_notice_held_after_its_cancel_is_never_released_and_is_closed_as_cancelled(
        browser: Any, console: Console) -> None:
    """The router meets the event after the cancel: what it holds is withdrawn at once, and closed in the ledger
    as the cancel closes the others (suppressed, rule cancelled), so the report counts nothing in progress."""
    writer, notice = await scheduled(browser, console)
    row = await get_row(console, notice)
    assert (await writer.post(f"/notices/{notice}/cancel")).status_code == 303  # before the router routed it
    _, held = await route(console, row)
    assert len(held) == 1
    assert await console.db().claim_due(NOW + timedelta(days=2), "test") == []
    (delivery,) = await console.db().deliveries(event_id=held[0][0].event_id)
    assert (delivery.delivery_id, delivery.status) == (held[0][0].delivery_id, "suppressed")
    assert [(o.state, o.rule, o.to_masked) for o in (await console.db().final_outcomes([delivery.delivery_id]))[
        delivery.delivery_id]] == [("suppressed", "cancelled", held[0][0].masked_to)]
    assert await console.db().hold(held, NOW) == []  # routed again (a replay): already withdrawn, closed once
    assert len((await console.db().final_outcomes([delivery.delivery_id]))[delivery.delivery_id]) == 1


async def test_another_departments_writer_cannot_cancel(browser: Any, console: Console) -> None:
    _, notice = await scheduled(browser, console)
    other = await signed(browser, "other")
    assert (await other.post(f"/notices/{notice}/cancel")).status_code == 404
    assert (await get_row(console, notice)).state == "published"


async def test_the_report_is_the_ledgers_and_its_csv_opens_in_excel(browser: Any, console: Console) -> None:
    await seed(console)
    writer = await signed(browser, "writer")
    notice = await draft(writer)
    await writer.get(f"/notices/{notice}")
    await writer.post(f"/notices/{notice}/submit")
    row = await get_row(console, notice)
    send_now, _held = await route(console, row)  # 2 now (kakao R-0001, email R-0002), 1 held, 2 suppressed
    kakao = next(r for r in send_now if r.channel == "kakao")
    email = next(r for r in send_now if r.channel == "email")
    await console.db().finish([
        DeliveryStatus(delivery_id=kakao.delivery_id, event_id=kakao.event_id, event_type=kakao.event_type,
                       resident_id=kakao.resident_id, channel="sms", state="fallback", at=NOW + timedelta(seconds=40)),
        DeliveryStatus(delivery_id=email.delivery_id, event_id=email.event_id, event_type=email.event_type,
                       resident_id=email.resident_id, channel="email", state="sent", at=NOW + timedelta(seconds=5)),
    ])
    page = (await writer.get(f"/notices/{notice}/report")).text
    total = page.split('data-testid="total"')[1].split("</table>")[0]
    cells = dict(part.split('">', 1) for part in total.split('data-col="')[1:])
    figures = {k: int(v.split("<")[0].replace(",", "")) for k, v in cells.items()}
    assert figures == {"targeted": 5, "sent": 1, "delivered": 0, "fallback": 1, "failed": 0, "suppressed": 2,
                       "held": 1, "dead_lettered": 0, "in_progress": 0}
    assert 'data-key="양평읍"' in page
    answer = await writer.get(f"/notices/{notice}/report.csv")
    assert answer.content.startswith(b"\xef\xbb\xbf") and "charset=utf-8" in answer.headers["content-type"]
    lines = answer.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("구분,항목,대상,발송") and lines[1] == "전체,전체,5,1,0,1,0,2,1,0,0"


async def test_a_cancel_is_published_to_the_status_topic(browser: Any, console: Console) -> None:
    """What a department system following `<prefix>.delivery-status` reads, with a plain Kafka consumer: each
    withdrawn delivery once, with its own masked address, as the router's statuses have theirs."""
    await console.db().upsert_residents([  # 강상면's one resident of the seed gets neighbours, by SMS and e-mail
        resident(7, "강상면"), resident(8, "강상면", email="r8@example.org", channels=["email"])], NOW)
    writer, notice = await scheduled(browser, console)
    row = await get_row(console, notice)
    _, held = await route(console, row)
    assert len({request.masked_to for request, _, _ in held}) >= 3  # several addresses, SMS and e-mail
    assert (await writer.post(f"/notices/{notice}/cancel")).status_code == 303
    records = await statuses_of(console, f"console-{notice}", expect=len(held))
    assert sorted((r["source"], r["type"], r["data"]["state"], r["data"]["rule"], r["data"]["delivery_id"],
                   r["data"]["resident_id"], r["data"]["to_masked"]) for r in records) == sorted(
        ("/notice-hub/console", "hub.delivery.status.v1", "suppressed", "cancelled", request.delivery_id,
         request.resident_id, request.masked_to) for request, _, _ in held)
    # the ledger's log says the same as the topic
    ids = [request.delivery_id for request, _, _ in held]
    logged = await console.db().final_outcomes(ids)
    assert {i: [(o.rule, o.to_masked) for o in logged[i]] for i in ids} == {
        request.delivery_id: [("cancelled", request.masked_to)] for request, _, _ in held}


async def statuses_of(console: Console, event_id: str, *, expect: int, timeout_s: float = 30) -> list[Any]:
    """The status topic's records about `event_id`, from the beginning, until `expect` of them came (and for a
    moment after, so a duplicate would be seen too)."""
    import asyncio
    import json

    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(console.topics.status, bootstrap_servers=console.settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    found: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline, settle = loop.time() + timeout_s, None
        while loop.time() < (settle or deadline):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found += [v for v in (json.loads(r.value) for r in batch) if v.get("subject") == event_id]
            if len(found) >= expect and settle is None:
                settle = loop.time() + 2
    finally:
        await consumer.stop()
    return found


def cells(html: str, table: str = "total") -> dict[str, int]:
    part = html.split(f'data-testid="{table}"')[1].split("</table>")[0]
    found = dict(p.split('">', 1) for p in part.split('data-col="')[1:])
    return {k: int(v.split("<")[0].replace(",", "")) for k, v in found.items()}


async def test_the_live_reports_figures_follow_the_ledger(browser: Any, console: Console) -> None:
    """The report page polls its figures (a partial, counted by the store) while the notice is being sent, and
    says when they will change no more."""
    await seed(console)
    writer = await signed(browser, "writer")
    notice = await draft(writer, districts=["강상면"])  # R-0006 alone, by AlimTalk
    await writer.get(f"/notices/{notice}")
    await writer.post(f"/notices/{notice}/submit")
    page = (await writer.get(f"/notices/{notice}/report")).text
    assert f'data-poll="/notices/{notice}/report/figures"' in page and 'src="/static/poll.js"' in page
    before = (await writer.get(f"/notices/{notice}/report/figures")).text
    assert before.startswith('<div id="figures"') and "<html" not in before  # a fragment, not a page
    assert 'data-done="false"' in before and cells(before)["targeted"] == 0  # nobody routed yet: live
    send_now, _ = await route(console, await get_row(console, notice))
    routed = (await writer.get(f"/notices/{notice}/report/figures")).text
    assert cells(routed)["in_progress"] == 1 and 'data-done="false"' in routed
    (kakao,) = send_now
    status = DeliveryStatus(delivery_id=kakao.delivery_id, event_id=kakao.event_id, event_type=kakao.event_type,
                            resident_id=kakao.resident_id, channel="kakao", state="sent", at=NOW)
    await console.db().finish([status])
    sent = (await writer.get(f"/notices/{notice}/report/figures")).text
    assert (cells(sent)["sent"], cells(sent)["in_progress"]) == (1, 0)
    assert 'data-done="false"' in sent  # Kakao's verdict is still to come
    await console.db().finish([status.model_copy(update={"state": "delivered"})])
    done = (await writer.get(f"/notices/{notice}/report/figures")).text
    assert cells(done, "by-channel")["delivered"] == 1 and 'data-done="true"' in done
    assert (await browser().get(f"/notices/{notice}/report/figures")).status_code == 303  # signed in only
