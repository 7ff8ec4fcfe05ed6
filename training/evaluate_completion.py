"""Measure "Finish my drawing": held-out drawings cut after half their strokes, finished by the shipped generator.

    python -m training.evaluate_completion --data ../shared/quickdraw --json runs/completion.json --per-class 3 \\
        --grid docs/img/completions.png

Drawings: the first `--per-class` TEST-split drawings (sketchlab.split) with at least 2 strokes of every class the
generator knows, in file order (deterministic). Each is cut after its first floor(n / 2) strokes, as in
training.evaluate_generator's completion check, so the missing part has ceil(n / 2) >= 1 strokes. The half is given
to `Generator.complete` as canvas strokes (the simplified 0..255 coordinates, t = MS_PER_POINT a point, as the page
sends them), once for each mode:

- "word": finished as the true category (what "Finish my drawing as" a named category does), at the default guidance;
- "no word": finished as the model's "unknown" class (the page's default: the drawing decides);
- "guess" (GUESS, only when asked for: training.evaluate_generator does): finished as the fused classifier's top
  guess for the half, unguided, as the app does when the user names no category and the half is recognised.

Reported per mode: median strokes added next to median strokes missing, the share of added strokes that are dots (a
single point, or under DOT_EXTENT simplified pixels across), and the fused classifier's top-1 (over all its classes,
`sketchlab.classify.Classifier`, as the app classifies canvas strokes) on the half alone and on half + continuation:
macro (every class weighs the same) and pooled (every drawing does); and, as the ceiling, on the whole drawing. Each
figure for all classes, the rich ones (sketchlab.data.rich_words) and the 22 rich in the first release of the data
(training.evaluate.RICH_FIRST_RELEASE: the shipped generator saw hundreds of drawings of those, ~18 of the others). "second press": `complete` again on half +
continuation (the user presses the button twice), strokes added and dots.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchlab.data import default_data_dir, iter_drawings, rich_words
from sketchlab.errors import DrawingError
from sketchlab.generate import DEFAULT_GUIDANCE, MS_PER_POINT
from sketchlab.runtime import MODELS_DIR
from sketchlab.split import Split

from .evaluate import RICH_FIRST_RELEASE

MODES = ("word", "no word")  # finished as the true category / as the "unknown" class
GUESS = "guess"  # finished as the classifier's top guess for the half (sketchlab.service, guidance 0)
DOT_EXTENT = 3.0  # simplified pixels (of 255): a stroke spanning less reads as a dot, not a line
GRID_WORDS = (  # house (the example users tried), then classes the generator saw hundreds of (RICH_FIRST_RELEASE)
    "cat", "house", "bicycle", "snowman", "teapot", "airplane", "cake", "camera", "eye", "guitar", "smiley face", "television",
)  # fmt: skip
GRID_COLUMNS = 4
Canvas = list  # canvas strokes [[[x, y, t_ms], ...], ...]
Complete = Callable[..., Canvas]  # Generator.complete's signature


@dataclass
class Case:
    """One held-out drawing, cut, and what each mode made of it."""

    word: str
    half: Canvas  # the first floor(n / 2) strokes
    missing: int  # strokes cut off
    whole: Canvas = field(default_factory=list)  # the whole drawing, for the classifier's ceiling
    half_top1: bool = False
    whole_top1: bool = False
    added: dict[str, int] = field(default_factory=dict)  # mode -> strokes the continuation added
    dots: dict[str, int] = field(default_factory=dict)  # mode -> of which dots
    top1: dict[str, bool] = field(default_factory=dict)  # mode -> top-1 on half + continuation is the word
    second_added: dict[str, int] = field(default_factory=dict)  # mode -> strokes a second press added
    second_dots: dict[str, int] = field(default_factory=dict)
    new: dict[str, Canvas] = field(default_factory=dict)  # mode -> the continuation (for the grid)


# ---------------------------------------------------------------------------------------------------------------
# Drawings


def to_canvas(drawing) -> Canvas:
    """Simplified strokes [(n_i, 2), ...] -> canvas strokes with t = MS_PER_POINT a point."""
    out, t = [], 0.0
    for stroke in drawing:
        out.append([[float(x), float(y), t + i * MS_PER_POINT] for i, (x, y) in enumerate(np.asarray(stroke))])
        t += len(stroke) * MS_PER_POINT
    return out


def held_out_cases(root: Path, words: list[str], per_class: int) -> list[Case]:
    """The first `per_class` TEST drawings with >= 2 strokes of each word, cut after floor(n / 2) strokes."""
    cases = []
    for word in words:
        kept = 0
        for record in iter_drawings(root, "simplified", words=[word], split=Split.TEST):
            n = len(record.drawing)
            if n < 2:
                continue
            whole = to_canvas(record.drawing)
            cases.append(Case(word, whole[: n // 2], n - n // 2, whole))
            kept += 1
            if kept >= per_class:
                break
    return cases


def count_strokes(new: Canvas) -> tuple[int, int]:
    """Continuation strokes -> (strokes, dots). Canvas coordinates here are the simplified frame's."""
    dots = 0
    for stroke in new:
        xy = np.asarray(stroke, np.float64)[:, :2]
        dots += len(xy) < 2 or float((xy.max(0) - xy.min(0)).max()) < DOT_EXTENT
    return len(new), dots


# ---------------------------------------------------------------------------------------------------------------
# Measurement


def _top1(classifier, drawing: Canvas) -> str | None:
    try:
        return classifier.classify(drawing, top_k=1).fused[0].word
    except DrawingError:
        return None


def run_cases(
    cases: list[Case],
    complete: Complete,
    classifier,
    temperature: float,
    seed: int,
    guidance: float = DEFAULT_GUIDANCE,
    second_press: bool = True,
    modes: tuple[str, ...] = MODES,
) -> list[Case]:
    """Complete every case in each of `modes` (MODES, optionally GUESS; seed + case index, the same for every mode);
    fills the cases in place. The named category is guided at `guidance`, a guess is not (as in the app). A half the
    generator refuses (a single point after simplification) is dropped."""
    kept = []
    for i, case in enumerate(cases):
        guess = _top1(classifier, case.half)
        asks = {  # mode -> complete's word and guidance: only a named category is guided, as in the app
            "word": {"word": case.word, "guidance": guidance},
            "no word": {"word": None, "guidance": 0.0},
            GUESS: {"word": guess, "guidance": 0.0},
        }
        try:
            news = {mode: complete(case.half, temperature, seed + i, **asks[mode]) for mode in modes}
        except DrawingError:
            continue
        case.half_top1 = guess == case.word
        case.whole_top1 = _top1(classifier, case.whole) == case.word
        for mode, new in news.items():
            case.new[mode] = new
            case.added[mode], case.dots[mode] = count_strokes(new)
            case.top1[mode] = _top1(classifier, case.half + new) == case.word
            if second_press:
                again = complete(case.half + new, temperature, seed + i + 1, **asks[mode])
                case.second_added[mode], case.second_dots[mode] = count_strokes(again)
        kept.append(case)
    return kept


def _macro(cases: list[Case], hit: Callable[[Case], bool]) -> float:
    by_word: dict[str, list[bool]] = {}
    for c in cases:
        by_word.setdefault(c.word, []).append(bool(hit(c)))
    return float(np.mean([np.mean(v) for v in by_word.values()])) if by_word else 0.0


def summarise(cases: list[Case]) -> dict:
    """Per mode: stroke medians, dots, top-1 half vs completed (macro over classes and pooled)."""
    if not cases:
        return {"n": 0, "classes": 0, "modes": {}}
    out = {
        "n": len(cases),
        "classes": len({c.word for c in cases}),
        "median_strokes_missing": statistics.median(c.missing for c in cases) if cases else 0,
        "top1_half_macro": _macro(cases, lambda c: c.half_top1),
        "top1_half_pooled": float(np.mean([c.half_top1 for c in cases])) if cases else 0.0,
        "top1_whole_macro": _macro(cases, lambda c: c.whole_top1),  # the ceiling: the drawing as its author finished it
        "top1_whole_pooled": float(np.mean([c.whole_top1 for c in cases])) if cases else 0.0,
        "modes": {},
    }
    for mode in cases[0].added:
        added = [c.added[mode] for c in cases]
        row = {
            "median_strokes_added": statistics.median(added) if added else 0,
            "share_added_at_least_missing": float(np.mean([c.added[mode] >= c.missing for c in cases])),
            "share_added_nothing": float(np.mean([a == 0 for a in added])),
            "dot_share": sum(c.dots[mode] for c in cases) / max(1, sum(added)),
            "top1_completed_macro": _macro(cases, lambda c, m=mode: c.top1[m]),
            "top1_completed_pooled": float(np.mean([c.top1[mode] for c in cases])),
        }
        if cases and mode in cases[0].second_added:
            again = [c.second_added[mode] for c in cases]
            row["second_press_median_strokes_added"] = statistics.median(again)
            row["second_press_dot_share"] = sum(c.second_dots[mode] for c in cases) / max(1, sum(again))
        out["modes"][mode] = row
    return out


def by_group(cases: list[Case], groups: dict[str, set[str]]) -> dict:
    """`summarise` for all cases and for each group of classes (name -> words)."""
    return {"all": summarise(cases)} | {
        name: summarise([c for c in cases if c.word in words]) for name, words in groups.items()
    }


def table(groups: dict) -> str:
    """The summaries of `by_group` as one markdown table."""
    lines = [
        "| classes | mode | strokes added / missing (median) | added >= missing | dots | 2nd press adds "
        "| top-1 half -> completed, macro | pooled | whole drawing |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, summary in groups.items():
        lines += [_row(name, summary, mode, r) for mode, r in summary["modes"].items()]
    return "\n".join(lines)


def _row(name: str, summary: dict, mode: str, r: dict) -> str:
    return (
        f"| {name} ({summary['classes']}, {summary['n']} drawings) | {mode} "
        f"| {r['median_strokes_added']:g} / {summary['median_strokes_missing']:g} "
        f"| {r['share_added_at_least_missing']:.0%} | {r['dot_share']:.0%} "
        f"| {r.get('second_press_median_strokes_added', float('nan')):g} "
        f"| {summary['top1_half_macro']:.1%} -> {r['top1_completed_macro']:.1%} "
        f"| {summary['top1_half_pooled']:.1%} -> {r['top1_completed_pooled']:.1%} "
        f"| {summary['top1_whole_macro']:.1%} |"
    )


# ---------------------------------------------------------------------------------------------------------------
# Grid


def grid(cases: list[Case], path: Path, mode: str = "word", n: int = 12) -> None:
    """~n completions: the user's half in black, the continuation in blue; one of each of GRID_WORDS when present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = {}
    for c in cases:
        first.setdefault(c.word, c)
    chosen = [first[w] for w in GRID_WORDS if w in first]
    chosen += [c for c in cases if c not in chosen][: max(0, n - len(chosen))]
    chosen = chosen[:n]
    rows = -(-len(chosen) // GRID_COLUMNS)
    fig, axes = plt.subplots(rows, GRID_COLUMNS, figsize=(2.4 * GRID_COLUMNS, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, c in zip(axes.ravel(), chosen, strict=False):
        for stroke, colour in [(s, "black") for s in c.half] + [(s, "tab:blue") for s in c.new[mode]]:
            xy = np.asarray(stroke)[:, :2]
            ax.plot(xy[:, 0], xy[:, 1], color=colour, lw=1.5, marker="o" if len(xy) == 1 else None, ms=2)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        mark = "recognised" if c.top1[mode] else "not recognised"
        ax.set_title(f"{c.word} (+{c.added[mode]} strokes, {mark})", fontsize=8)
    fig.suptitle('"Finish my drawing" as the named category: held-out halves (black), continuations (blue)', fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    p.add_argument("--per-class", type=int, default=3, help="held-out drawings a class")
    p.add_argument("--words", nargs="*", default=None, help="only these classes (default: all the generator knows)")
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="for the named category")
    p.add_argument("--no-second-press", action="store_true", help="skip the second press (half the time)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--grid", type=Path, default=None)
    args = p.parse_args(argv)
    if args.data is None:
        p.error("no data folder: pass --data")

    from sketchlab.classify import Classifier
    from sketchlab.generate import Generator

    gen = Generator.load(args.models_dir)
    classifier = Classifier.load(args.models_dir, threads=1, parallel=False)
    words = args.words or gen.classes
    t0 = time.perf_counter()
    cases = held_out_cases(args.data, words, args.per_class)
    cases = run_cases(
        cases, gen.complete, classifier, args.temperature, args.seed, args.guidance, not args.no_second_press
    )
    groups = {"rich": set(rich_words(args.data)), "rich in the first release": set(RICH_FIRST_RELEASE)}
    summary = {"groups": by_group(cases, groups)}
    summary.update(
        split="test",
        cut="first floor(n / 2) strokes of drawings with n >= 2",
        per_class=args.per_class,
        temperature=args.temperature,
        seed=args.seed,
        guidance=args.guidance,
        minutes=(time.perf_counter() - t0) / 60,
    )
    print(table(summary["groups"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    if args.grid:
        grid(cases, args.grid)


if __name__ == "__main__":
    main()
