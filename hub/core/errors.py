"""The hub's exception hierarchy.

`retriable` drives what the consumers do with a failure: a retriable infrastructure error (the store) leaves
the batch to be processed again; a failed event goes to the dead-letter topic with the reason; a send that
failed with a retriable channel error is kept in the dead-letter topic for replay (retry tiers are the
gateway work's).
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every error the hub raises on purpose."""

    retriable: bool = False

    @property
    def reason(self) -> str:
        return str(self)


class EventError(HubError):
    """Raised when an incoming message is not an event the hub can accept (bad bytes, envelope or data)."""


class UnknownEventTypeError(EventError):
    """Raised when an event's type is not in the catalogue."""


class BodyError(HubError):
    """Raised when an HTTP request body is not JSON the API reads: its encoding, nesting, numbers, names, strings.

    `type` is the machine-readable kind (FastAPI's 422 `type`), `loc` where in the body, when known."""

    def __init__(self, message: str, type: str, *, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.type = type
        self.loc = loc


class RenderError(HubError):
    """Raised when a template cannot be rendered, or its output breaks a channel's limits."""


class NoChannelError(HubError):
    """Raised when a recipient has no channel the hub can use for this event."""


class ChannelError(HubError):
    """Raised by a channel adapter when a send fails."""


class TransientError(ChannelError):
    """Raised when a send failed for a reason that may pass (timeout, 5xx, rate limit): try again later."""

    retriable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(ChannelError):
    """Raised when a send failed for a reason that will not pass by retrying (bad number, refused content).

    `fallback_ok` is True when the same notice may still go by another channel (대체발송: an AlimTalk that
    failed for good may go by SMS/LMS)."""

    def __init__(self, message: str, *, fallback_ok: bool | None = None) -> None:
        super().__init__(message)
        if fallback_ok is not None:
            self.fallback_ok = fallback_ok

    fallback_ok: bool = False  # True when another channel may still reach the resident (AlimTalk -> SMS)


class StoreError(HubError):
    """Raised when the store cannot be reached or written: the work is not recorded and must be redone."""

    retriable = True


class StoreRefusedError(HubError):
    """Raised when the store refuses a value (too long for its column, a constraint): retrying cannot help, so
    it is not an outage; the record that brought the value is dead-lettered."""


class NaiveDatetimeError(HubError, TypeError):
    """Raised when a datetime without a UTC offset reaches the store or a time shown to a person: a bug."""


class UnknownGroupError(HubError):
    """Raised when a consumer group asked for by name does not exist on the broker."""
