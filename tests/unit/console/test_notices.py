"""Composing, checking, approving and publishing a county notice in the console. What was published is read
back from Kafka (the receiving end), never from the console's own account."""

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.core.cloudevents import parse_kafka_message
from hub.core.rendering.sms import euckr_len
from hub.core.topics import Topics
from hub.http.console import Console
from hub.store.staff import NoticeRow
from tests.conftest import read_topic
from tests.unit.console.conftest import draft, draft_form, seed


async def published(console: Console, notice_id: str, *, at_least: int = 0) -> list[Any]:
    """The events of this notice in the broker's notice topic."""
    topic = Topics.of(console.settings).events("notice")
    records = await read_topic(console.settings.kafka_bootstrap_servers, topic, expect=10**9, timeout_s=3)
    mine = [e for r in records if (e := parse_kafka_message(r.value, r.headers or [])).id == f"console-{notice_id}"]
    assert len(mine) >= at_least
    return mine


async def notice_count(console: Console) -> int:
    async with console.db().sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(NoticeRow)) or 0)


async def signed(browser: Any, username: str) -> Any:
    b = browser()
    assert (await b.sign_in(username)).status_code == 303
    return b


REFUSED = [
    ({"title": ""}, "title", "제목을 입력해 주세요"),
    ({"title": "가" * 61}, "title", "60자 이하"),
    ({"summary": "축제에 오세요 🎉"}, "summary", "문자(SMS)로 보낼 수 없는 글자"),
    ({"url": "http://www.yp21.go.kr"}, "url", "https://"),
    ({"districts": []}, "districts", "읍면을 하나 이상"),
    ({"districts": ["서울시"]}, "districts", "알 수 없는 읍면"),
    ({"target": "interests", "interests": "농업; DROP"}, "interests", "쉼표로 나누어"),
    ({"target": "list"}, "list_file", "CSV 파일을 올려"),
    ({"when": "later", "send_at": "2026-11-25T09:00"}, "send_at", "1분 뒤 이후"),
    ({"when": "later", "send_at": "내일 아침"}, "send_at", "한국 표준시"),
    ({"category": "spam"}, "category", "정보성 또는 광고성"),
]


@pytest.mark.parametrize(("change", "field", "message"), REFUSED)
async def test_a_refused_form_says_why_beside_the_field_and_saves_nothing(
        browser: Any, console: Console, change: dict[str, Any], field: str, message: str) -> None:
    b = await signed(browser, "writer")
    await b.get("/notices/new")
    answer = await b.post("/notices", draft_form(**change), follow_redirects=False)
    assert answer.status_code == 422
    assert f'id="{field}-error">' in answer.text and message in answer.text
    assert f'aria-describedby="{field}-error"' in answer.text  # the message is tied to its field
    assert await notice_count(console) == 0


async def test_a_csv_of_ids_and_phones_is_the_audience(browser: Any, console: Console) -> None:
    await seed(console)
    b = await signed(browser, "writer")
    await b.get("/notices/new")
    csv = "resident_id\r\nR-0001\r\n010-1234-0006\r\n010-9999-0000\r\n".encode("cp949")
    answer = await b.post("/notices", draft_form(target="list", districts=[]), follow_redirects=False,
                          files={"list_file": ("명단.csv", csv, "text/csv")})
    assert answer.status_code == 303
    page = (await b.get(answer.headers["location"])).text
    # R-0001, R-0006 (by phone) and a number not in the directory: all three named, all three get it
    assert 'data-testid="receiving">3<' in page


async def test_the_check_shows_who_gets_it_who_does_not_and_why(browser: Any, console: Console) -> None:
    await seed(console)
    b = await signed(browser, "writer")
    page = (await b.get(f"/notices/{await draft(b)}")).text
    assert 'data-testid="receiving">3<' in page and 'data-testid="not-receiving">2<' in page
    assert 'data-testid="count-now">2<' in page and 'data-testid="held-quiet-hours">1<' in page
    assert 'data-testid="suppressed-opted-out">1<' in page
    assert 'data-testid="suppressed-no-informational-consent">1<' in page
    assert 'data-testid="channel-kakao">2<' in page and 'data-testid="channel-email">1<' in page
    # one preview per channel and locale in use, as the renderer makes it
    assert 'data-testid="preview-kakao-ko"' in page and 'data-testid="preview-email-en"' in page
    assert "YP_NOTICE_PUB_01" in page


async def test_sms_previews_carry_their_euc_kr_byte_count_and_ads_what_the_law_adds(
        browser: Any, console: Console) -> None:
    from hub.core.residents import Consents
    from tests.unit.console.conftest import resident

    await console.db().upsert_residents([resident(7, "용문면", channels=["sms"],
                                                  consents=Consents(advertising=True))], console.clock())
    b = await signed(browser, "writer")
    page = (await b.get(f"/notices/{await draft(b, districts=['용문면'], category='advertising')}")).text
    assert 'data-testid="preview-sms-ko"' in page and 'data-testid="preview-kakao-ko"' not in page
    section = page.split('data-testid="preview-sms-ko"')[1].split("</section>")[0]
    text = section.split('<pre class="preview">')[1].split("</pre>")[0]
    import html

    text = html.unescape(text)
    assert text.startswith("(광고)") and "무료거부" in text
    assert f"{euckr_len(text):,}/2,000 바이트 (EUC-KR)" in section
    assert "광고성 정보" in page  # needs approval


async def test_an_unregistered_alimtalk_template_stops_sending(browser: Any, console: Console, tmp_path: Any) -> None:
    import shutil

    from hub.core.rendering.renderer import TEMPLATES_DIR, Renderer

    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    (tmp_path / "templates" / "notice.published.v1" / "kakao.toml").unlink()
    console.renderer = Renderer(tmp_path / "templates", console.renderer.identity)
    await seed(console)
    b = await signed(browser, "writer")
    notice = await draft(b, districts=["강상면"])
    page = (await b.get(f"/notices/{notice}")).text
    assert "알림톡 템플릿이 등록되어 있지 않습니다" in page and 'id="submit"' not in page
    assert (await b.post(f"/notices/{notice}/submit")).status_code == 409
    assert await published(console, notice) == []


async def test_a_double_submit_publishes_once(browser: Any, console: Console) -> None:
    await seed(console)
    b = await signed(browser, "writer")
    await b.get("/notices/new")
    form = draft_form(districts=["강상면"])  # one resident: no approval needed
    first, again = [await b.post("/notices", form, follow_redirects=False) for _ in range(2)]
    assert first.headers["location"] == again.headers["location"]  # one draft for one form
    notice = first.headers["location"].rsplit("/", 1)[-1]
    answers = await asyncio.gather(*(b.post(f"/notices/{notice}/submit", follow_redirects=False)
                                     for _ in range(3)))
    assert {a.status_code for a in answers} == {303}
    (event,) = await published(console, notice, at_least=1)
    assert event.source == "/departments/pr" and event.type == "notice.published.v1"
    assert event.data["audience"]["districts"] == ["강상면"] and event.data["notice_id"] == notice
    page = (await b.get(f"/notices/{notice}")).text
    assert 'data-testid="state">발송 중<' in page


async def test_approval_the_approver_not_the_author_and_a_return_needs_a_comment(
        browser: Any, console: Console) -> None:
    await seed(console)
    writer = await signed(browser, "writer")
    notice = await draft(writer, target="everyone", districts=[])
    await writer.get(f"/notices/{notice}")
    assert (await writer.post(f"/notices/{notice}/submit")).status_code == 303
    page = (await writer.get(f"/notices/{notice}")).text
    assert 'data-testid="state">결재 대기<' in page and "군 전체 주민 대상" in page
    assert await published(console, notice) == []
    assert (await writer.post(f"/notices/{notice}/approve")).status_code == 403  # a writer holds no approval
    approver = await signed(browser, "approver")
    await approver.get(f"/notices/{notice}")
    assert (await approver.post(f"/notices/{notice}/return", {"comment": " "})).status_code == 422
    assert (await approver.post(f"/notices/{notice}/return", {"comment": "링크를 확인해 주세요"})).status_code == 303
    page = (await writer.get(f"/notices/{notice}")).text
    assert 'data-testid="state">반려<' in page and "링크를 확인해 주세요" in page
    assert await published(console, notice) == []
    assert (await writer.post(f"/notices/{notice}/submit")).status_code == 303  # again, to the approver
    await approver.get(f"/notices/{notice}")
    assert (await approver.post(f"/notices/{notice}/approve")).status_code == 303
    (event,) = await published(console, notice, at_least=1)
    assert event.data["audience"]["everyone"] is True and event.source == "/departments/pr"


async def test_an_approver_cannot_approve_their_own_notice(browser: Any, console: Console) -> None:
    await seed(console)
    approver = await signed(browser, "approver")
    notice = await draft(approver, target="everyone", districts=[])
    await approver.get(f"/notices/{notice}")
    await approver.post(f"/notices/{notice}/submit")
    answer = await approver.post(f"/notices/{notice}/approve")
    assert answer.status_code == 403 and "자기 소식을 결재할 수 없습니다" in answer.text
    assert await published(console, notice) == []


async def test_the_audit_log_has_who_what_and_where(browser: Any, console: Console) -> None:
    await seed(console)
    writer = await signed(browser, "writer")
    notice = await draft(writer, districts=["강상면"])
    await writer.get(f"/notices/{notice}")
    await writer.post(f"/notices/{notice}/submit")
    admin = await signed(browser, "admin")
    page = (await admin.get("/audit")).text
    for action in ("notice-drafted", "notice-published", "sign-in"):
        assert action in page
    assert json.dumps(notice)[1:-1] in page and "127.0.0.1" in page


def _fallback_shown(page: str, locale: str = "ko") -> tuple[str, str, str] | None:
    """(kind, byte label, text) of the 대체발송 preview an AlimTalk preview shows, if any."""
    import html
    import re

    found = re.search(rf'data-testid="fallback-{locale}".*?data-testid="fallback-kind">([^<]+)<.*?'
                      r'data-testid="fallback-bytes">([^<]+)<.*?data-testid="fallback-text">(.*?)</pre>', page, re.S)
    return (found.group(1), html.unescape(found.group(2)), html.unescape(found.group(3))) if found else None


@pytest.mark.parametrize(("summary", "kind"), [
    ("11월 29일 양평읍 물맑은시장 일대에서 김장축제가 열립니다.", "LMS"),
    ("짧은 안내", "SMS"),
    ("양평군 김장축제 안내. " * 35, "LMS"),
])
async def test_the_alimtalk_preview_shows_its_fallback_sms_as_the_hub_sends_it(
        browser: Any, console: Console, summary: str, kind: str) -> None:
    """What the kakao sender sends when AlimTalk fails (대체발송), with its EUC-KR byte count: the same text as
    the fallback delivery of a resident this notice goes to by AlimTalk, counted in bytes by the test itself."""
    from hub.pipeline.fallback import fallback_request
    from tests.unit.console.test_cancel_and_report import get_row, route

    await seed(console)
    b = await signed(browser, "writer")
    notice = await draft(b, summary=summary.strip(), url="" if kind == "SMS" else draft_form()["url"],
                         title="김장" if kind == "SMS" else draft_form()["title"])
    page = (await b.get(f"/notices/{notice}")).text
    shown = _fallback_shown(page)
    assert shown is not None, page[page.find("preview-kakao"):][:1500]
    shown_kind, label, text = shown
    await b.post(f"/notices/{notice}/submit")
    send_now, held = await route(console, await get_row(console, notice))
    by_alimtalk = [r for r in [*send_now, *(r for r, _, _ in held)] if r.channel == "kakao"]
    assert len(by_alimtalk) == 2  # R-0001 now, R-0005 after its quiet hours
    sent = fallback_request(by_alimtalk[0])
    assert sent is not None and (shown_kind, text) == (sent.content.kind, sent.content.text) and shown_kind == kind
    assert label.startswith(f"{len(text.encode('euc-kr')):,}/") and label.endswith("바이트 (EUC-KR)")
    assert "· 2건" in page.split('data-testid="fallback-ko"')[1].split("</h4>")[0]


async def test_advertising_has_no_alimtalk_and_so_no_fallback(browser: Any, console: Console) -> None:
    await seed(console)
    b = await signed(browser, "writer")
    page = (await b.get(f"/notices/{await draft(b, category='advertising')}")).text
    assert 'data-testid="preview-kakao' not in page and "data-testid=\"fallback-" not in page
