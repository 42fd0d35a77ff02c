"""The time rule, in the pure code: one KST and one utcnow; times shown to a person are KST and say so; what
travels on Kafka carries its offset; the rules read the clock in KST whatever zone it is given in."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.core.audience import decide, in_window
from hub.core.delivery import DeliveryRequest, DeliveryStatus
from hub.core.errors import NaiveDatetimeError
from hub.core.rendering.sms import SmsContent
from hub.core.residents import QuietHours, Resident
from hub.core.time import KST, as_utc, kst, kst_from_iso
from tests.property.strategies import any_zones as ZONES
from tests.property.strategies import offsets as OFFSETS

HUB = Path(__file__).resolve().parents[2] / "hub"
_dates = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
instants = st.builds(lambda d, tz: d.replace(tzinfo=tz), _dates, ZONES)
# RFC 3339 offsets are whole minutes (a zone's local mean time of 1912, -00:16:08, is not one)
rfc3339_instants = st.builds(lambda d, tz: d.replace(tzinfo=tz), _dates, OFFSETS)


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(HUB.rglob("*.py"))]


def test_one_kst_and_one_utcnow() -> None:
    kst_defs, utcnow_defs = [], []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "KST" for t in node.targets):
                kst_defs.append(str(path.relative_to(HUB)))
            if isinstance(node, ast.FunctionDef) and node.name == "utcnow":
                utcnow_defs.append(str(path.relative_to(HUB)))
    assert (kst_defs, utcnow_defs) == (["core/time.py"], ["core/time.py"])


def test_no_naive_now_in_the_hub() -> None:
    naive = re.compile(r"datetime\.(now|today)\(\)|datetime\.utcnow\(|utcfromtimestamp\(|date\.today\(\)")
    found = [f"{p.relative_to(HUB)}:{n}: {line.strip()}" for p in sorted(HUB.rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if naive.search(line)]
    assert found == []


@given(when=instants)
def test_a_time_for_a_person_is_in_kst_and_says_so(when: datetime) -> None:
    local = when.astimezone(KST)
    assert kst(when) == f"{local:%Y-%m-%d %H:%M} KST"
    assert kst(when, "%H:%M:%S") == f"{local:%H:%M:%S} KST"
    assert kst_from_iso(when.isoformat()) == kst(when)
    assert as_utc(when) == when and as_utc(when).utcoffset() == timedelta(0)


def test_a_naive_time_is_never_guessed() -> None:
    naive = datetime(2026, 11, 24, 22, 30)
    for convert in (as_utc, kst):
        with pytest.raises(NaiveDatetimeError):
            convert(naive)  # type: ignore[operator]
    assert kst(datetime(2026, 11, 24, 13, 30, tzinfo=UTC)) == "2026-11-24 22:30 KST"
    assert kst_from_iso("2026-11-24T22:30:00") == "2026-11-24T22:30:00"  # shown as written, not guessed
    assert kst_from_iso("not a time") == "not a time"


# --------------------------------------------------------------------------- on Kafka: with an offset


def _request(**times: Any) -> dict[str, Any]:
    return {"delivery_id": "d" * 32, "notice_key": "/pr#n-1", "event_id": "n-1", "event_type": "notice.published.v1",
            "event_source": "/pr", "resident_id": "R-1", "channel": "sms", "to": "01040000001",
            "content": SmsContent(kind="SMS", text="알림", byte_count=4).model_dump(), **times}


@pytest.mark.parametrize("field", ["requested_at", "event_time"])
def test_a_delivery_request_without_an_offset_is_refused(field: str) -> None:
    with pytest.raises(ValidationError):
        DeliveryRequest.from_kafka(json.dumps(_request(**{field: "2026-11-24T22:30:00"})).encode())
    ok = DeliveryRequest.from_kafka(json.dumps(_request(**{field: "2026-11-24T22:30:00+09:00"})).encode())
    assert getattr(ok, field) == datetime(2026, 11, 24, 13, 30, tzinfo=UTC)


@given(when=rfc3339_instants)
def test_a_delivery_request_keeps_its_instants_across_kafka(when: datetime) -> None:
    sent = DeliveryRequest.model_validate(_request(requested_at=when, event_time=when))
    got = DeliveryRequest.from_kafka(sent.to_kafka())
    assert got.requested_at == when and got.event_time == when
    assert got.requested_at.utcoffset() is not None


def test_a_status_event_says_its_time_with_an_offset() -> None:
    with pytest.raises(ValidationError):
        DeliveryStatus(delivery_id=None, event_id="n-1", event_type="t", resident_id="R-1", channel=None,
                       state="deferred", at=datetime(2026, 11, 24, 22, 30))
    status = DeliveryStatus(delivery_id=None, event_id="n-1", event_type="t", resident_id="R-1", channel=None,
                            state="deferred", at=datetime(2026, 11, 24, 22, 30, tzinfo=KST))
    event = json.loads(status.to_cloudevent("/notice-hub/router"))
    for text in (event["time"], event["data"]["at"]):
        assert datetime.fromisoformat(text) == datetime(2026, 11, 24, 13, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- the rules read the clock in KST


times_of_day = st.times()
seconds_of_day = st.times().map(lambda t: t.replace(microsecond=0))  # quiet hours are kept to the second
aware_times = st.builds(lambda t, tz: t.replace(tzinfo=tz), st.times(), OFFSETS)


@given(start=st.one_of(times_of_day, aware_times), end=st.one_of(times_of_day, aware_times), now=instants)
def test_quiet_hours_written_with_an_offset_are_kst_times_of_day(start: time, end: time, now: datetime) -> None:
    """Quiet hours given with an offset (an import, a preferences call) mean the KST time they name; they
    never make the rules raise (which would dead-letter a county-wide notice for one resident's setting)."""
    try:
        quiet = QuietHours(start=start, end=end)
    except ValidationError:
        assume(False)  # start and end name the same KST time
    as_kst = [_kst_time(t) for t in (start, end)]
    assert (quiet.start, quiet.end) == tuple(as_kst)
    decision = decide(advertising=False, urgent=False, segment=True,
                      resident=Resident(resident_id="R-1", quiet_hours=quiet), now=now)
    assert (decision.action == "defer") == in_window(now.astimezone(KST).time(), *as_kst)


def _kst_time(t: time) -> time:
    if t.utcoffset() is not None:
        t = datetime.combine(datetime(2026, 1, 1), t).astimezone(KST).time()
    return t.replace(microsecond=0, tzinfo=None)


@given(start=seconds_of_day, end=seconds_of_day, now=instants)
def test_quiet_hours_hold_until_their_end_to_the_second(start: time, end: time, now: datetime) -> None:
    assume(start != end)
    resident = Resident(resident_id="R-1", quiet_hours=QuietHours(start=start, end=end))
    decision = decide(advertising=False, urgent=False, segment=True, resident=resident, now=now)
    if decision.action == "send":
        assert not in_window(now.astimezone(KST).time(), start, end)
        return
    assert decision.until is not None
    until = decision.until.astimezone(KST)
    assert until.time() == end and timedelta(0) < until - now <= timedelta(days=1)
    assert decision.reason.endswith(f"until {kst(decision.until)}")
