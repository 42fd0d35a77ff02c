"""Per-record isolation, the one mechanism every consumer uses: whatever handling one record raises (it cannot be
parsed, validated, targeted or rendered, a request cannot be built from it, or a bug meets its data; a HubError
or not) rejects that record alone, with its reason, once; the batch goes on. Only an outage (the store or Kafka
unavailable: `Outage`) propagates, and the consumer's batch comes again.

The use cases return their rejects (`Rejected`); the Kafka side writes each to the dead-letter topic once
(hub.kafka.dlq.DeadLetters.add). What counts as an outage is the adapters' to say (a Kafka error is one; the
pipeline cannot name it), so the consumer hands its `Outage` test in; `is_outage` is the adapters-free part.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hub.core.errors import HubError
from hub.pipeline.ports import Record

logger = logging.getLogger(__name__)

Outage = Callable[[BaseException], bool]


def is_outage(error: BaseException) -> bool:
    """The store is unavailable (a retriable HubError), or the network timed out or dropped: the batch must come
    again. The Kafka adapter adds the broker's own errors (hub.kafka.dlq.is_outage)."""
    if isinstance(error, HubError):
        return error.retriable
    return isinstance(error, TimeoutError | ConnectionError)


@dataclass(frozen=True)
class Rejected:
    """A record to dead-letter, and why."""

    record: Record
    error: BaseException

    @property
    def reason(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


@dataclass
class Attempt:
    """One record's handling: `rejected` once it failed."""

    record: Record
    rejected: Rejected | None = None


@dataclass(frozen=True)
class Isolation:
    """`with isolation.each(record) as attempt:` runs one record's handling. An outage propagates; anything else
    is caught, logged (a traceback unless it is a HubError: bad data explains itself) and left on
    `attempt.rejected`."""

    stage: str
    outage: Outage = is_outage

    @contextlib.contextmanager
    def each(self, record: Record) -> Iterator[Attempt]:
        attempt = Attempt(record)
        try:
            yield attempt
        except Exception as e:
            if self.outage(e):
                raise
            if not isinstance(e, HubError):  # a bug met by one record must not stop the others
                logger.exception("%s failed on %s[%s]@%s", self.stage, record.topic, record.partition, record.offset)
            attempt.rejected = Rejected(record, e)
