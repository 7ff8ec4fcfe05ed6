"""End-to-end API benchmark: `classify` and `health` through gradio_client against a running app on 127.0.0.1.

    python -m bench.api [--calls 100] [--url http://127.0.0.1:7860/]

Without --url it starts `app.py` on a free loopback port, measures, and stops it. Each call sends a real drawing
(JSON strokes, as the page would) and waits for the answer: this includes Gradio's HTTP + SSE protocol and the
client, so compare `classify` with `health` (a no-op) to see what the models add.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.timing import Timing, machine, table, time_calls
from scripts import app_server

DRAWING = [
    [[60, 80, 0], [180, 60, 120], [260, 140, 240], [200, 260, 360], [80, 240, 480], [60, 80, 600]],
    [[120, 140, 900], [200, 150, 1000]],
    [[140, 200, 1300], [180, 210, 1400]],
]


def measure(url: str, calls: int) -> list[Timing]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    payload = json.dumps(DRAWING)
    return [
        time_calls(
            "API classify (gradio_client, one drawing)", lambda: client.predict(payload, api_name="/classify"), calls
        ),
        time_calls("API health (gradio_client, no-op floor)", lambda: client.predict(api_name="/health"), calls),
    ]


def run(calls: int = 100, url: str | None = None) -> list[Timing]:
    if url:
        return measure(url, calls)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with app_server.running_app(Path(tmp) / "app.log") as (started_url, _):
            startup = time.perf_counter() - start
            rows = measure(started_url, calls)
    return [Timing("app start to serving (first answer on /)", 1, startup * 1e3, startup * 1e3), *rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--url")
    args = parser.parse_args(argv)
    print(machine())
    print(table(run(args.calls, args.url)))


if __name__ == "__main__":
    main()
