"""The property tests' hypothesis profile, their seed, and the example counts printed after the run.

Each test uses the `notice-hub` profile (`@settings(settings.get_profile(PROFILE))`, so other test folders
keep hypothesis's defaults): no deadline (CI machines stall), a bounded number of examples
(HUB_PROPERTY_EXAMPLES, default 200). One seed per session drives every test; it is printed in the header
and the summary, and `HUB_PROPERTY_SEED=<seed>` (or `--hypothesis-seed`) runs the same examples again.
"""

from __future__ import annotations

import functools
import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, seed, settings

from tests.property import tally

PROFILE = "notice-hub"
settings.register_profile(
    PROFILE,
    deadline=None,
    max_examples=int(os.environ.get("HUB_PROPERTY_EXAMPLES", "200")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,  # the seed reproduces a run; no example files in the working tree
    print_blob=True,
)

_seed: list[int] = []


def session_seed(config: pytest.Config) -> int:
    if not _seed:
        given = config.getoption("hypothesis_seed", None) or os.environ.get("HUB_PROPERTY_SEED")
        _seed.append(int(given) if given is not None else random.SystemRandom().getrandbits(32))
    return _seed[0]


def pytest_report_header(config: pytest.Config) -> str:
    return f"property tests: hypothesis seed {session_seed(config)} (HUB_PROPERTY_SEED=<seed> repeats a run)"


def _counting(test_id: str, inner: Any) -> Any:
    @functools.wraps(inner)
    def run(*args: Any, **kwargs: Any) -> Any:
        tally.start(test_id)
        return inner(*args, **kwargs)

    run._counted = True  # type: ignore[attr-defined]
    return run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        test = getattr(item, "obj", None)
        handle = getattr(test, "hypothesis", None)
        if handle is None or "tests/property/" not in item.nodeid:
            continue
        seed(session_seed(config))(test)
        if not getattr(handle.inner_test, "_counted", False):  # hypothesis lets plugins wrap each example
            handle.inner_test = _counting(item.nodeid, handle.inner_test)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not tally.COUNTS:
        return
    terminalreporter.section("property tests: examples per test")
    terminalreporter.write_line(f"hypothesis seed {session_seed(config)}")
    for test_id, counts in sorted(tally.COUNTS.items()):
        outcomes = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()) if label != tally.EXAMPLES)
        if examples := counts.get(tally.EXAMPLES, 0):
            outcomes = f"{examples} examples" + (f" ({outcomes})" if outcomes else "")
        terminalreporter.write_line(f"{test_id}: {outcomes}")
