"""The one hypothesis seed of a test session: given (HUB_PROPERTY_SEED or --hypothesis-seed) or drawn once.

With pytest-xdist the controller draws it and hands it to every worker (`workerinput`), so the seed printed in
the header is the one each worker's tests ran with, and `HUB_PROPERTY_SEED=<seed>` repeats the whole run."""

from __future__ import annotations

import os
import random

import pytest

WORKER_KEY = "hub_property_seed"
_seed: list[int] = []


def session_seed(config: pytest.Config) -> int:
    if not _seed:
        handed = getattr(config, "workerinput", {}).get(WORKER_KEY)
        given = handed if handed is not None else (config.getoption("hypothesis_seed", None)
                                                   or os.environ.get("HUB_PROPERTY_SEED"))
        _seed.append(int(given) if given is not None else random.SystemRandom().getrandbits(32))
    return _seed[0]
