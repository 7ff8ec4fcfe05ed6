"""Preprocessing benchmark: canvas input of ~1,000 points -> simplified + stroke-5 + 28x28.

    python -m bench.preprocess [--data ../shared/quickdraw] [--calls 200]

The inputs are real players' raw drawings of 900 to 1,200 points from the data folder (as the canvas would send
them: lists of [x, y, t_ms]); without data, a synthetic 1,000-point drawing. Each is timed `--calls` times through
`sketchlab.prepare.from_canvas(...)` plus `.stroke5(...)`: the whole per-request preprocessing of the app.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.timing import Timing, from_samples, machine, table, time_calls
from sketchlab.data import default_data_dir, iter_drawings
from sketchlab.prepare import from_canvas

MIN_POINTS, MAX_POINTS = 900, 1_200
SCALE = 12.0  # a typical stroke-model scale factor; its value does not change the cost


def real_inputs(root: Path) -> list[tuple[str, list]]:
    out = []
    for record in iter_drawings(root, "raw"):
        n = sum(len(s) for s in record.drawing)
        if MIN_POINTS <= n <= MAX_POINTS:
            out.append(
                (f"{record.word} ({n} pts, {len(record.drawing)} strokes)", [s.tolist() for s in record.drawing])
            )
    return out


def synthetic_input(points: int = 1_000, strokes: int = 8, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(strokes):
        n = points // strokes
        a = np.linspace(0, 2 * np.pi, n) + k
        x = 300 + 200 * np.cos(a) * (1 + 0.1 * k) + rng.normal(0, 1, n)
        y = 300 + 150 * np.sin(1.5 * a) + rng.normal(0, 1, n)
        out.append(np.column_stack([x, y, np.arange(n) * 16.0]).tolist())
    return out


def run(data: Path | None, calls: int = 200) -> list[Timing]:
    inputs = real_inputs(data) if data is not None else []
    if not inputs:
        inputs = [("synthetic (1000 pts, 8 strokes)", synthetic_input())]
    rows, samples = [], []
    for name, canvas in inputs:
        t = time_calls(f"preprocess {name}", lambda c=canvas: from_canvas(c).stroke5(SCALE), calls)
        rows.append(t)
        samples.append(t.median_ms / 1e3)
    rows.append(from_samples(f"preprocess, median over the {len(inputs)} drawings' medians", samples))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    print(machine())
    print(table(run(args.data, args.calls)))


if __name__ == "__main__":
    main()
