"""A notice's figures, counted by the store from the delivery ledger (deliveries, their outcome log, held
deliveries): what the staff console's report shows and exports. Grouped in SQL, never recounted by a page.

The counts, per delivery and per resident the router left without one:
- targeted: every resident the router considered (a delivery, or an outcome saying why none);
- sent (accepted by the gateway), delivered (Kakao's verdict), fallback (대체발송: the SMS after a failed
  AlimTalk), failed, dead-lettered: the delivery's status;
- suppressed: a rule kept it from being sent (at routing, or just before the send; a cancel too);
- held: waiting in the store for its time; in progress: queued, being sent or retried."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, select

from hub.store import Store
from hub.store.models import DeliveryLogRow, DeliveryRow, ResidentRow, ScheduledRow

COLUMNS = ("targeted", "sent", "delivered", "fallback", "failed", "suppressed", "held", "dead_lettered",
           "in_progress")
LABELS = {"targeted": "대상", "sent": "발송", "delivered": "도달(카카오 확인)", "fallback": "대체발송",
          "failed": "실패", "suppressed": "규칙에 의한 제외", "held": "보류(예약·야간·방해금지)",
          "dead_lettered": "데드레터", "in_progress": "진행 중"}
_STATUS = {"sent": "sent", "delivered": "delivered", "fallback": "fallback", "failed": "failed",
           "suppressed": "suppressed", "dead-lettered": "dead_lettered", "queued": "in_progress",
           "sending": "in_progress", "retrying": "in_progress"}
NO_DISTRICT = "(읍면 정보 없음)"


@dataclass
class Counts:
    values: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))

    def add(self, column: str, n: int) -> None:
        self.values[column] += n


@dataclass
class NoticeReport:
    total: Counts
    by_channel: dict[str, Counts]
    by_district: dict[str, Counts]
    suppressed_rules: dict[str, int]
    last_sent_at: datetime | None


async def notice_report(store: Store, event_id: str) -> NoticeReport:
    report = NoticeReport(Counts(), {}, {}, {}, None)

    def count(column: str, n: int, channel: str | None, district: str | None) -> None:
        report.total.add(column, n)
        if channel:
            report.by_channel.setdefault(channel, Counts()).add(column, n)
        report.by_district.setdefault(district or NO_DISTRICT, Counts()).add(column, n)

    district = ResidentRow.district
    async with store._translate(), store.sessions() as session:
        deliveries = (await session.execute(
            select(DeliveryRow.status, DeliveryRow.channel, district, func.count(), func.max(DeliveryRow.sent_at))
            .outerjoin(ResidentRow, ResidentRow.resident_id == DeliveryRow.resident_id)
            .where(DeliveryRow.event_id == event_id)
            .group_by(DeliveryRow.status, DeliveryRow.channel, district))).all()
        held = (await session.execute(
            select(ScheduledRow.channel, district, func.count())
            .outerjoin(ResidentRow, ResidentRow.resident_id == ScheduledRow.resident_id)
            .where(ScheduledRow.event_id == event_id, ScheduledRow.state.in_(("pending", "releasing")))
            .group_by(ScheduledRow.channel, district))).all()
        unrouted = (await session.execute(  # residents the router gave no delivery, and the rule that said so
            select(DeliveryLogRow.rule, district, func.count(func.distinct(DeliveryLogRow.resident_id)))
            .outerjoin(ResidentRow, ResidentRow.resident_id == DeliveryLogRow.resident_id)
            .where(and_(DeliveryLogRow.event_id == event_id, DeliveryLogRow.delivery_id.is_(None),
                        DeliveryLogRow.state == "suppressed"))
            .group_by(DeliveryLogRow.rule, district))).all()
        rules = (await session.execute(
            select(DeliveryRow.detail, func.count()).where(DeliveryRow.event_id == event_id,
                                                           DeliveryRow.status == "suppressed")
            .group_by(DeliveryRow.detail))).all()
    for status, channel, where, n, last in deliveries:
        count("targeted", n, channel, where)
        count(_STATUS.get(status, "in_progress"), n, channel, where)
        if last is not None and (report.last_sent_at is None or last > report.last_sent_at):
            report.last_sent_at = last
    for channel, where, n in held:  # a held delivery is queued in the ledger: held, not in progress
        count("held", n, channel, where)
        count("in_progress", -n, channel, where)
    for rule, where, n in unrouted:
        count("targeted", n, None, where)
        count("suppressed", n, None, where)
        report.suppressed_rules[rule or "-"] = report.suppressed_rules.get(rule or "-", 0) + n
    for detail, n in rules:
        report.suppressed_rules[detail or "-"] = report.suppressed_rules.get(detail or "-", 0) + n
    return report


async def progress(store: Store, event_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per event: (residents routed so far, deliveries not finished: queued, sending or retrying)."""
    if not event_ids:
        return {}
    async with store._translate(), store.sessions() as session:
        rows = (await session.execute(
            select(DeliveryRow.event_id, func.count(),
                   func.sum(case((DeliveryRow.status.in_(("queued", "sending", "retrying")), 1), else_=0)))
            .where(DeliveryRow.event_id.in_(event_ids)).group_by(DeliveryRow.event_id))).all()
        logged = (await session.execute(
            select(DeliveryLogRow.event_id, func.count())
            .where(DeliveryLogRow.event_id.in_(event_ids), DeliveryLogRow.delivery_id.is_(None))
            .group_by(DeliveryLogRow.event_id))).all()
    out = {e: (int(n), int(open_ or 0)) for e, n, open_ in rows}
    for e, n in logged:
        routed, open_ = out.get(e, (0, 0))
        out[e] = (routed + int(n), open_)
    return out
