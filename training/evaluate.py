"""Evaluate the SHIPPED ONNX classifiers through the same sketchlab path the app uses.

    python -m training.evaluate --data ../shared/quickdraw --json runs/eval.json
    python -m training.evaluate --data /path/to/official/download --json out.json --split all

On the folder the models trained on (recognised by the data fingerprint in their manifests, wherever it lies) only
the held-out test split is evaluated; on any other folder in the official layout every drawing is (override with
--split). OUT.json holds, for each of
  stroke, cnn, fused  - simplified drawings (sketchlab.prepare.from_simplified),
  fused_raw           - raw strokes through the canvas preprocessing (sketchlab.prepare.from_canvas),
  cnn_bitmap          - Google's own 28x28 bitmaps,
{"n", "top1", "top3", "top5", "macro_top1", "macro_top5", "per_class": {word: {"n", "top1", "top3", "top5"}}},
always ranking among all the model's classes (per_class also has top3, so the top-3 of any set of classes can be
added up from OUT.json). `--summary FILE` also writes the acceptance figures: the rich classes are those with at
least 440 simplified drawings in --data, or in --rich-from (e.g. the training folder, for a smaller evaluation set
whose classes never reach 440 drawings), and RICH_FIRST_RELEASE; and under "groups" every figure again for the
drawings with and without a key_id and those the game did or did not recognise (`iter_split`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchlab import data as qd
from sketchlab.classify import MODEL_NAMES, Classifier
from sketchlab.errors import DrawingError
from sketchlab.prepare import from_canvas, from_simplified
from sketchlab.runtime import MODELS_DIR, Manifest
from sketchlab.split import Split
from training import bitmap_rows

BATCH = 512  # drawings per ONNX call
TOP_K = (1, 3, 5)
CONFIDENCE_BINS = 15  # equal-width bins of the top guess's probability, for the calibration error
# Items a class that `read_split` / `read_bitmaps` callers hold in memory (fusion tuning, plots): every one of the
# shared data (its largest class has ~450 in a split), a bounded, class-balanced sample of a full download.
MAX_PER_CLASS = 1000
GROUPS = ("recognized", "unrecognized", "with_key_id", "without_key_id")  # the drawing groups of `iter_split`
# The 22 classes with >= 440 simplified drawings in the shared sample's first release (29,851 drawings), before it
# grew to 53 such classes: kept as a row of their own so figures stay comparable across releases.
RICH_FIRST_RELEASE = (
    "airplane", "bicycle", "cake", "calculator", "camera", "cat", "computer", "crayon", "dragon", "eye", "guitar",
    "headphones", "map", "necklace", "paintbrush", "paint can", "piano", "power outlet", "smiley face", "snowman",
    "teapot", "television",
)  # fmt: skip


@dataclass
class Tally:
    """Per-class counts of items and of top-1 / top-3 / top-5 hits, added up batch by batch. Nothing is kept per
    item, so every drawing of a full official download (50M) is evaluated in constant memory."""

    n_classes: int
    n: np.ndarray = field(init=False)  # (C,) items of each class
    hits: dict[int, np.ndarray] = field(init=False)  # k -> (C,) items of each class ranked within the top k

    def __post_init__(self) -> None:
        self.n = np.zeros(self.n_classes, np.int64)
        self.hits = {k: np.zeros(self.n_classes, np.int64) for k in TOP_K}

    def add(self, log_probs: np.ndarray, labels: np.ndarray) -> Tally:
        """Count a batch: (B, C) scores, (B,) labels. Ties count in the model's favour."""
        true = log_probs[np.arange(len(labels)), labels][:, None]
        return self.add_ranks((log_probs > true).sum(axis=1), labels)

    def add_ranks(self, rank: np.ndarray, labels: np.ndarray) -> Tally:
        """Count a batch by the true class's (B,) rank (0 = ranked first) and the (B,) labels."""
        if len(labels):
            self.n += np.bincount(labels, minlength=self.n_classes)
            for k in TOP_K:
                self.hits[k] += np.bincount(labels, weights=rank < k, minlength=self.n_classes).astype(np.int64)
        return self

    def metrics(self, classes: list[str]) -> dict:
        """The issue's metric dict (per_class only for classes with items)."""
        total, has = int(self.n.sum()), self.n > 0
        if total == 0:
            return {
                "n": 0,
                "top1": 0.0,
                "top3": 0.0,
                "top5": 0.0,
                "macro_top1": 0.0,
                "macro_top5": 0.0,
                "per_class": {},
            }
        rate = {k: h[has] / self.n[has] for k, h in self.hits.items()}
        return {
            "n": total,
            **{f"top{k}": float(self.hits[k].sum() / total) for k in TOP_K},
            "macro_top1": float(rate[1].mean()),
            "macro_top5": float(rate[5].mean()),
            "per_class": {
                classes[c]: {
                    "n": int(self.n[c]),
                    **{f"top{k}": float(self.hits[k][c] / self.n[c]) for k in TOP_K},
                }
                for c in np.flatnonzero(has)
            },
        }

    def subset(self, keep: np.ndarray) -> dict:
        """n, top1 / top3 / top5, macro_top1 and macro_top5 over the items whose class is in the (C,) bool mask `keep`."""
        part = Tally(int(keep.sum()))
        part.n, part.hits = self.n[keep], {k: h[keep] for k, h in self.hits.items()}
        if part.n.sum() == 0:
            return {"n": 0}
        full = part.metrics([str(i) for i in range(part.n_classes)])
        return {k: full[k] for k in ("n", "top1", "top3", "top5", "macro_top1", "macro_top5")}


@dataclass
class Reliability:
    """How sure the top guess is against how often it is right, per class and in CONFIDENCE_BINS equal bins of
    confidence, added up batch by batch. `metrics()` gives the expected calibration error (Guo et al. 2017: the gap
    between confidence and accuracy in each bin, weighted by the bin's share of the items; 0 when the probabilities
    the app shows are honest) and the negative log-likelihood, each over the drawings as they come (`ece`, `nll`)
    and with every class weighing the same (`ece_classes`, `nll_classes`), as a player's drawings do: the game
    prompts every category equally often."""

    n_classes: int
    n: np.ndarray = field(init=False)  # (C, CONFIDENCE_BINS) items of each class whose top guess falls in each bin
    confidence: np.ndarray = field(init=False)  # (C, CONFIDENCE_BINS) sum of the top guess's probability
    correct: np.ndarray = field(init=False)  # (C, CONFIDENCE_BINS) items whose top guess was right
    nll: np.ndarray = field(init=False)  # (C,) sum of -log p(true class)

    def __post_init__(self) -> None:
        shape = (self.n_classes, CONFIDENCE_BINS)
        self.n, self.confidence, self.correct = np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape)
        self.nll = np.zeros(self.n_classes)

    def add(self, log_probs: np.ndarray, labels: np.ndarray) -> Reliability:
        """Count a batch: (B, C) log-probabilities, (B,) labels."""
        if len(labels):
            confidence = np.exp(log_probs.max(axis=1))
            right = log_probs.argmax(axis=1) == labels
            cell = labels * CONFIDENCE_BINS + np.minimum(
                (confidence * CONFIDENCE_BINS).astype(np.int64), CONFIDENCE_BINS - 1
            )
            size = self.n.size
            self.n += np.bincount(cell, minlength=size).reshape(self.n.shape)
            self.confidence += np.bincount(cell, weights=confidence, minlength=size).reshape(self.n.shape)
            self.correct += np.bincount(cell, weights=right, minlength=size).reshape(self.n.shape)
            self.nll -= np.bincount(labels, weights=log_probs[np.arange(len(labels)), labels], minlength=self.n_classes)
        return self

    def metrics(self) -> dict:
        per_class = self.n.sum(axis=1)
        total, has = int(per_class.sum()), per_class > 0
        if total == 0:
            return {"n": 0}
        weight = 1.0 / (per_class[has, None] * has.sum())  # each class with items weighs the same
        gap = self.confidence - self.correct
        return {
            "n": total,
            "ece": float(np.abs(gap.sum(axis=0)).sum() / total),
            "ece_classes": float(np.abs((gap[has] * weight).sum(axis=0)).sum()),
            "mean_confidence": float(self.confidence.sum() / total),
            "top1": float(self.correct.sum() / total),
            "nll": float(self.nll.sum() / total),
            "nll_classes": float((self.nll[has] * weight[:, 0]).sum()),
        }


def ranking_metrics(log_probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """(N, C) scores and (N,) labels -> the issue's metric dict, ranking among all C classes."""
    return Tally(len(classes)).add(log_probs, labels).metrics(classes)


def subset_metrics(log_probs: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> dict:
    """top1 / top3 / top5 / macro_top5 over the items whose class is in the (C,) bool mask `keep`."""
    return Tally(log_probs.shape[1]).add(log_probs, labels).subset(keep)


def iter_split(
    root: Path, kind: str, split: Split | None, index: dict[str, int], per_class: int = 0, size: int = BATCH
):
    """Batches of up to `size` (prepared drawings, labels (B,), groups {name: (B,) bool}) of one kind ("simplified" |
    "raw"), optionally one split, optionally the first `per_class` records of each class. `groups` (GROUPS) marks
    each drawing by the game's own verdict (`recognized`: Google's classifier named it in the game; a record without
    the flag counts as recognised) and by whether the record has a `key_id` (the game's files do; the points-only
    source of the shared sample does not). Drawings the preprocessing refuses (empty ones) and words that are not
    model classes are left out."""
    prepared, labels, recognized, keyed = [], [], [], []

    def batch():
        rec, key = np.array(recognized, bool), np.array(keyed, bool)
        groups = {"recognized": rec, "unrecognized": ~rec, "with_key_id": key, "without_key_id": ~key}
        return prepared, np.array(labels, np.int64), groups

    make = from_simplified if kind == "simplified" else from_canvas
    for rec in qd.iter_drawings(root, kind, split=split, limit_per_word=per_class or None):
        if rec.word not in index:
            continue
        try:
            prepared.append(make(rec.drawing))
        except DrawingError:
            continue
        labels.append(index[rec.word])
        recognized.append(rec.recognized is not False)
        keyed.append(rec.key_id is not None)
        if len(prepared) == size:
            yield batch()
            prepared, labels, recognized, keyed = [], [], [], []
    if prepared:
        yield batch()


def read_split(root: Path, kind: str, split: Split | None, index: dict[str, int], per_class: int = 0):
    """All of `iter_split` at once: (prepared drawings, labels (N,), groups {name: (N,) bool}). For fusion tuning and
    plots, bounded by `per_class` on a large folder; `evaluate` streams."""
    prepared, labels, groups = [], [np.zeros(0, np.int64)], {g: [np.zeros(0, bool)] for g in GROUPS}
    for p, lab, g in iter_split(root, kind, split, index, per_class):
        prepared += p
        labels.append(lab)
        for name in GROUPS:
            groups[name].append(g[name])
    return prepared, np.concatenate(labels), {g: np.concatenate(v) for g, v in groups.items()}


def iter_bitmaps(root: Path, split: Split | None, index: dict[str, int], per_class: int = 0, size: int = BATCH):
    """Batches of up to `size` of Google's bitmaps (B, 28, 28) uint8 and labels (B,), read from the memory-mapped
    .npy files, optionally the first `per_class` of each file; each row has the class and split `training.bitmap_rows`
    gives it (a drawing's rendering takes that drawing's split)."""
    for f in bitmap_rows.bitmap_files(root):
        rows = np.array(
            [
                i
                for i, (label, s) in enumerate(zip(f.labels, f.splits, strict=True))
                if label in index and split in (None, s)
            ],
            np.int64,
        )
        if per_class:
            rows = rows[:per_class]
        for i in range(0, len(rows), size):
            chunk = rows[i : i + size]
            labels = np.array([index[f.labels[j]] for j in chunk], np.int64)
            yield np.asarray(f.bitmaps[chunk]).reshape(-1, 28, 28), labels


def read_bitmaps(
    root: Path, split: Split | None, index: dict[str, int], per_class: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """All of `iter_bitmaps` at once: (B, 28, 28) bitmaps and (B,) labels."""
    images, labels = [np.zeros((0, 28, 28), np.uint8)], [np.zeros(0, np.int64)]
    for im, lab in iter_bitmaps(root, split, index, per_class):
        images.append(im)
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


def scores(clf: Classifier, prepared: list, settled: bool = False) -> dict[str, np.ndarray]:
    """Calibrated log-probabilities {"stroke" | "cnn" | "fused": (N, C)}, in batches. `settled`: as the app scores a
    finished drawing once the pen has rested (`Fusion.settled`), else as right after a stroke."""
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(prepared), BATCH):
        for k, v in clf.combine(clf.raw_log_probs(prepared[i : i + BATCH]), settled=settled).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def outputs(clf: Classifier) -> list[str]:
    """The scores `Classifier.combine` gives: each loaded model's and "fused"."""
    return [name for name in MODEL_NAMES if name in clf.models] + ["fused"]


def rich_mask(root: Path, classes: list[str]) -> np.ndarray:
    """(C,) bool over the models' classes: the folder's rich classes (`sketchlab.data.rich_words`)."""
    rich = set(qd.rich_words(root, classes))
    return np.array([w in rich for w in classes], bool)


def evaluate(
    root: Path, split: Split | None, models_dir: Path = MODELS_DIR, rich_from: Path | None = None
) -> tuple[dict, dict]:
    """(the issue's OUT.json dict, acceptance summary), streaming: one batch of drawings in memory at a time. The
    summary's rich classes are counted in `rich_from` (default: `root`)."""
    clf = Classifier.load(models_dir)
    classes = clf.classes
    index = {w: i for i, w in enumerate(classes)}
    n = len(classes)
    out, summary = {}, {"split": split.value if split else "all", "provider": clf.provider, "problems": clf.problems}
    t = time.time()

    names = outputs(clf)
    drawings = {name: Tally(n) for name in names}
    reliability = {name: Reliability(n) for name in names}  # of the probabilities the app shows once the pen rests
    grouped = {g: {name: Tally(n) for name in [*names, "fused_raw"]} for g in GROUPS}  # every figure, per group
    for prepared, labels, groups in iter_split(root, "simplified", split, index):
        s = scores(clf, prepared, settled=True)
        for name in names:
            drawings[name].add(s[name], labels)
            reliability[name].add(s[name], labels)
            for g, mask in groups.items():
                grouped[g][name].add(s[name][mask], labels[mask])
    out |= {name: drawings[name].metrics(classes) for name in names}

    raw = Tally(n)
    reliability["fused_raw"] = Reliability(n)
    for prepared, labels, groups in iter_split(root, "raw", split, index):
        fused = scores(clf, prepared, settled=True)["fused"]
        raw.add(fused, labels)
        reliability["fused_raw"].add(fused, labels)
        for g, mask in groups.items():
            grouped[g]["fused_raw"].add(fused[mask], labels[mask])
    out["fused_raw"] = raw.metrics(classes)
    drawings["fused_raw"] = raw

    if "cnn" in clf.models:
        bitmaps = Tally(n)
        shown = {label for f in bitmap_rows.bitmap_files(root) for label in set(f.labels)}  # misfiled rows included
        have = np.array(sorted(index[w] for w in shown if w in index), np.int64)
        among = outside = 0
        for images, labels in iter_bitmaps(root, split, index):
            log_probs = np.log(np.maximum(clf.raster_probabilities(images), 1e-30))
            bitmaps.add(log_probs, labels)
            right, elsewhere = bitmap_class_hits(log_probs, labels, have)
            among, outside = among + right, outside + elsewhere
        out["cnn_bitmap"] = bitmaps.metrics(classes)
        if total := int(bitmaps.n.sum()):
            summary["cnn_bitmap_prior"] = {
                "top1_among_bitmap_classes": among / total,
                "top1_outside_bitmap_classes": outside / total,
            }

    rich = rich_mask(rich_from or root, classes)
    first = np.isin(classes, RICH_FIRST_RELEASE)
    summary["rich_from"] = str(rich_from or root)
    summary["rich_classes"] = [classes[i] for i in np.flatnonzero(rich)]
    for name, tally in drawings.items():
        summary[f"{name}_rich"] = tally.subset(rich)
        summary[f"{name}_rich_first_release"] = tally.subset(first)
    for g in ("recognized", "unrecognized"):
        summary[f"fused_rich_{g}"] = grouped[g]["fused"].subset(rich)
    summary["groups"] = {
        g: {name: group_metrics(tally, classes, rich, first) for name, tally in tallies.items()}
        for g, tallies in grouped.items()
    }
    summary["macro_top5_all"] = {k: out[k]["macro_top5"] for k in out}
    summary["calibration"] = {name: r.metrics() for name, r in reliability.items()}
    summary["cnn_bitmap_top1"] = out.get("cnn_bitmap", {}).get("top1")
    summary["seconds"] = time.time() - t
    return out, summary


def group_metrics(tally: Tally, classes: list[str], rich: np.ndarray, first: np.ndarray) -> dict:
    """One group's figures: the metric dict without per_class, with its rich rows (both (C,) bool masks)."""
    metrics = {k: v for k, v in tally.metrics(classes).items() if k != "per_class"}
    return metrics | {"rich": tally.subset(rich), "rich_first_release": tally.subset(first)}


def bitmap_class_hits(log_probs: np.ndarray, labels: np.ndarray, have: np.ndarray) -> tuple[int, int]:
    """How much of the CNN's bitmap top-1 is the class prior, counted over a batch: (bitmaps ranked first when only
    the classes that have bitmaps, indices `have`, compete; bitmaps whose top guess is a class without any, in this
    data a data-poor class)."""
    right = int((have[log_probs[:, have].argmax(axis=1)] == labels).sum())
    elsewhere = int((~np.isin(log_probs.argmax(axis=1), have)).sum())
    return right, elsewhere


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


def chosen_split(root: Path, name: str, models_dir: Path) -> tuple[str, Split | None]:
    """A --split choice -> (its name, the Split or None for "all"); "auto" is resolved by `auto_split`, saying why."""
    if name == "auto":
        name, why = auto_split(root, models_dir)
        print(f"split: {why}", flush=True)
    return name, None if name == "all" else Split(name)


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
        output = {"stroke": "stroke", "cnn": "cnn", "fusion": "fused"}[name]
        if f"{output}_rich" in summary:
            manifest.metrics["test"]["rich_classes"] = summary[f"{output}_rich"]
        if output in summary.get("calibration", {}):
            manifest.metrics["test"]["calibration"] = summary["calibration"][output]
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
    parser.add_argument(
        "--rich-from",
        default="",
        help=f"folder whose classes with >= {qd.RICH_MIN} drawings are rich (default: --data)",
    )
    parser.add_argument("--update-manifests", action="store_true", help="store the figures in models/*.json")
    args = parser.parse_args(argv)
    root = Path(args.data)
    split_name, split = chosen_split(root, args.split, Path(args.models_dir))
    if args.update_manifests and split_name != "test":
        parser.error(f"--update-manifests stores held-out test figures; this run evaluates split {split_name!r}")
    out, summary = evaluate(root, split, Path(args.models_dir), Path(args.rich_from) if args.rich_from else None)
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
    for k in ("stroke_rich", "cnn_rich", "fused_rich", "fused_raw_rich", "fused_rich_first_release"):
        if k in summary:
            print(f"{k:10s} {json.dumps(summary[k])}")
    for g, by_name in summary["groups"].items():
        for k, d in by_name.items():
            if d["n"]:
                print(
                    f"{g:14s} {k:9s} n={d['n']:6d} top1={d['top1']:.4f} top5={d['top5']:.4f} "
                    f"macro_top1={d['macro_top1']:.4f} macro_top5={d['macro_top5']:.4f} "
                    f"rich_top1={d['rich'].get('top1', float('nan')):.4f}"
                )
    for k, c in summary["calibration"].items():
        if c["n"]:
            print(
                f"calibration {k}: ece={c['ece']:.4f} ece_classes={c['ece_classes']:.4f} "
                f"mean_confidence={c['mean_confidence']:.4f} top1={c['top1']:.4f}"
            )


if __name__ == "__main__":
    main()
