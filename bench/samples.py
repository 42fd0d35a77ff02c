"""Read a sampled profile (`BENCH_PROFILER=sample`, bench/profiled.py): each function's share of the samples,
inclusive (on the stack) and self (on top).

    python -m bench.samples OUT [--top 40] [--under FUNCTION]
"""

from __future__ import annotations

import argparse
import collections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--under", help="only the samples with this function (a substring) on the stack")
    options = parser.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(options.path, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = stack.split(";")
            if options.under and not any(options.under in frame for frame in frames):
                continue
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        for frame, n in counter.most_common(options.top):
            print(f"{n / total:6.1%} {n:7d}  {frame}")


if __name__ == "__main__":
    main()
