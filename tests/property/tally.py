"""Per-test counts of the property tests: how many examples each ran and what became of them.

The conftest wraps each hypothesis test so every example it runs is counted; a test adds outcome labels
(`tally("accepted")`, `tally("rejected")`) and the conftest prints both in pytest's terminal summary.
"""

from __future__ import annotations

from collections import Counter, defaultdict

EXAMPLES = "examples"
COUNTS: defaultdict[str, Counter[str]] = defaultdict(Counter)
_current: list[str] = [""]


def start(test_id: str) -> None:
    """Called by the conftest before each example of `test_id`."""
    _current[0] = test_id
    COUNTS[test_id][EXAMPLES] += 1


def tally(label: str, n: int = 1, *, test_id: str | None = None) -> None:
    """Count an outcome of the running example (or of `test_id`, for tests that are not hypothesis tests)."""
    COUNTS[test_id or _current[0]][label] += n
