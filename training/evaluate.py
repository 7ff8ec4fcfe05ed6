"""Evaluate the SHIPPED ONNX classifiers through the same sketchlab path the app uses.

    python -m training.evaluate --data ../shared/quickdraw --json runs/eval.json
    python -m training.evaluate --data /path/to/official/download --json out.json --split all

On the folder the models trained on (recognised by the data fingerprint in their manifests, wherever it lies) only
the held-out test split is evaluated; on any other folder in the official layout every drawing is (override with
--split). OUT.json holds, for each of
  stroke, cnn, fused  - simplified drawings (sketchlab.prepare.from_simplified),
  fused_raw           - raw strokes through the canvas preprocessing (sketchlab.prepare.from_canvas),
  cnn_bitmap          - Google's own 28x28 bitmaps,
{"n", "top1", "top3", "top5", "macro_top1", "macro_top5", "per_class": {word: {"n", "top1", "top5"}}}, always
ranking among all the model's classes. `--summary FILE` also writes the acceptance figures (rich classes etc.).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sketchlab import data as qd
from sketchlab.classify import Classifier
from sketchlab.errors import DrawingError
from sketchlab.prepare import from_canvas, from_simplified
from sketchlab.runtime import MODELS_DIR, Manifest
from sketchlab.split import Split

RICH_MIN = 440  # acceptance: classes with at least this many simplified drawings in the folder
BATCH = 512  # drawings per ONNX call


def ranking_metrics(log_probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """(N, C) scores and (N,) labels -> the issue's metric dict (per_class only for classes with drawings)."""
    n_classes = len(classes)
    if len(labels) == 0:
        return {"n": 0, "top1": 0.0, "top3": 0.0, "top5": 0.0, "macro_top1": 0.0, "macro_top5": 0.0, "per_class": {}}
    true = log_probs[np.arange(len(labels)), labels][:, None]
    rank = (log_probs > true).sum(axis=1)  # 0 = ranked first; ties count in the model's favour
    hits = {k: rank < k for k in (1, 3, 5)}
    n = np.bincount(labels, minlength=n_classes)
    per = {k: np.bincount(labels, weights=h, minlength=n_classes) for k, h in hits.items()}
    has = n > 0
    return {
        "n": int(len(labels)),
        "top1": float(hits[1].mean()),
        "top3": float(hits[3].mean()),
        "top5": float(hits[5].mean()),
        "macro_top1": float(np.mean(per[1][has] / n[has])),
        "macro_top5": float(np.mean(per[5][has] / n[has])),
        "per_class": {
            classes[c]: {"n": int(n[c]), "top1": float(per[1][c] / n[c]), "top5": float(per[5][c] / n[c])}
            for c in np.flatnonzero(has)
        },
    }


def subset_metrics(log_probs: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> dict:
    """top1 / top3 / macro_top5 over the items whose class is in the (C,) bool mask `keep`."""
    m = keep[labels]
    if not m.any():
        return {"n": 0}
    full = ranking_metrics(log_probs[m], labels[m], [str(i) for i in range(log_probs.shape[1])])
    return {k: full[k] for k in ("n", "top1", "top3", "top5", "macro_top5")}


def read_split(root: Path, kind: str, split: Split | None, index: dict[str, int]):
    """(prepared drawings, labels (N,), recognized (N,) bool) of one kind ("simplified" | "raw"), optionally one
    split. `recognized`: the record's flag, whether Google's own classifier recognised the drawing in the game (a
    record without the flag counts as recognised)."""
    prepared, labels, recognized = [], [], []
    make = from_simplified if kind == "simplified" else from_canvas
    for rec in qd.iter_drawings(root, kind, split=split):
        if rec.word not in index:
            continue
        try:
            prepared.append(make(rec.drawing))
        except DrawingError:
            continue
        labels.append(index[rec.word])
        recognized.append(rec.recognized is not False)
    return prepared, np.array(labels, np.int64), np.array(recognized, bool)


def read_bitmaps(root: Path, split: Split | None, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Google's bitmaps (B, 28, 28) and labels; a bitmap paired with a drawing takes that drawing's split."""
    pairs = qd.read_bitmap_pairs(root)
    images, labels = [], []
    for word in qd.bitmap_words(root):
        if word not in index:
            continue
        bitmaps = qd.read_bitmaps(root, word)
        rows = np.arange(len(bitmaps))
        if split is not None:
            keep = np.array([s == split for s in qd.bitmap_splits(word, len(bitmaps), pairs)], bool)
            rows = rows[keep] if len(rows) else rows
        images.append(np.asarray(bitmaps[rows]).reshape(-1, 28, 28))
        labels.append(np.full(len(rows), index[word], np.int64))
    if not images:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images), np.concatenate(labels)


def scores(clf: Classifier, prepared: list) -> dict[str, np.ndarray]:
    """Calibrated log-probabilities {"stroke" | "cnn" | "fused": (N, C)}, in batches."""
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(prepared), BATCH):
        for k, v in clf.combine(clf.raw_log_probs(prepared[i : i + BATCH])).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def rich_mask(root: Path, classes: list[str]) -> np.ndarray:
    counts = np.zeros(len(classes), np.int64)
    index = {w: i for i, w in enumerate(classes)}
    for w, i in index.items():
        path = root / "full" / "simplified" / f"{w}.ndjson"
        if path.exists():
            with open(path, "rb") as f:
                counts[i] = sum(1 for line in f if line.strip())
    return counts >= RICH_MIN


def evaluate(root: Path, split: Split | None, models_dir: Path = MODELS_DIR) -> tuple[dict, dict]:
    """(the issue's OUT.json dict, acceptance summary)."""
    clf = Classifier.load(models_dir)
    classes = clf.classes
    index = {w: i for i, w in enumerate(classes)}
    out, summary = {}, {"split": split.value if split else "all", "provider": clf.provider, "problems": clf.problems}
    t = time.time()
    simplified, labels, recognized = read_split(root, "simplified", split, index)
    s = scores(clf, simplified)
    for name in ("stroke", "cnn", "fused"):
        if name in s:
            out[name] = ranking_metrics(s[name], labels, classes)
    raw, raw_labels, _ = read_split(root, "raw", split, index)
    out["fused_raw"] = (
        ranking_metrics(scores(clf, raw)["fused"], raw_labels, classes)
        if raw
        else ranking_metrics(np.zeros((0, len(classes))), raw_labels, classes)
    )
    images, bm_labels = read_bitmaps(root, split, index)
    if "cnn" in clf.models:
        bm_scores = np.log(np.maximum(clf.raster_probabilities(images), 1e-30)) if len(images) else np.zeros((0, 1))
        out["cnn_bitmap"] = ranking_metrics(bm_scores, bm_labels, classes)
        if len(images):
            summary["cnn_bitmap_prior"] = bitmap_class_split(bm_scores, bm_labels)
    rich = rich_mask(root, classes)
    summary["rich_classes"] = [classes[i] for i in np.flatnonzero(rich)]
    for name in ("stroke", "cnn", "fused"):
        if name in s:
            summary[f"{name}_rich"] = subset_metrics(s[name], labels, rich)
    # The same rows split by the game's own verdict: what is lost on drawings nobody could recognise
    for flag, m in (("recognized", recognized), ("unrecognized", ~recognized)):
        summary[f"fused_rich_{flag}"] = subset_metrics(s["fused"][m], labels[m], rich)
    summary["macro_top5_all"] = {k: out[k]["macro_top5"] for k in out}
    summary["cnn_bitmap_top1"] = out.get("cnn_bitmap", {}).get("top1")
    summary["seconds"] = time.time() - t
    return out, summary


def bitmap_class_split(log_probs: np.ndarray, labels: np.ndarray) -> dict:
    """How much of the CNN's bitmap top-1 is the class prior: top-1 when only the classes that have bitmaps compete,
    and the share of bitmaps whose top guess is a class without any (in this data: a data-poor class)."""
    have = np.unique(labels)
    guess = log_probs.argmax(axis=1)
    return {
        "top1_among_bitmap_classes": float((have[log_probs[:, have].argmax(axis=1)] == labels).mean()),
        "top1_outside_bitmap_classes": float((~np.isin(guess, have)).mean()),
    }


def auto_split(root: Path, models_dir: Path) -> tuple[str, str]:
    """(split, why) for `--split auto`: "test" on the folder the models trained on, "all" on any other. The folder
    is recognised by content (`sketchlab.data.fingerprint`, recorded in the manifests at export), not by path, so a
    copy of the training data elsewhere is never scored on its training drawings."""
    trained_on = set()
    for name in ("stroke", "cnn"):
        path = models_dir / f"{name}.json"
        if path.exists():
            trained_on.add(Manifest.load(path).data.get("fingerprint"))
    here = qd.fingerprint(root)
    if here is not None and here in trained_on:
        return "test", f"{root} is the data the models trained on (fingerprint {here}): held-out test split only"
    return "all", f"{root} is not the data the models trained on (fingerprint {here}): every drawing"


def update_manifests(models_dir: Path, out: dict, summary: dict) -> None:
    """Store the held-out figures (without per_class) in models/*.json."""
    strip = {k: {m: v for m, v in d.items() if m != "per_class"} for k, d in out.items()}
    which = {"stroke": ["stroke"], "cnn": ["cnn", "cnn_bitmap"], "fusion": ["fused", "fused_raw"]}
    for name, keys in which.items():
        path = models_dir / f"{name}.json"
        if not path.exists():
            continue
        manifest = Manifest.load(path)
        manifest.metrics["test"] = {k: strip[k] for k in keys if k in strip}
        rich_key = {"stroke": "stroke_rich", "cnn": "cnn_rich", "fusion": "fused_rich"}[name]
        if rich_key in summary:
            manifest.metrics["test"]["rich_classes"] = summary[rich_key]
        manifest.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder in the official layout")
    parser.add_argument("--json", required=True, help="where to write the metrics")
    parser.add_argument(
        "--split",
        choices=["auto", "test", "valid", "train", "all"],
        default="auto",
        help="auto: test on the data the models trained on, all on any other folder",
    )
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--summary", default="", help="also write the acceptance figures here")
    parser.add_argument("--update-manifests", action="store_true", help="store the figures in models/*.json")
    args = parser.parse_args(argv)
    root = Path(args.data)
    split_name = args.split
    if split_name == "auto":
        split_name, why = auto_split(root, Path(args.models_dir))
        print(f"split: {why}", flush=True)
    if args.update_manifests and split_name != "test":
        parser.error(f"--update-manifests stores held-out test figures; this run evaluates split {split_name!r}")
    split = None if split_name == "all" else Split(split_name)
    out, summary = evaluate(root, split, Path(args.models_dir))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=1) + "\n")
    if args.update_manifests:
        update_manifests(Path(args.models_dir), out, summary)
    for k, d in out.items():
        print(
            f"{k:10s} n={d['n']:6d} top1={d['top1']:.4f} top3={d['top3']:.4f} top5={d['top5']:.4f} "
            f"macro_top5={d['macro_top5']:.4f}"
        )
    for k in ("stroke_rich", "cnn_rich", "fused_rich", "fused_rich_recognized", "fused_rich_unrecognized"):
        if k in summary:
            print(f"{k:10s} {json.dumps(summary[k])}")


if __name__ == "__main__":
    main()
