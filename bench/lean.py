"""The reference pipeline: what a direct notice costs when written by hand, lean, with aiokafka directly.

`make bench` runs it in its own OS process (`python -m bench.lean ...`), beside `hub run`, on the same broker
and the same fake SENS gateway, and reports the hub's figures against it. It must therefore be correct (no
step the hub must take is skipped: tests/integration/test_bench_reference.py holds it to that) and fast (no
step is slower than a careful hand-written one needs to be).

What it does, for `water.bill.issued.v1` events on `<prefix>.events.water`, in one process and one event loop:

router (group `<prefix>.lean.router`)
  1. consumes events in batches (getmany, up to 500; it returns as soon as records are there: no batch timeout
     is waited out when idle);
  2. reads each record as a binary-mode CloudEvent (ce_* headers, content-type application/json) and validates
     the envelope (specversion 1.0, id, source, type, time as RFC 3339 with its offset, dedupkey) and the data
     (pydantic models with the fields and constraints of the hub's `water.bill.issued.v1`: recipients 1-1,000
     with resident id, name, Korean mobile number, e-mail, channels, locale; customer_no, period, amount_won,
     due_date, account, send_at). A record that fails goes to `<prefix>.dlq` with the reason; the others go on;
  3. looks up the batch's named residents in the directory (one query) and leaves out those who opted out (a
     `suppressed` outcome), as the hub does for an informational notice;
  4. renders the hub's own SMS templates (`hub/templates/water.bill.issued.v1/sms.j2` and `sms.subject.j2`)
     with Jinja2's SandboxedEnvironment and StrictUndefined and the hub's context and options; when only the
     resident's name cannot be sent, it greets them without it, as the hub does;
  5. counts EUC-KR bytes: SMS up to 90, LMS up to 2,000 (with a subject of at most 40), refusing characters
     outside EUC-KR (an event whose message cannot be sent goes to the dead-letter topic, as in the hub);
  6. registers the deliveries in a SQLite dedup ledger (WAL, synchronous=NORMAL, as the hub's store) with one
     executemany per batch, the delivery id sha256(notice key, resident, channel) as the hub's; a delivery
     already finished is not sent again (a `deduplicated` outcome);
  7. produces one delivery request per resident to `<prefix>.deliveries.sms` (keyed by resident) and one status
     per outcome that is not a send, packed per partition into the producer's batches (bench/lean_io.py Outbox);
     waits for the broker's acknowledgements (acks=all, idempotent producer, as the hub's), then commits the
     batch's offsets.

sender (group `<prefix>.lean.sender`)
  8. consumes the requests in batches, validates each (pydantic), claims them in the ledger (one transaction:
     a delivery already finished is not sent again; one left `sending` by a process that died is sent again,
     as the hub does for SENS, which has no idempotency key), and looks their residents up in the directory
     again (an opt-out since routing takes effect at once);
  9. calls SENS (`POST /sms/v2/services/{id}/messages`, signed with x-ncp-apigw-signature-v2) with up to 100
     messages of one type per call, several calls in flight at once, a resident's deliveries in order;
 10. records each call's outcomes as soon as it answers (ledger row and outcome log, one transaction), produces
     one status CloudEvent per delivery to `<prefix>.delivery-status` (structured mode, the hub's format), waits
     for the acknowledgements, then commits the batch's offsets.

What it leaves out, beside the hub, and why that is fair for the benchmark's notices:
- one event type and one channel: water bills by SMS/LMS. The hub's choice of type, template set and channel is
  a dictionary look-up and a loop over at most three channels per resident. A recipient whose preferred channel
  with a contact point is not SMS is dead-lettered here (the hub would send AlimTalk or e-mail).
- no holds: no quiet hours, send_at, night rule or scheduler. A water bill is informational, so only a
  resident's quiet hours or a send_at could hold it; the benchmark's residents are not in the directory and its
  events have no send_at, so the hub holds nothing either. An event with send_at is dead-lettered here.
- no advertising rules ("(광고)", consent): a water bill is never advertising.
- no retry tiers, circuit breaker, rate limit or AlimTalk fallback: the fake gateway never fails in the
  benchmark, and the hub's are not on the path of a call that succeeds. A failed gateway call stops the
  reference with its offsets uncommitted (redelivered on restart: at-least-once, the ledger deduplicates).
  The benchmark gives the hub no SENS rate limit either (HUB_RATE_LIMITS_PER_S={}).
- one process per ledger: a row found `sending` was left by a process that died. The hub's claims also tell
  the live senders of several processes apart (owners, heartbeats, leases); the benchmark runs one hub process.
  A request found finished gets a `deduplicated` status; the hub also publishes the original statuses again.
- a directory of resident id, phone and opt-out only (the hub's also holds channels, consents, quiet hours,
  locale): the benchmark's residents are not in it, so both look up and find nobody.
- binary-mode CloudEvents only (the hub also reads structured mode; parsing either costs the same), and no
  I-JSON screening beyond what pydantic's JSON parser refuses.
- no metrics, ops HTTP server, lag sampling or logs per batch (the hub's bench runs with metrics on: that is
  part of what the hub must carry).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError

from bench.lean_io import CALLS_IN_FLIGHT, Ledger, Outbox, Sens, SensConfig
from bench.lean_rules import (
    DEFAULT_ORDER,
    FINAL,
    TEMPLATES_DIR,
    Envelope,
    Outcome,
    Recipient,
    Refused,
    Request,
    Row,
    Templates,
    WaterBill,
    delivery_id,
    masked,
    read_event,
    status_event,
)

logger = logging.getLogger(__name__)

MAX_RECORDS = 500  # per batch, as the hub's HUB_BATCH_MAX_RECORDS
SENS_MAX = 100  # messages per SENS call
ROUTER, SENDER = "/notice-hub/lean/router", "/notice-hub/lean/sender/sms"  # the sources of their status events
JSON = (("content-type", b"application/json"),)

# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class Config:
    bootstrap: str
    prefix: str
    db: Path
    sens: SensConfig
    partitions: int = 6

    def topic(self, name: str) -> str:
        """The hub's topic names under this prefix: events.water, deliveries.sms, delivery-status, dlq."""
        return f"{self.prefix}.{name}"


class _Assigned(ConsumerRebalanceListener):
    """Tells when the consumer's group has given it its partitions (the reference is then ready)."""

    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned.set()


class Lean:
    def __init__(self, config: Config, templates_dir: Path = TEMPLATES_DIR) -> None:
        self.config = config
        self.templates = Templates(templates_dir)
        self.ledger = Ledger(config.db)
        self.sens = Sens(config.sens)
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap, acks="all", enable_idempotence=True,
                                         linger_ms=5, max_batch_size=256 * 1024)
        self.partitions: dict[str, list[int]] = {}
        self.requests_topic, self.status_topic = config.topic("deliveries.sms"), config.topic("delivery-status")
        self._calls = asyncio.Semaphore(CALLS_IN_FLIGHT)
        self._listeners: list[_Assigned] = []

    def _consumer(self, topic: str, role: str) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap, group_id=f"{self.config.prefix}.lean.{role}",
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        self._listeners.append(_Assigned())
        consumer.subscribe([topic], listener=self._listeners[-1])
        return consumer

    async def create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.config.bootstrap)
        await admin.start()
        try:
            for name in ("events.water", "deliveries.sms", "delivery-status", "dlq"):
                try:
                    await admin.create_topics([NewTopic(self.config.topic(name), self.config.partitions, 1)])
                except TopicAlreadyExistsError:
                    pass
        finally:
            await admin.close()

    async def run(self) -> None:
        """Until `stopping` is set: then the batches in hand finish and commit, and everything closes. A failure
        of either loop stops both, offsets uncommitted for the batches in hand."""
        await self.create_topics()
        await self.ledger.open()
        await self.producer.start()
        for topic in (self.requests_topic, self.status_topic):
            self.partitions[topic] = sorted(await self.producer.partitions_for(topic))
        router = self._consumer(self.config.topic("events.water"), "router")
        sender = self._consumer(self.requests_topic, "sender")
        await router.start()
        await sender.start()
        loops = [asyncio.create_task(self._loop(router, self.route)), asyncio.create_task(self._loop(sender, self.send))]
        try:
            assigned = asyncio.gather(*(listener.assigned.wait() for listener in self._listeners))
            waited: list[asyncio.Future[Any]] = [assigned, *loops]
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            if not assigned.done():  # a loop failed first
                assigned.cancel()
            else:
                self.ready.set()
            await asyncio.gather(*loops)
        finally:
            self.stopping.set()
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await router.stop()
            await sender.stop()
            await self.producer.stop()
            await self.sens.close()
            await self.ledger.close()

    async def _loop(self, consumer: AIOKafkaConsumer, handle: Callable[[list[Any]], Awaitable[None]]) -> None:
        while not self.stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
            if not batches:
                continue
            await handle([r for records in batches.values() for r in records])  # produced records acknowledged
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})

    async def _dead_letter(self, record: Any, reason: str) -> asyncio.Future[Any]:
        headers = [*(record.headers or ()), ("lean_error", reason[:500].encode()), ("lean_topic", record.topic.encode())]
        return await self.producer.send(self.config.topic("dlq"), record.value, key=record.key, headers=headers)

    # -- router

    async def route(self, records: list[Any]) -> None:
        acks: list[asyncio.Future[Any]] = []
        events: list[tuple[Any, Envelope, WaterBill]] = []
        for record in records:
            try:
                envelope, data = read_event(record.headers or (), record.value)
                if data.send_at is not None:
                    raise Refused("send_at: the reference holds nothing")
                events.append((record, envelope, data))
            except Refused as e:
                acks.append(await self._dead_letter(record, str(e)))
        directory = await self.ledger.residents(r.resident_id for _, _, d in events for r in d.recipients)
        sends: list[tuple[Row, bytes]] = []
        skipped: list[Outcome] = []
        for record, envelope, data in events:
            try:
                planned, opted_out = self._plan(envelope, data, directory)
            except Refused as e:
                acks.append(await self._dead_letter(record, str(e)))
                continue
            sends += planned
            skipped += opted_out
        unique = {row[0]: row for row, _ in sends}
        done = await self.ledger.register(list(unique.values()), skipped)  # logs the skipped outcomes too
        out = Outbox(self.producer, self.partitions)
        for row, request in sends:
            if row[0] in done or unique.pop(row[0], None) is None:  # finished before, or twice in this batch
                outcome: Outcome = (row[0], row[2], row[3], "deduplicated", "this notice was already handled", None, 1)
                await out.add(self.status_topic, row[3].encode(), status_event(ROUTER, outcome, to_masked=row[4]))
            else:
                await out.add(self.requests_topic, row[3].encode(), request, JSON)
        for outcome in skipped:
            await out.add(self.status_topic, outcome[2].encode(), status_event(ROUTER, outcome))
        await asyncio.gather(*acks, *await out.flush())

    def _plan(self, envelope: Envelope, data: WaterBill, directory: dict[str, tuple[str | None, bool]]
              ) -> tuple[list[tuple[Row, bytes]], list[Outcome]]:
        """Each named resident once (the first mention): a delivery request, or an outcome if they opted out."""
        fields = data.model_dump(mode="python", exclude={"recipients"})
        first: dict[str, Recipient] = {}
        for recipient in data.recipients:
            first.setdefault(recipient.resident_id, recipient)
        sends: list[tuple[Row, bytes]] = []
        opted_out: list[Outcome] = []
        for recipient in first.values():
            entry = directory.get(recipient.resident_id)
            if entry is not None and entry[1]:
                opted_out.append((None, envelope.id, recipient.resident_id, "suppressed",
                                  "주민이 수신을 거부함 (the resident opted out)", None, 1))
                continue
            phone = recipient.phone or (entry[0] if entry else None)
            if self._channel(recipient, phone) != "sms":
                raise Refused(f"recipient {recipient.resident_id}: the reference sends SMS only")
            assert phone is not None
            try:
                sms = self.templates.render(envelope, fields, recipient)
            except Refused:
                if not recipient.name:
                    raise
                sms = self.templates.render(envelope, fields, recipient.model_copy(update={"name": None}))
            did = delivery_id(envelope.notice_key, recipient.resident_id, "sms")
            request = json.dumps({
                "delivery_id": did, "notice_key": envelope.notice_key, "event_id": envelope.id,
                "resident_id": recipient.resident_id, "to": phone, "kind": sms.kind, "subject": sms.subject,
                "text": sms.text, "event_time": envelope.time.isoformat() if envelope.time else None,
            }, ensure_ascii=False).encode()
            sends.append(((did, envelope.notice_key, envelope.id, recipient.resident_id, masked(phone)), request))
        return sends, opted_out

    @staticmethod
    def _channel(recipient: Recipient, phone: str | None) -> str | None:
        for channel in recipient.channels or DEFAULT_ORDER:
            if recipient.email if channel == "email" else phone:
                return channel
        return None

    # -- sender

    async def send(self, records: list[Any]) -> None:
        acks: list[asyncio.Future[Any]] = []
        batch: dict[str, Request] = {}
        for record in records:
            try:
                request = Request.model_validate_json(record.value or b"")
            except ValidationError as e:
                acks.append(await self._dead_letter(record, f"not a delivery request: {e.errors(include_url=False)[:3]}"))
                continue
            batch.setdefault(request.delivery_id, request)  # the same delivery twice in a batch: once
        rows = [(r.delivery_id, r.notice_key, r.event_id, r.resident_id, masked(r.to)) for r in batch.values()]
        claims = await self.ledger.claim(rows)
        directory = await self.ledger.residents(r.resident_id for r in batch.values())
        decided: list[Outcome] = []
        by_resident: dict[str, list[Request]] = defaultdict(list)
        for request in batch.values():
            found, attempt = claims[request.delivery_id]
            if found in FINAL:
                decided.append((request.delivery_id, request.event_id, request.resident_id, "deduplicated",
                                "this delivery was already handled", None, attempt - 1))
            elif (entry := directory.get(request.resident_id)) is not None and entry[1]:
                decided.append((request.delivery_id, request.event_id, request.resident_id, "suppressed",
                                "at send time: the resident opted out", None, attempt))
            else:
                by_resident[request.resident_id].append(request)
        if decided:
            await self.ledger.finish([o for o in decided if o[3] == "suppressed"])
            out = Outbox(self.producer, self.partitions)
            for outcome in decided:
                await out.add(self.status_topic, outcome[2].encode(), status_event(SENDER, outcome))
            acks += await out.flush()
        for round_ in itertools.zip_longest(*by_resident.values()):  # a resident's i-th delivery goes in round i
            calls = []
            kinds: dict[str, list[Request]] = defaultdict(list)
            for request in filter(None, round_):
                kinds[request.kind].append(request)
            for kind, requests in kinds.items():
                calls += [self._call(kind, requests[i : i + SENS_MAX], claims)
                          for i in range(0, len(requests), SENS_MAX)]
            for done in await asyncio.gather(*calls):
                acks += done
        await asyncio.gather(*acks)

    async def _call(self, kind: str, requests: list[Request], claims: dict[str, tuple[str, int]]
                    ) -> list[asyncio.Future[Any]]:
        messages = [{"to": r.to, "content": r.text, **({"subject": r.subject} if r.subject else {})} for r in requests]
        async with self._calls:
            ref = await self.sens.send(kind, messages)  # a failure stops the reference, offsets uncommitted
        answered = time.time()
        outcomes = [(r.delivery_id, r.event_id, r.resident_id, "sent", None, ref, claims[r.delivery_id][1])
                    for r in requests]
        await self.ledger.finish(outcomes)  # recorded as the call answers
        out = Outbox(self.producer, self.partitions)
        for request, outcome in zip(requests, outcomes, strict=True):
            latency = answered - request.event_time.timestamp() if request.event_time else None
            await out.add(self.status_topic, request.resident_id.encode(),
                          status_event(SENDER, outcome, to_masked=masked(request.to), latency_s=latency))
        return await out.flush()


# --------------------------------------------------------------------------- the process


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.lean", description=__doc__.split("\n\n")[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--db", type=Path, required=True, help="the SQLite ledger")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--sens-url", required=True)
    p.add_argument("--sens-service-id", required=True)
    p.add_argument("--sens-access-key", required=True)
    p.add_argument("--sens-secret-key", required=True)
    p.add_argument("--sender-no", required=True)
    return p.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    config = Config(args.bootstrap, args.prefix, args.db, SensConfig(
        args.sens_url, args.sens_service_id, args.sens_access_key, args.sens_secret_key, args.sender_no),
        args.partitions)
    lean = Lean(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lean.stopping.set)
    task = asyncio.create_task(lean.run())
    ready = asyncio.create_task(lean.ready.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if lean.ready.is_set():
        print("lean ready", flush=True)
    await task


if __name__ == "__main__":
    import bench.lean as reference  # by its name: run as __main__ under cProfile, pydantic finds its models' types

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(reference.main(reference.parse()))
