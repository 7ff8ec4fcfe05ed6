"""Print the README's results table (markdown) from the evaluation files that `training.train_all` writes.

    python -m scripts.results_table                      # runs/*.json of the last `make models` / `make classifiers`
    python -m scripts.results_table --previous runs/eval_v1.json --previous-summary runs/acceptance_v1.json
    python -m scripts.results_table ... --write README.md docs/classifiers.md   # replace the table between the markers

Columns: the baseline recipes (runs/eval_baseline.json, `train_all --baselines`), optionally an earlier set of
models scored on the same test split (`training.evaluate --models-dir OLD --split test`), and the shipped models
(runs/eval_test.json, runs/acceptance.json, runs/eval_live.json, runs/generator_eval.json). A cell whose file is
missing prints "-". Every classifier figure ranks all of the models' classes; macro = every class weighing the same.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RUNS = Path(__file__).resolve().parent.parent / "runs"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FEW_DRAWINGS = 60  # the generator's row for the classes with fewer simplified drawings than this (data-poor)


def _load(path: str | Path) -> dict:
    p = Path(path) if path else None
    return json.loads(p.read_text()) if p and p.exists() else {}


def _pct(*values) -> str:
    if any(v is None for v in values):
        return "-"
    return " / ".join(f"{100 * v:.1f}" for v in values)


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def classifier_rows(ev: dict, acc: dict) -> dict[str, str]:
    """The classifier cells of one column: evaluate's OUT.json and its --summary."""

    def four(name):
        return _pct(*(_get(ev, name, k) for k in ("top1", "top5", "macro_top1", "macro_top5")))

    groups = {
        g: _pct(*(_get(acc, "groups", g, "fused", k) for k in ("top1", "macro_top1", "macro_top5")))
        for g in ("with_key_id", "without_key_id")
    }
    return {
        "raw": four("fused_raw"),
        "simplified": four("fused"),
        "stroke": four("stroke"),
        "cnn": four("cnn"),
        "bitmap": _pct(_get(ev, "cnn_bitmap", "top1")),
        "rich": _pct(_get(acc, "fused_rich", "top1"), _get(acc, "fused_rich", "top3")),
        "first": _pct(_get(acc, "fused_rich_first_release", "top1"), _get(acc, "fused_rich_first_release", "top3")),
        "keyed": groups["with_key_id"],
        "unkeyed": groups["without_key_id"],
    }


def live_rows(live: dict) -> dict[str, str]:
    fused = _get(live, "raw", "fused") or {}
    return {
        "live_named": _pct(_get(fused, "guessed", "share_any_time"), _get(fused, "guessed", "share")),
        "live_half": _pct(_get(fused, "at_fraction", "0.5", "top1"), _get(fused, "at_fraction", "0.5", "top5")),
    }


def generator_rows(gen: dict, quality: dict, counts: dict) -> dict[str, str]:
    per_class = quality.get("per_class", {})
    few = [w for w in per_class if counts.get(w, {}).get("simplified", 0) < FEW_DRAWINGS]
    mean = (lambda ws: sum(per_class[w]["top1"] for w in ws) / len(ws)) if per_class else None
    return {
        "gen_all": _pct(mean(list(per_class))) if per_class else "-",
        "gen_few": f"{_pct(mean(few))} ({len(few)} classes)" if few else "-",
        "gen_rich": _pct(_get(gen, "overall", "top1"), _get(gen, "overall", "top3")),
    }


ROWS = [  # (key, what, metric, target)
    ("raw", "fused, the app's canvas path on the players' raw drawings", "top-1 / top-5 / macro top-1 / macro top-5",
     "macro >= 60 / 86"),
    ("simplified", "fused, simplified drawings", "top-1 / top-5 / macro top-1 / macro top-5", "macro >= 58 / 85"),
    ("stroke", "stroke model alone", "top-1 / top-5 / macro top-1 / macro top-5", ""),
    ("cnn", "CNN alone", "top-1 / top-5 / macro top-1 / macro top-5", ""),
    ("bitmap", "CNN on Google's 28x28 bitmaps (49 classes, docs/classifiers.md)", "top-1", ">= 85"),
    ("rich", "fused, the 53 classes with >= 440 drawings", "top-1 / top-3", ">= 88"),
    ("first", "fused, the 22 classes rich in the first release", "top-1 / top-3", ">= 89"),
    ("keyed", "fused, simplified drawings with a key_id (the game's files)", "top-1 / macro top-1 / macro top-5", ""),
    ("unkeyed", "fused, simplified drawings without a key_id", "top-1 / macro top-1 / macro top-5", ""),
    ("live_named", "live, raw drawings: named right at some moment / at a stroke end", "share", ">= 75"),
    ("live_half", "live, raw drawings, after half the strokes", "top-1 / top-5", ""),
    ("gen_all", "generator, T = 0.5, all 345 classes, 30 samples a class", "fused top-1", ">= 40"),
    ("gen_few", f"generator, classes with < {FEW_DRAWINGS} drawings", "fused top-1", ">= 20"),
    ("gen_rich", "generator, the 53 rich classes", "fused top-1 / top-3", ""),
]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(RUNS))
    parser.add_argument("--data", default="../shared/quickdraw", help="for counts.json (the generator's rows)")
    parser.add_argument("--previous", default="", help="evaluate's OUT.json of earlier models on the same split")
    parser.add_argument("--previous-summary", default="", help="... and its --summary")
    parser.add_argument("--previous-name", default="previous models")
    parser.add_argument("--quality", default="models/generator_quality.json")
    parser.add_argument("--write", nargs="*", default=[], help=f"files whose {BEGIN} ... {END} table to replace")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    shipped = classifier_rows(_load(runs / "eval_test.json"), _load(runs / "acceptance.json"))
    shipped |= live_rows(_load(runs / "eval_live.json"))
    counts = _load(Path(args.data) / "counts.json")
    shipped |= generator_rows(_load(runs / "generator_eval.json"), _load(args.quality), counts)
    columns = {
        "baseline": classifier_rows(_load(runs / "eval_baseline.json"), _load(runs / "acceptance_baseline.json"))
    }
    if args.previous:
        columns[args.previous_name] = classifier_rows(_load(args.previous), _load(args.previous_summary))
    columns["shipped"] = shipped
    lines = [
        "| test split | metric | " + " | ".join(columns) + " | target |",
        "|---|---|" + "---|" * len(columns) + "---|",
    ]
    for key, what, metric, target in ROWS:
        cells = " | ".join(col.get(key, "-") for col in columns.values())
        lines.append(f"| {what} | {metric} | {cells} | {target} |")
    table = "\n".join(lines)
    print(table)
    for path in args.write:
        write_table(Path(path), table)


def write_table(path: Path, table: str) -> None:
    """Replace the markdown table inside `path`'s BEGIN ... END block with `table`, keeping the text around it.
    Exits with a message when the markers or the table are missing."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    lines = block.split("\n")
    rows = [i for i, line in enumerate(lines) if line.startswith("|")]
    if not rows:
        raise SystemExit(f"{path}: no table between {BEGIN} and {END}")
    start = end = rows[0]
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    block = "\n".join(lines[:start] + [table] + lines[end:])
    path.write_text(head + BEGIN + block + END + tail)


if __name__ == "__main__":
    main()
