"""The work behind `hub dlq`: which dead letters a command means, which of them someone handled, whether a replay
would fail again. The commands themselves (hub.cli.dlq) only parse and print."""

from __future__ import annotations

import getpass
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.cli.errors import UsageProblem

if TYPE_CHECKING:
    from hub.core.dead_letters import DeadLetter
    from hub.settings import Settings
    from hub.store.dead_letters import Resolution

_REF = re.compile(r"^\d+:\d+$")


@dataclass(frozen=True)
class DeadLetters:
    """The dead-letter topic now, and which of its entries were handled (resolved or replayed)."""

    topic: str
    letters: list[DeadLetter]
    handled: dict[tuple[int, int], Resolution]

    def resolution(self, letter: DeadLetter) -> Resolution | None:
        return self.handled.get((letter.partition, letter.offset))

    @property
    def unresolved(self) -> list[DeadLetter]:
        return [d for d in self.letters if self.resolution(d) is None]

    def named(self, refs: Sequence[str]) -> list[DeadLetter]:
        """The entries PARTITION:OFFSET names, in the order given; a ref that is not in the topic is a usage
        error naming it."""
        check_refs(refs)
        by_ref = {d.ref: d for d in self.letters}
        missing = [r for r in refs if r not in by_ref]
        if missing:
            raise UsageProblem(f"no dead letter {', '.join(missing)} in {self.topic}", "`hub dlq list` shows them")
        return [by_ref[r] for r in dict.fromkeys(refs)]


def check_refs(refs: Sequence[str] | None) -> None:
    """Refs are PARTITION:OFFSET: say so before anything is read."""
    bad = [r for r in refs or () if not _REF.match(r)]
    if bad:
        raise UsageProblem(f"{', '.join(bad)}: a dead letter is named PARTITION:OFFSET, e.g. 2:17",
                           "`hub dlq list` shows the refs")


async def load(settings: Settings, store: Any) -> DeadLetters:
    from hub.core.topics import Topics
    from hub.kafka.dlq import read_dead_letters
    from hub.store.dead_letters import resolutions

    topic = Topics.of(settings).dlq
    return DeadLetters(topic, await read_dead_letters(settings), await resolutions(store, topic))


def select(found: DeadLetters, refs: Sequence[str] | None, stage: str | None, error_class: str | None,
           event: str | None) -> list[DeadLetter]:
    """The dead letters the options mean. Named by --ref they are taken as named; chosen by the other options
    (or --all), handled ones are left out: someone already decided about them."""
    chosen = found.named(refs) if refs else found.unresolved
    if stage:
        chosen = [d for d in chosen if d.stage == stage]
    if error_class:
        chosen = [d for d in chosen if d.error_class == error_class]
    if event:
        chosen = [d for d in chosen if d.event_id == event]
    return chosen


def checked(letters: Sequence[DeadLetter], settings: Settings) -> list[tuple[DeadLetter, str | None]]:
    """Each dead letter with the reason its consumer would refuse it again (None: it would take it)."""
    from hub.core.rendering.identity import Identity
    from hub.core.rendering.renderer import Renderer
    from hub.pipeline.replay_check import would_fail

    renderer = Renderer(identity=Identity.of(settings))
    return [(d, would_fail(d, settings, renderer)) for d in letters]


def operator() -> str:
    """Who is handling a dead letter: the login and the host, as the record of who did what."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (a container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
