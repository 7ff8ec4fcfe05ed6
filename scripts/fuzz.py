"""A long fuzz run: random and adversarial stroke payloads thrown at every entry point that takes a drawing.

    python -m scripts.fuzz --cases 100000                 # the shipped models in models/
    python -m scripts.fuzz --cases 2000 --models DIR --json fuzz.json
    python -m scripts.fuzz --cases 3000 --http http://127.0.0.1:7860/   # a running app, over HTTP (fuzz_http.py)

Each case makes one payload and calls one entry point with it (chosen by `WEIGHTS`): `prepare.from_canvas`,
`service.parse_strokes`, `service.classify`, `service.complete` and `service.generate` (for which the category,
temperature, seed and count are fuzzed). Payloads are real drawings from the Quick, Draw! raw data (synthetic
scribbles without the data) with mutations, random JSON values, deep nesting, numbers at and beyond every limit,
NaN/inf as numbers and as strings, unicode, 100k-point drawings and multi-megabyte JSON; sent as Python objects,
JSON text or bytes, the way the page events and the API receive them.

The contract checked: every call returns normally or raises `DrawingError` / `ModelError` (sketchlab.errors);
anything else is a failure, printed with its payload. The process must stay healthy: a canary drawing is classified
every `CANARY_EVERY` cases and must give the same answer as at the start; memory and the slowest cases are reported.
Exit status 1 when any undocumented error escaped.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from sketchlab.data import default_data_dir, iter_drawings
from sketchlab.errors import DrawingError, ModelError
from sketchlab.prepare import from_canvas
from sketchlab.runtime import MODELS_DIR
from sketchlab.service import MAX_PAYLOAD_CHARS, MAX_SEED, MAX_VARIATIONS, Service, parse_strokes
from sketchlab.strokes import MAX_ABS_COORD, MAX_POINTS, MAX_STROKES

DOCUMENTED = (DrawingError, ModelError)
WEIGHTS = {  # share of cases per entry point; generation and completion sample up to 250 steps, so they get fewer
    "prepare.from_canvas": 0.3,
    "service.parse_strokes": 0.2,
    "service.classify": 0.3,
    "service.complete": 0.1,
    "service.generate": 0.1,
}
CANARY = [
    [[10, 10, 0], [200, 15, 90], [205, 210, 200], [12, 205, 330], [10, 10, 450]],
    [[60, 60, 900], [150, 150, 990]],
]
CANARY_EVERY = 1_000  # cases between health checks
REAL_DRAWINGS = 400  # raw drawings read from the data to mutate (2 per word over the first 200 words)
NUMBERS = (  # at and beyond every limit of sketchlab.strokes, and the values JSON and floats make awkward
    0, -0.0, 1, -1, 0.5, 255, 256, 1e-3, 1e-300, 5e-324, MAX_ABS_COORD, -MAX_ABS_COORD, MAX_ABS_COORD + 1,
    MAX_ABS_COORD * 10, 2**31, 2**53 + 1, 2**63, 2**64, 10**400, -(10**400), 1e308, -1e308, 3.4e38,
    float("nan"), float("inf"), float("-inf"), True, False,
)  # fmt: skip
STRINGS = (
    "", "NaN", "Infinity", "-Infinity", "1e999", "1", "0x10", "null", "[]", "cat", " cat", "CAT", "ca",
    "猫", "💥", "\u202e", "\x00", "\ud800", "'; DROP TABLE", "<script>alert(1)</script>", "../../etc/passwd", "é" * 300,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Payloads


def real_drawings(limit: int = REAL_DRAWINGS) -> list[list]:
    """Raw Quick, Draw! drawings as canvas lists [[x, y, t], ...] per stroke; synthetic scribbles without the data."""
    root = default_data_dir()
    if root is not None:
        words = sorted(p.stem for p in (root / "full" / "raw").glob("*.ndjson"))[: max(1, limit // 2)]
        out = [[s.tolist() for s in r.drawing] for r in iter_drawings(root, "raw", words, limit_per_word=2)]
        if out:
            return out[:limit]
    rng = random.Random(0)
    return [_scribble(rng) for _ in range(50)]


def _scribble(rng: random.Random) -> list:
    t, strokes = 0.0, []
    for _ in range(rng.randint(1, 6)):
        x, y = rng.uniform(0, 600), rng.uniform(0, 600)
        stroke = []
        for _ in range(rng.randint(1, 40)):
            x, y, t = x + rng.gauss(0, 12), y + rng.gauss(0, 12), t + rng.uniform(5, 40)
            stroke.append([round(x, 1), round(y, 1), round(t)])
        strokes.append(stroke)
    return strokes


def random_json(rng: random.Random, depth: int = 0) -> object:
    """A random JSON-like value (lists, dicts, numbers, strings, None), at most a few levels deep."""
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(NUMBERS)
    if kind == 1:
        return rng.uniform(-1000, 1000) if rng.random() < 0.5 else rng.randint(-(2**40), 2**40)
    if kind == 2:
        return rng.choice(STRINGS)
    if kind == 3:
        return None
    if kind == 4:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(12)))
    if kind == 7:
        return {
            rng.choice(("strokes", "x", "", "drawing")): random_json(rng, depth + 1) for _ in range(rng.randrange(3))
        }
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


@functools.cache
def _deep_pool() -> tuple:
    """Nesting from a few levels to far beyond any recursion limit, as Python objects and as JSON text. Built once:
    a 200,000-level list costs more to make than to refuse, and the entry points never modify their input."""
    rng, pool = random.Random(1), []
    for depth in (8, 100, 1_000, 5_000, 200_000):
        for open_, close in (("[", "]"), ('{"strokes":', "}")):
            core = rng.choice(("[[1, 2, 3], [4, 5, 6]]", "", "1", "[]"))
            pool += [open_ * depth + core + close * depth, open_ * depth + core + close * (depth // 2)]
        for core in ([[1, 2, 3], [4, 5, 6]], []):
            value: object = core
            for _ in range(depth):
                value = [value] if rng.random() < 0.9 else {"strokes": value}
            pool.append(value)
    return tuple(pool)


@functools.cache
def _huge_pool() -> tuple:
    """Drawings at and beyond the point, stroke, coordinate and payload limits (some valid, most not). Built once."""
    rng = random.Random(2)
    long_strokes = [[[[i % 500, (i * 7) % 500, i] for i in range(n)]] for n in (MAX_POINTS, MAX_POINTS + 1, 100_000)]
    many_strokes = [
        [[[i % 300, 0, i], [i % 300, 5, i + 1]] for i in range(n)] for n in (MAX_STROKES, MAX_STROKES + 1, 5_000)
    ]
    text = [" " * (MAX_PAYLOAD_CHARS - 20) + "[[[1, 2, 3], [40, 50, 60]]]", json.dumps(long_strokes[2])]
    lim = MAX_ABS_COORD
    far = [[[[rng.uniform(-lim, lim), rng.uniform(-lim, lim), i] for i in range(500)]] for _ in range(2)]
    return tuple(long_strokes + many_strokes + text + far)


def _mutate(drawing: list, rng: random.Random) -> object:
    """A real drawing with 1 to 3 changes: bad numbers, wrong shapes, wrong types, odd sizes or coordinates."""
    d: object = [[list(p) for p in s] for s in drawing]
    for _ in range(rng.randint(1, 3)):
        try:
            d = _mutate_once(d, rng)
        except (
            TypeError,
            IndexError,
            KeyError,
            ValueError,
            AttributeError,
            ArithmeticError,
        ):  # an earlier change broke it
            pass
    return d


def _mutate_once(d: list, rng: random.Random) -> object:
    """One change of `_mutate` (may raise when an earlier change made `d` something other than a drawing)."""
    if not d:
        return [[]]
    s, kind = rng.randrange(len(d)), rng.randrange(12)
    if kind == 0:  # one coordinate becomes an adversarial number or string
        p = rng.choice(d[s])
        p[rng.randrange(len(p))] = rng.choice(NUMBERS) if rng.random() < 0.7 else rng.choice(STRINGS)
    elif kind == 1:  # a point with the wrong number of values
        i = rng.randrange(len(d[s]))
        d[s][i] = d[s][i][: rng.choice((0, 1))] + ([] if rng.random() < 0.5 else [1, 2, 3, 4][: rng.randint(2, 4)])
    elif kind == 2:  # a point, stroke or the whole drawing becomes a random value
        target = rng.randrange(3)
        if target == 2:
            return random_json(rng)
        if target == 1:
            d[s] = random_json(rng)
        else:
            d[s][rng.randrange(len(d[s]))] = random_json(rng)
    elif kind == 3:
        d[s] = []
    elif kind == 4:  # every point the same: no extent
        return [[list(d[0][0])] * rng.randint(1, 5)]
    elif kind == 5:  # scaled to tiny or huge coordinates
        f = rng.choice((1e-9, 1e-4, 1e3, 1e5, 1e7))
        return [[[v * f if i < 2 else v for i, v in enumerate(p)] for p in st] for st in d]
    elif kind == 6:  # numbers as strings
        return [[[str(v) for v in p] for p in st] for st in d]
    elif kind == 7:  # time dropped ([x, y] points), or time running backwards
        drop = rng.random() < 0.5
        return [[p[:2] if drop else [p[0], p[1], -p[2]] for p in st] for st in d]
    elif kind == 8:  # strokes repeated, to around and beyond MAX_STROKES (not to millions: json.dumps would take GBs)
        return d * min(rng.choice((2, 50, 400)), max(2, 4 * MAX_STROKES // max(1, len(d))))
    elif kind == 9:  # one more level of nesting, or one less
        return [d] if rng.random() < 0.5 else [p for st in d for p in st]
    elif kind == 10:  # a dict wrapper, with or without the right key
        return {rng.choice(("strokes", "drawing", "Strokes")): d}
    elif rng.random() < 0.5:  # tuples instead of lists
        return [tuple(tuple(p) for p in st) for st in d]
    else:  # the first stroke dropped
        return d[1:]
    return d


def _mutate_text(text: str, rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0 and text:  # truncated
        return text[: rng.randrange(len(text))]
    if kind == 1:  # a character inserted
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(("[", "]", ",", '"', "\\", "\x00", "\ufeff", "💥", "e", "-", ".", " ")) + text[i:]
    if kind == 2:  # a few numbers from a random place on rewritten
        i = rng.randrange(len(text) + 1)
        bad = rng.choice(("1e999", "NaN", "-Infinity", "9" * 400, "-0", "1.5e-400"))
        return text[:i] + re.sub(r"\d+(\.\d+)?", bad, text[i:], count=rng.randint(1, 3))
    if kind == 3:
        return "\ufeff" + text
    if kind == 4:
        return text + rng.choice(("", " ", "]", "[", "\n{}"))
    return text


def random_payload(rng: random.Random, drawings: list[list]) -> object:
    """One fuzz payload: a Python object, JSON text or bytes, as a page event or an API call could deliver it."""
    kind = rng.random()
    if kind < 0.08:  # the pools hold objects and text already
        return rng.choice(_deep_pool())
    if kind < 0.12:
        return rng.choice(_huge_pool())
    if kind < 0.65:
        obj = _mutate(rng.choice(drawings), rng)
    elif kind < 0.85:
        obj = random_json(rng)
    else:
        obj = rng.choice(drawings)
    if isinstance(obj, str) or rng.random() < 0.5:
        return obj
    text = json.dumps(obj)  # NaN / Infinity written as JSON allows them
    text = _mutate_text(text, rng) if rng.random() < 0.5 else text
    return text.encode("utf-8", errors="surrogatepass") if rng.random() < 0.1 else text


def random_word(rng: random.Random, words: list[str]) -> object:
    kind = rng.randrange(4)
    if kind == 0 and words:
        return rng.choice(words)
    return random_json(rng) if kind == 1 else rng.choice(STRINGS)


def random_temperature(rng: random.Random) -> object:
    return rng.choice((0.4, rng.uniform(0.01, 2.0), rng.choice(NUMBERS), rng.choice(STRINGS), None, [0.5]))


def random_seed(rng: random.Random) -> object:
    return rng.choice((rng.randint(0, MAX_SEED), rng.choice(NUMBERS), rng.choice(STRINGS), None, 1.5, MAX_SEED + 1))


def random_count(rng: random.Random) -> object:
    return rng.choice((1, rng.randint(1, MAX_VARIATIONS), rng.choice(NUMBERS), rng.choice(STRINGS), None, 2.5))


# ---------------------------------------------------------------------------------------------------------------
# Entry points and the run


def entry_points(service: Service) -> dict[str, Callable[[object, random.Random], object]]:
    """name -> call(payload, rng): every function that takes a user's drawing or generation request."""
    words = list(getattr(service.generator, "classes", []) or [])

    def complete(p: object, rng: random.Random) -> object:
        word = random_word(rng, words) if rng.random() < 0.3 else None
        return service.complete(p, random_temperature(rng), random_seed(rng), word=word)

    def generate(_: object, rng: random.Random) -> object:
        return service.generate(random_word(rng, words), random_temperature(rng), random_seed(rng), random_count(rng))

    return {
        "prepare.from_canvas": lambda p, rng: from_canvas(p),
        "service.parse_strokes": lambda p, rng: parse_strokes(p),
        "service.classify": lambda p, rng: service.classify(p),
        "service.complete": complete,
        "service.generate": generate,
    }


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _kind_of(message: str) -> str:
    """An error message with its numbers and quoted values blanked, to count errors by kind."""
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    return re.sub(r"\d[\d,.e+-]*", "N", message)[:90]


def describe(payload: object) -> str:
    """A short printable form of a payload, for the failure list (deep nesting defeats repr and json)."""
    try:
        text = (
            payload if isinstance(payload, str) else json.dumps(payload) if isinstance(payload, list) else repr(payload)
        )
    except (RecursionError, ValueError, TypeError):
        text = f"<{type(payload).__name__} nested beyond repr>"
    return text if len(text) <= 400 else f"{text[:300]}… ({len(text):,} chars)"


def run_fuzz(service: Service, cases: int, seed: int = 0, drawings: list[list] | None = None, log=print) -> dict:
    """Throw `cases` payloads at the entry points; return the figures (see the module docstring)."""
    rng = random.Random(seed)
    drawings = drawings or real_drawings()
    calls = entry_points(service)
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    stats = {name: Counter() for name in names}
    seconds = defaultdict(float)
    slowest: list[tuple[float, str, str]] = []
    errors: dict[str, Counter] = {name: Counter() for name in names}
    failures: list[dict] = []
    canary = _canary(service)
    rss0, threads0, start = rss_mb(), threading.active_count(), time.perf_counter()
    healthy = True
    for i in range(cases):
        name = rng.choices(names, weights)[0]
        payload = random_payload(rng, drawings)
        t = time.perf_counter()
        try:
            calls[name](payload, rng)
            outcome = "ok"
        except DOCUMENTED as e:
            outcome = type(e).__name__
            errors[name][f"{outcome}: {_kind_of(str(e))}"] += 1
        except Exception as e:  # noqa: BLE001 - exactly what the run looks for
            outcome = "undocumented"
            failures.append(
                {"entry": name, "error": f"{type(e).__name__}: {str(e)[:300]}", "payload": describe(payload)}
            )
            log(f"UNDOCUMENTED {name}: {failures[-1]['error']}\n  payload: {failures[-1]['payload']}")
        dt = time.perf_counter() - t
        stats[name][outcome] += 1
        seconds[name] += dt
        if len(slowest) < 5 or dt > slowest[-1][0]:  # describing a payload can cost more than the call
            slowest = sorted([*slowest, (dt, name, describe(payload)[:120])], reverse=True)[:5]
        if (i + 1) % CANARY_EVERY == 0:
            healthy = healthy and _canary(service) == canary
            log(f"{i + 1:>8,} cases  {time.perf_counter() - start:7.1f} s  rss {rss_mb():6.0f} MB  healthy {healthy}")
    return {
        "cases": cases,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 1),
        "per_entry_point": {
            n: {"cases": sum(stats[n].values()), **stats[n], "seconds": round(seconds[n], 1)} for n in names
        },
        "documented_errors": {n: dict(errors[n].most_common(12)) for n in names},
        "undocumented": failures,
        "healthy": healthy and _canary(service) == canary,
        "rss_mb": {"start": round(rss0, 1), "end": round(rss_mb(), 1)},
        "threads": {"start": threads0, "end": threading.active_count()},
        "slowest": [{"seconds": round(s, 3), "entry": n, "payload": p} for s, n, p in slowest],
        "models": service.health()["models"],
    }


def _canary(service: Service) -> object:
    try:
        return service.classify(CANARY)["fused"]
    except ModelError as e:  # no classifier: the canary checks that the answer stays the same error
        return str(e)


def print_report(report: dict) -> None:
    print(f"\n{report['cases']:,} cases in {report['seconds']} s (seed {report['seed']}), models {report['models']}")
    print(f"{'entry point':24s} {'cases':>8s} {'ok':>8s} {'Drawing':>8s} {'Model':>7s} {'other':>6s} {'seconds':>8s}")
    for name, s in report["per_entry_point"].items():
        print(
            f"{name:24s} {s['cases']:8,} {s.get('ok', 0):8,} {s.get('DrawingError', 0):8,} "
            f"{s.get('ModelError', 0):7,} {s.get('undocumented', 0):6,} {s['seconds']:8.1f}"
        )
    print("\nmost frequent documented errors:")
    for name, kinds in report["documented_errors"].items():
        for kind, n in list(kinds.items())[:4]:
            print(f"  {name:24s} {n:7,}  {kind}")
    print(f"\nslowest cases: {[(s['seconds'], s['entry']) for s in report['slowest']]}")
    print(f"memory (MB) {report['rss_mb']}, threads {report['threads']}, healthy {report['healthy']}")
    print(f"undocumented errors: {len(report['undocumented'])}")


def _worker(models: str, cases: int, seed: int) -> dict:
    """One process of a parallel run: its own service and payload stream (seed)."""
    service = Service.load(models)
    return run_fuzz(service, cases, seed, log=lambda msg: print(f"[seed {seed}] {msg}", flush=True))


def merge(reports: list[dict], seconds: float) -> dict:
    """The reports of parallel workers as one (counts summed, the slowest cases and failures pooled)."""
    out = {**reports[0], "cases": sum(r["cases"] for r in reports), "seconds": round(seconds, 1)}
    out["seed"] = [r["seed"] for r in reports]
    for name in WEIGHTS:
        total: Counter = Counter()
        errors: Counter = Counter()
        for r in reports:
            total.update(r["per_entry_point"][name])
            errors.update(r["documented_errors"][name])
        out["per_entry_point"][name] = {k: round(v, 1) if k == "seconds" else v for k, v in total.items()}
        out["documented_errors"][name] = dict(errors.most_common(12))
    out["undocumented"] = [f for r in reports for f in r["undocumented"]]
    out["healthy"] = all(r["healthy"] for r in reports)
    out["rss_mb"] = [r["rss_mb"] for r in reports]
    out["threads"] = [r["threads"] for r in reports]
    out["slowest"] = sorted((c for r in reports for c in r["slowest"]), key=lambda c: -c["seconds"])[:5]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000, help="payloads to try, over all entry points")
    parser.add_argument("--seed", type=int, default=0, help="seed of the payload generator (a run is repeatable)")
    parser.add_argument("--workers", type=int, default=1, help="processes, each with seed + i and its share of cases")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="models folder to serve from")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--http", metavar="URL", help="instead: fuzz a running app's page events and API over HTTP")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.http:
        from scripts.fuzz_http import run_http

        report = run_http(args.http, args.cases, args.seed)
        print(json.dumps({k: v for k, v in report.items() if k != "undocumented"}, indent=1))
        print(f"undocumented errors: {len(report['undocumented'])}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
        return 1 if report["undocumented"] or not report["healthy"] else 0
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        shares = [args.cases // args.workers + (i < args.cases % args.workers) for i in range(args.workers)]
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [pool.submit(_worker, str(args.models), n, args.seed + i) for i, n in enumerate(shares)]
            report = merge([f.result() for f in futures], time.perf_counter() - start)
    else:
        service = Service.load(args.models)
        for problem in service.problems:
            print(f"model problem: {problem}")
        report = run_fuzz(service, args.cases, args.seed)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 1 if report["undocumented"] or not report["healthy"] else 0


if __name__ == "__main__":
    sys.exit(main())
