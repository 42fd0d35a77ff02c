"""`python -m bench.run`'s options: the profiles it can take, and the combinations it refuses before it starts a
broker."""

from __future__ import annotations

import pytest

from bench.run import parse


def test_a_paced_profile_takes_the_paced_runs_rate_and_length() -> None:
    args = parse(["--profile", "hub", "--paced", "--waits", "--paced-rate", "800", "--paced-s", "5"])
    assert args.paced and args.waits and args.profile == "hub"
    assert (args.paced_rate, args.paced_s) == (800, 5)
    assert parse(["--profile", "lean", "--paced", "--sample"]).paced


@pytest.mark.parametrize("argv", [
    ["--paced"],  # nothing to profile
    ["--profile", "fanout", "--paced"],  # a fan-out is one event, not a pace
    ["--profile", "hub", "--sample", "--waits"],  # one profiler at a time
    ["--profile", "lean", "--waits"],  # the reference has none of the hub's calls
])
def test_refused_combinations_stop_before_anything_starts(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err
