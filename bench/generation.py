"""Generation benchmark: a full drawing (up to 250 points) and the first point, through ONNX Runtime + numpy.

python -m bench.generation [--calls 50] [--word cat]
"""

from __future__ import annotations

import argparse
import time

from bench.timing import Timing, from_samples, machine, table, time_calls
from sketchlab.generate import Generator

MAX_LEN = 250


def run(calls: int = 50, word: str = "cat") -> list[Timing]:
    generator = Generator.load()
    generator.generate(word, 0.5, 0, MAX_LEN)  # warm-up
    seeds = iter(range(10**9))
    full = time_calls(
        f"generate a full drawing ({word}, T=0.5, <= {MAX_LEN} points)",
        lambda: generator.generate(word, 0.5, next(seeds), MAX_LEN),
        calls,
    )
    first = []
    for seed in range(calls):
        start = time.perf_counter()
        next(iter(generator.stream(word, 0.5, seed, MAX_LEN)))
        first.append(time.perf_counter() - start)
    return [full, from_samples("generate: first point", first)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--word", default="cat")
    args = parser.parse_args(argv)
    print(machine(), "| provider:", Generator.load().provider)
    print(table(run(args.calls, args.word)))


if __name__ == "__main__":
    main()
