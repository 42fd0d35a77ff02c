"""`python -m bench.run`'s options (the profiles it can take, the combinations it refuses before it starts a
broker) and the fan-out's split into halves."""

from __future__ import annotations

import pytest

from bench.report import _fan_run
from bench.run import _halves, parse


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


def test_a_fan_outs_halves_are_the_rates_of_its_first_and_second_half_of_arrivals() -> None:
    # ten arrivals: five in the first 5 s after the start, the other five in the next second
    arrivals = [1.0, 2.0, 3.0, 4.0, 5.0, 5.2, 5.4, 5.6, 5.8, 6.0]
    halves = _halves(arrivals, started=0.0)
    assert halves["first_half_per_s"] == pytest.approx(5 / 5.2)  # up to the middle arrival (the sixth)
    assert halves["second_half_per_s"] == pytest.approx(5 / 0.8)
    assert _halves([1.0, 2.0], started=0.0) == {"first_half_per_s": 0.0, "second_half_per_s": 0.0}


def test_a_fan_out_runs_line_says_its_halves_when_measured() -> None:
    run = {"elapsed_s": 55.4, "complete": True, "repeats": 0, "rss_mb": 179.0, "others": 0.06,
           "first_half_per_s": 1520.0, "second_half_per_s": 2821.0}
    assert "the first half of the messages 1,520/s, the second, mostly the sender alone, 2,821/s" in _fan_run(run)
    assert "half" not in _fan_run({k: v for k, v in run.items() if "half" not in k})  # a run from before
