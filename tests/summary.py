"""What the session prints after the tests: the property tests' example counts and the fault suite's deliveries
counted at the receiving end. With pytest-xdist the workers send theirs to the controller, which prints them all
(`workeroutput`, merged when each worker stops)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.property import tally
from tests.property.seed import session_seed

REPORTED: list[str] = []  # every fault-suite Tally line of this session
_KEYS = ("hub_counts", "hub_reported")


def send_from_worker(config: pytest.Config) -> None:
    out = getattr(config, "workeroutput", None)
    if out is not None:
        out["hub_counts"] = {test_id: dict(counts) for test_id, counts in tally.COUNTS.items()}
        out["hub_reported"] = list(REPORTED)


def take_from_worker(workeroutput: dict[str, Any]) -> None:
    for test_id, counts in workeroutput.get("hub_counts", {}).items():
        tally.COUNTS[test_id].update(counts)
    REPORTED.extend(workeroutput.get("hub_reported", []))


def write(terminalreporter: Any, config: pytest.Config) -> None:
    if tally.COUNTS:
        terminalreporter.section("property tests: examples per test")
        terminalreporter.write_line(f"hypothesis seed {session_seed(config)}")
        for test_id, counts in sorted(tally.COUNTS.items()):
            outcomes = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()) if label != tally.EXAMPLES)
            if examples := counts.get(tally.EXAMPLES, 0):
                outcomes = f"{examples} examples" + (f" ({outcomes})" if outcomes else "")
            terminalreporter.write_line(f"{test_id}: {outcomes}")
    if REPORTED:
        terminalreporter.write_sep("-", "fault suite: deliveries counted at the receiving end")
        for line in REPORTED:
            terminalreporter.write_line(line)
