"""Dead letters someone handled: which entry of the dead-letter topic (topic, partition, offset), who, when and
why. The entry stays in Kafka (a topic is a log); this table says it needs no one's attention any more.

The table is in hub.store.models with the others, so `Store.init()` creates it with the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from hub.store import Store
from hub.store.models import DeadLetterResolutionRow


@dataclass(frozen=True)
class Resolution:
    """Who handled a dead letter, when (aware, UTC), how and why."""

    partition: int
    offset: int
    action: str
    by: str
    at: datetime
    note: str

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"


def _resolution(row: DeadLetterResolutionRow) -> Resolution:
    return Resolution(row.kafka_partition, row.kafka_offset, row.action, row.resolved_by, row.resolved_at, row.note)


async def record_resolutions(store: Store, topic: str, refs: Iterable[tuple[int, int]], *, action: str, by: str,
                             at: datetime, note: str) -> None:
    """Mark these entries (partition, offset) of `topic` handled."""
    values = [{"topic": topic, "kafka_partition": p, "kafka_offset": o, "action": action, "resolved_by": by,
               "resolved_at": at, "note": note} for p, o in refs]
    if not values:
        return
    statement = store._insert(DeadLetterResolutionRow).values(values)
    changed = {c: statement.excluded[c] for c in ("action", "resolved_by", "resolved_at", "note")}
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(statement.on_conflict_do_update(
            index_elements=["topic", "kafka_partition", "kafka_offset"], set_=changed))


async def resolutions(store: Store, topic: str) -> dict[tuple[int, int], Resolution]:
    """Every handled entry of `topic`, by (partition, offset)."""
    query = select(DeadLetterResolutionRow).where(DeadLetterResolutionRow.topic == topic)
    async with store._translate(), store.sessions() as session:
        rows = (await session.scalars(query)).all()
    return {(r.kafka_partition, r.kafka_offset): _resolution(r) for r in rows}


async def count_resolved(store: Store, topic: str, ranges: dict[int, tuple[int, int]]) -> int:
    """How many handled entries of `topic` are still in it: ranges holds, per partition, the offsets the topic
    has now [start, end)."""
    found = await resolutions(store, topic)
    return sum(1 for p, o in found if p in ranges and ranges[p][0] <= o < ranges[p][1])
