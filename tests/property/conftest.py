"""The property tests' hypothesis profile, their seed, and the example counts printed after the run.

Each test uses the `notice-hub` profile (`@settings(settings.get_profile(PROFILE))`, so other test folders
keep hypothesis's defaults): no deadline (CI machines stall), a bounded number of examples
(HUB_PROPERTY_EXAMPLES, default 200). One seed per session drives every test; it is printed in the header
and the summary, and `HUB_PROPERTY_SEED=<seed>` (or `--hypothesis-seed`) runs the same examples again.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, seed, settings

from tests.property import tally
from tests.property.seed import session_seed

PROFILE = "notice-hub"
settings.register_profile(
    PROFILE,
    deadline=None,
    max_examples=int(os.environ.get("HUB_PROPERTY_EXAMPLES", "200")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,  # the seed reproduces a run; no example files in the working tree
    print_blob=True,
)

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
