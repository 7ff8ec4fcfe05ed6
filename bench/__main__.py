"""`python -m bench`: every benchmark, one table, naming the machine and the ONNX Runtime provider.

    python -m bench [--data DIR] [--quick]

Sections: preprocessing (canvas -> simplified -> stroke-5 + 28x28), each classifier and the fusion through ONNX
Runtime vs torch eager (batch 1 and 256), a full generated drawing, end-to-end API classify against a running app, and
training throughput (drawings per second) of each model. Runs in about 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import datetime
import traceback
from pathlib import Path

from bench import api, classifiers, generation, preprocess, training
from bench.timing import Timing, machine, table
from sketchlab.data import default_data_dir
from sketchlab.runtime import CPU, CUDA, gpu_available


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--quick", action="store_true", help="fewer calls per row (for a smoke test)")
    args = parser.parse_args(argv)
    calls = 20 if args.quick else 200
    provider = CUDA if gpu_available() else CPU
    print(f"# SketchLab benchmark, {datetime.date.today()}, {machine()}, ONNX Runtime provider: {provider}\n")
    rows: list[Timing] = []
    sections = [
        ("preprocessing", lambda: preprocess.run(args.data, calls)),
        ("classifiers", lambda: classifiers.run(args.data, calls)),
        ("generation", lambda: generation.run(max(10, calls // 4))),
        ("API", lambda: api.run(max(10, calls // 2))),
    ]
    for name, section in sections:
        try:
            rows += section()
        except Exception as e:  # noqa: BLE001 - a missing model skips its rows, the rest still runs
            print(f"({name} skipped: {type(e).__name__}: {e})")
            traceback.print_exc(limit=1)
    print(table(rows))
    print()
    try:
        print(training.table(training.run(steps=2 if args.quick else 5)))
    except Exception as e:  # noqa: BLE001 - torch or a manifest missing: the inference figures above still stand
        print(f"(training throughput skipped: {type(e).__name__}: {e})")


if __name__ == "__main__":
    main()
