"""Load test: N concurrent `gradio_client` users drawing real Quick, Draw! drawings against the app on 127.0.0.1.

    python -m scripts.load_test                                 # starts app.py on a free port: 20 users, 60 s
    python -m scripts.load_test --users 5 --seconds 20 --json load.json
    python -m scripts.load_test --url http://127.0.0.1:7860/ --pid 1234   # an app already running
    python -m scripts.load_test --floor                          # where the framework's own latency goes

Each user is a `gradio_client.Client` given one ready SSL context (`ssl_verify=`, what docs/reliability.md
advises API users; `--stock-ssl` measures the stock client, which builds two per request). Each user replays raw
drawings (the players' own strokes and timestamps): at each pointer-up it sends the drawing
so far to `/classify`, at the pace the player drew; after a stroke it also asks `/health` now and then
(`HEALTH_SHARE`), and after a drawing it sometimes asks `/generate` (`GENERATE_SHARE`), then pauses before the
next drawing. `/health` does no work, so its latency under the same load is the framework's floor: Gradio's queue,
the event protocol and the client, which here share the machine's cores with the server.

The server's memory (VmRSS from /proc/<pid>/status) is sampled every `RSS_EVERY_S`. Reported: requests, errors,
p50/p95/p99 per endpoint, memory at start/peak/end and its growth, and the acceptance checks of issue 6.
Bounded: at most MAX_USERS users, MAX_SECONDS seconds and MAX_REQUESTS requests; loopback addresses only.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import ssl
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # gradio_client sends telemetry unless this is set (any argument)

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from scripts import app_server  # noqa: E402
from sketchlab.data import default_data_dir, iter_drawings  # noqa: E402
from sketchlab.strokes import MIN_EXTENT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_USERS = 100  # bounds: the script must never become a traffic generator
MAX_SECONDS = 600
MAX_REQUESTS = 200_000
HEALTH_SHARE = 0.5  # chance of a /health call after each stroke's /classify: the floor, measured in the same load
GENERATE_SHARE = 0.2  # chance of a /generate call after each drawing ("a few generation requests")
PAUSE_S = (1.0, 3.0)  # between two drawings of one user: looking at the guesses, clearing the canvas
MAX_GAP_S = 5.0  # a player's pause within a drawing is cut to this (some thought for a minute mid-drawing)
RSS_EVERY_S = 0.5
CLIENT_POLL_S = 0.002  # --client-poll / the floor's last layer: gradio_client's 50 ms answer poll cut to this
DRAWINGS_PER_WORD = 3
START_TIMEOUT_S = 120
REFUSED_BY_DESIGN = "single point"  # a dot has no extent to scale (sketchlab.strokes); counted apart if ever sent
ACCEPT = {"classify_p95_ms": 500.0, "classify_vs_health_p95": 1.5, "rss_growth_mb": 50.0}  # issue 6 acceptance


# ---------------------------------------------------------------------------------------------------------------
# What the users draw


@dataclass(frozen=True)
class Drawing:
    word: str
    strokes: list  # [[[x, y, t_ms], ...], ...] as the canvas sends them
    pointer_ups: list[float]  # seconds from the first point to the end of each stroke


def load_drawings(limit_words: int = 120) -> list[Drawing]:
    """Raw drawings of the shared data (players' own canvas points and times), a few per word."""
    root = default_data_dir()
    if root is None:
        sys.exit("the Quick, Draw! raw data is needed (../shared/quickdraw or $SKETCHLAB_DATA)")
    words = sorted(p.stem for p in (root / "full" / "raw").glob("*.ndjson"))[:limit_words]
    out = []
    for record in iter_drawings(root, "raw", words, limit_per_word=DRAWINGS_PER_WORD):
        strokes = [[[round(float(v), 1) for v in p] for p in s.tolist()] for s in record.drawing]
        t0 = strokes[0][0][2]
        ups, last = [], 0.0
        for s in strokes:  # pointer-up times, long pauses cut to MAX_GAP_S
            end = (s[-1][2] - t0) / 1000
            last = min(max(end, last), last + MAX_GAP_S)
            ups.append(last)
        out.append(Drawing(record.word, strokes, ups))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # endpoint -> seconds
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # documented DrawingErrors
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint: str, seconds: float, error: str | None = None, refused: str | None = None) -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds)
            if error:
                self.errors[endpoint].append(error)
            if refused:
                self.refused[endpoint].append(refused)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def summary(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {
        "requests": len(ms),
        **{f"p{q}_ms": round(percentile(ms, q), 1) for q in (50, 95, 99)},
        "max_ms": round(max(ms), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
    }


class RssSampler(threading.Thread):
    """VmRSS of one process every RSS_EVERY_S seconds, in MB, with the time since start."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.start_time = time.monotonic()

    def read(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def run(self) -> None:
        while not self.stop.wait(RSS_EVERY_S):
            rss = self.read()
            if rss is not None:
                self.samples.append((round(time.monotonic() - self.start_time, 1), round(rss, 1)))


# ---------------------------------------------------------------------------------------------------------------
# The users


def has_extent(strokes: list) -> bool:
    """As the page's sketchpad.js `hasExtent`: a drawing that is one dot so far is not sent for guesses."""
    xs, ys = [p[0] for s in strokes for p in s], [p[1] for s in strokes for p in s]
    return max(max(xs) - min(xs), max(ys) - min(ys)) >= MIN_EXTENT


def call(client: Client, results: Results, endpoint: str, *args) -> object:
    t = time.perf_counter()
    try:
        out = client.predict(*args, api_name=f"/{endpoint}")
    except AppError as e:
        if endpoint == "classify" and REFUSED_BY_DESIGN in str(e):  # the app's documented answer, not a failure
            results.add(endpoint, time.perf_counter() - t, refused=str(e))
        else:
            results.add(endpoint, time.perf_counter() - t, f"AppError: {str(e)[:200]}")
        return None
    except Exception as e:  # noqa: BLE001 - every failure is a counted error, the run goes on
        results.add(endpoint, time.perf_counter() - t, f"{type(e).__name__}: {str(e)[:200]}")
        return None
    results.add(endpoint, time.perf_counter() - t)
    return out


def user(n: int, client: Client, drawings: list[Drawing], words: list[str], stop_at: float, results: Results) -> None:
    rng = random.Random(n)
    order = rng.sample(range(len(drawings)), len(drawings))
    k = 0
    while time.monotonic() < stop_at and results.requests < MAX_REQUESTS:
        drawing = drawings[order[k % len(order)]]
        k += 1
        start = time.monotonic()
        for i, up in enumerate(drawing.pointer_ups):
            wait = start + up - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the player is still drawing this stroke
            if time.monotonic() >= stop_at:
                return
            if not has_extent(drawing.strokes[: i + 1]):  # a first dot: the page sends nothing yet, nor do we
                continue
            call(client, results, "classify", json.dumps(drawing.strokes[: i + 1]))
            if rng.random() < HEALTH_SHARE:
                call(client, results, "health")
        if words and rng.random() < GENERATE_SHARE and time.monotonic() < stop_at:
            call(client, results, "generate", rng.choice(words), 0.4, rng.randrange(1000))
        time.sleep(rng.uniform(*PAUSE_S))


def generator_words(client: Client) -> list[str]:
    """The categories offered by the page's dropdown (the generator's classes), read from the app's config."""
    for comp in client.config.get("components", []):
        props = comp.get("props", {})
        if props.get("elem_id") == "category":
            return [c[1] if isinstance(c, list) else c for c in props.get("choices", [])]
    return []


def make_client(url: str, shared_ssl: bool = False) -> Client:
    """A gradio_client user. Stock, gradio_client opens a new httpx client for every request (`httpx.post` to join
    the queue, `httpx.Client` for the answer stream), and each one loads the CA bundle: about 33 ms of CPU, twice a
    request, even for http://127.0.0.1. `shared_ssl` hands it one ready SSL context instead (`ssl_verify` is passed
    to httpx as `verify`), which still verifies https but costs nothing per request."""
    if not shared_ssl:
        return Client(url, verbose=False)
    return Client(url, verbose=False, ssl_verify=_ssl_context())


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def run_load(url: str, pid: int, users: int, seconds: float, drawings: list[Drawing], shared_ssl: bool = False) -> dict:
    clients = [make_client(url, shared_ssl) for _ in range(users)]
    words = generator_words(clients[0])
    warm = Results()
    for c in clients:  # one round trip each before the clock starts: connections open, client state made
        call(c, warm, "health")
    sampler = RssSampler(pid)
    rss_before = sampler.read()
    sampler.start()
    results = Results()
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=user, args=(i, c, drawings, words, stop_at, results), daemon=True)
        for i, c in enumerate(clients)
    ]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=seconds + 120)
    elapsed = time.monotonic() - t0
    time.sleep(2 * RSS_EVERY_S)
    sampler.stop.set()
    rss_after = sampler.read()
    for c in clients:
        c.close()
    rss = [r for _, r in sampler.samples]
    endpoints = {name: summary(v) for name, v in sorted(results.latencies.items())}
    for name, errs in results.errors.items():
        endpoints[name]["errors"] = len(errs)
        endpoints[name]["first_errors"] = sorted(set(errs))[:3]
    for name, refused in results.refused.items():
        endpoints[name]["refused"] = len(refused)
        endpoints[name]["refused_because"] = sorted(set(refused))[:3]
    report = {
        "url": url,
        "users": users,
        "seconds": round(elapsed, 1),
        "requests": results.requests,
        "errors": sum(len(v) for v in results.errors.values()),
        "requests_per_s": round(results.requests / elapsed, 1),
        "endpoints": endpoints,
        "rss_mb": {
            "before": rss_before,
            "peak": max(rss) if rss else None,
            "after": rss_after,
            "growth": round(rss_after - rss_before, 1) if rss_after and rss_before else None,
            "samples": sampler.samples[:: max(1, len(sampler.samples) // 60)],
        },
    }
    report["acceptance"] = acceptance(report)
    return report


def acceptance(report: dict) -> dict:
    cls, health = report["endpoints"].get("classify", {}), report["endpoints"].get("health", {})
    p95, h95 = cls.get("p95_ms", float("nan")), health.get("p95_ms", float("nan"))
    return {
        "zero_errors": report["errors"] == 0,
        f"classify_p95_le_{ACCEPT['classify_p95_ms']:.0f}ms": p95 <= ACCEPT["classify_p95_ms"],
        "classify_p95_le_1.5x_health_p95": p95 <= ACCEPT["classify_vs_health_p95"] * h95,
        "rss_growth_le_50mb": (report["rss_mb"]["growth"] or 0) <= ACCEPT["rss_growth_mb"],
    }


# ---------------------------------------------------------------------------------------------------------------
# The floor: one user, the same no-op endpoint through each layer


def floor(url: str, n: int = 200, pid: int | None = None) -> dict:
    """`health` latency for one sequential user, layer by layer: a plain HTTP GET, the direct REST call that skips
    the queue (/gradio_api/run/health), the queue's REST protocol (POST /gradio_api/call/health, then read its SSE
    stream), and gradio_client (queue join + the client's shared SSE stream + thread hand-offs). With the server's
    pid, the CPU time each request costs the server is measured too (and always the client's)."""
    base = url.rstrip("/")

    def get(path: str) -> None:
        with urllib.request.urlopen(base + path, timeout=30) as r:
            r.read()

    def post(path: str, body: dict) -> bytes:
        req = urllib.request.Request(
            base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def rest_queue() -> None:
        event_id = json.loads(post("/gradio_api/call/health", {"data": []}))["event_id"]
        get(f"/gradio_api/call/health/{event_id}")

    client, fast = make_client(url), make_client(url, shared_ssl=True)
    layers = {
        "http_get_favicon": lambda: get("/favicon.ico"),
        "direct_run_no_queue": lambda: post("/gradio_api/run/health", {"data": []}),
        "rest_queue_call_sse": rest_queue,
        "gradio_client_predict": lambda: client.predict(api_name="/health"),
        "gradio_client_shared_ssl": lambda: fast.predict(api_name="/health"),
        "gradio_client_shared_ssl_poll_2ms": lambda: fast.predict(api_name="/health"),
    }
    out = {}
    for name, fn in layers.items():
        with client_poll(CLIENT_POLL_S if name.endswith("poll_2ms") else None):
            for _ in range(10):  # warm-up
                fn()
            times = []
            server0, client0 = cpu_seconds(pid), time.process_time()
            for _ in range(n):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            server_cpu, client_cpu = cpu_seconds(pid) - server0, time.process_time() - client0
        out[name] = summary(times)
        out[name]["client_cpu_ms_per_request"] = round(1000 * client_cpu / n, 2)
        if pid:
            out[name]["server_cpu_ms_per_request"] = round(1000 * server_cpu / n, 2)
    return out


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (0 without a pid), from /proc/<pid>/stat."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def client_poll(seconds: float | None):
    """For the analysis only: gradio_client waits for each answer by polling its message queue with
    `time.sleep(0.05)` (gradio_client/utils.py, stream_sse_v1plus and check_for_cancel). Within this context its
    sleeps are cut to `seconds`, to measure how much of the floor that poll is. None: the stock client."""
    if seconds is None:
        yield
        return
    import gradio_client.utils as client_utils

    class _Time:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(s: float) -> None:
            time.sleep(min(s, seconds))

    client_utils.time = _Time()
    try:
        yield
    finally:
        client_utils.time = time


# ---------------------------------------------------------------------------------------------------------------
# The app under test


@contextmanager
def started_app(models: Path | None, log_path: Path, env: dict[str, str] | None = None):
    """app.py on a free loopback port; yields (url, pid) once it answers. `env`: its whole environment."""
    args = ["--models", str(models)] if models else []
    with app_server.running_app(log_path, *args, env=env, timeout=START_TIMEOUT_S) as (url, proc):
        yield url, proc.pid


def print_report(report: dict) -> None:
    print(f"\n{report['users']} users, {report['seconds']} s: {report['requests']:,} requests "
          f"({report['requests_per_s']}/s), {report['errors']} errors")  # fmt: skip
    print(
        f"{'endpoint':10s} {'requests':>9s} {'errors':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}"
    )
    for name, s in report["endpoints"].items():
        print(
            f"{name:10s} {s['requests']:9,} {s.get('errors', 0):7,} {s['p50_ms']:8.1f} {s['p95_ms']:8.1f} "
            f"{s['p99_ms']:8.1f} {s['max_ms']:8.1f}"
        )
        for e in s.get("first_errors", []):
            print(f"           error: {e}")
        if s.get("refused"):
            print(f"           {s['refused']} refused as documented: {s['refused_because']}")
    m = report["rss_mb"]
    print(f"server RSS: before {m['before']:.1f} MB, peak {m['peak']:.1f} MB, after {m['after']:.1f} MB, "
          f"growth {m['growth']:+.1f} MB")  # fmt: skip
    for check, ok in report["acceptance"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {check}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20, help=f"concurrent users (at most {MAX_USERS})")
    parser.add_argument("--seconds", type=float, default=60, help=f"duration (at most {MAX_SECONDS})")
    parser.add_argument("--url", help="an app already running on this machine (loopback only); else app.py starts")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for its memory")
    parser.add_argument("--models", type=Path, help="models folder for the app it starts")
    parser.add_argument("--floor", action="store_true", help="measure the one-user floor layer by layer instead")
    parser.add_argument(
        "--stock-ssl",
        action="store_true",
        help="stock gradio_client: a new SSL context per request (see make_client); by default each user is given "
        "one ready SSL context, as docs/reliability.md advises API users",
    )
    parser.add_argument(
        "--client-poll", action="store_true", help=f"analysis: cut gradio_client's 50 ms poll to {CLIENT_POLL_S} s"
    )
    parser.add_argument("--floor-requests", type=int, default=200, help="with --floor: requests per layer")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--log", type=Path, default=Path("/tmp/sketchlab_load_app.log"), help="the started app's log")
    args = parser.parse_args(argv)
    if not (1 <= args.users <= MAX_USERS and 0 < args.seconds <= MAX_SECONDS):
        parser.error(f"--users must be 1..{MAX_USERS} and --seconds 1..{MAX_SECONDS}")
    if args.url and urllib.parse.urlsplit(args.url).hostname not in LOOPBACK:
        parser.error("--url must be a loopback address (127.0.0.1, localhost, ::1): this tool loads only this machine")
    if args.url and not args.pid and not args.floor:
        parser.error("--url needs --pid (the server process, for its memory)")

    @contextmanager
    def target():
        if args.url:
            yield args.url, args.pid
        else:
            with started_app(args.models, args.log) as app:
                yield app

    with target() as (url, pid):
        if args.floor:
            report = {"floor": floor(url, min(args.floor_requests, 5_000), pid)}
            print(json.dumps(report, indent=1))
        else:
            with client_poll(CLIENT_POLL_S if args.client_poll else None):
                report = run_load(url, pid, args.users, args.seconds, load_drawings(), not args.stock_ssl)
            report["client"] = {"poll_s": CLIENT_POLL_S if args.client_poll else 0.05, "shared_ssl": not args.stock_ssl}
            print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if args.floor or all(report["acceptance"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
