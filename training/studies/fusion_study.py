"""Two ways to fuse the classifiers differently, measured on the shared data's splits; neither ships.

    python -m training.studies.fusion_study rerank                               # the prior orders the top 5 only
    python -m training.studies.fusion_study members models /tmp/m1 /tmp/m2 ...   # ensembles of exported models

Both ask whether the fused rich-class row (issue 3: top-1 >= 92%, top-3 >= 97%) can be reached without a better
model. Results: docs/classifiers.md, "What was tried".

rerank: the five guesses come from the shipped fused scores, so top-5 and macro top-5 cannot change; only their
order is re-decided by the fused scores plus g * log prior (the training class frequencies). For each g it prints
the validation and test figures, macro top-1 included (what the data-poor classes pay).

members: each folder holds exported `stroke.onnx` and/or `cnn.onnx` (`python -m training.export_classifier
--checkpoint ... --out-dir DIR`). A family's score is the mean log-probability of its members, each the mean over
the drawing and its mirror; the stroke weight w of `w * stroke + (1 - w) * cnn` is tuned on validation by
`training.fuse`'s objective, for every choice of one or two members per family. Test figures are printed beside it.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from sketchlab import data as qd
from sketchlab.classify import Classifier, log_softmax, mean_of_views
from sketchlab.runtime import MODELS_DIR
from sketchlab.split import Split
from training.evaluate import ranking_metrics, read_bitmaps, read_split, rich_mask, scores, subset_metrics
from training.fuse import WEIGHT_GRID, _batched, objective

SPLITS = (Split.VALID, Split.TEST)
RERANK_GRID = (0.0, 0.3, 0.5, 0.7, 1.0)


def rerank(score: np.ndarray, order: np.ndarray, k: int = 5) -> np.ndarray:
    """(N, C) scores -> (N, C) scores whose top k are those of `score`, ordered by `order`, above everything else."""
    top = np.argsort(-score, axis=1)[:, :k]  # (N, k) the five guesses
    ranked = np.take_along_axis(top, np.argsort(-np.take_along_axis(order, top, 1), axis=1), 1)
    out = np.full_like(score, -np.inf)
    out[np.arange(len(score))[:, None], ranked] = np.arange(k, 0, -1)  # k for the first, 1 for the last
    return out


def figures(score: np.ndarray, labels: np.ndarray, rich: np.ndarray, classes: list[str]) -> dict:
    m, r = ranking_metrics(score, labels, classes), subset_metrics(score, labels, rich)
    return {"top1": m["top1"], "macro_top1": m["macro_top1"], "macro_top5": m["macro_top5"],
            "rich_top1": r["top1"], "rich_top3": r["top3"]}  # fmt: skip


def row(label: str, f: dict) -> str:
    return f"{label:<60}" + "".join(f"{100 * f[k]:>11.1f}" for k in ("top1", "macro_top1", "macro_top5",
                                                                    "rich_top1", "rich_top3"))  # fmt: skip


HEADER = f"{'':<60}{'top1':>11}{'macro_top1':>11}{'macro_top5':>11}{'rich_top1':>11}{'rich_top3':>11}"


def study_rerank(root: Path) -> None:
    clf = Classifier.load(MODELS_DIR)
    classes, index = clf.classes, {w: i for i, w in enumerate(clf.classes)}
    log_prior = clf.fusion.log_prior  # the training class frequencies, as training.fuse stored them
    rich = rich_mask(root, classes)
    print(HEADER)
    for split in SPLITS:
        prepared, labels, _ = read_split(root, "simplified", split, index)
        fused = scores(clf, prepared)["fused"]
        for g in RERANK_GRID:
            print(row(f"{split.value} g={g}", figures(rerank(fused, fused + g * log_prior), labels, rich, classes)))


def study_members(root: Path, dirs: list[str]) -> None:
    views: dict[str, dict[str, dict]] = {"stroke": {}, "cnn": {}}  # family -> member -> split -> (N, C)
    bitmap_views: dict[str, dict] = {}  # cnn member -> split -> (N, C), on Google's bitmaps
    drawings, bitmaps, classes = {}, {}, None  # split -> (prepared, labels) / (images, labels)
    for d in dirs:
        clf = Classifier.load(d)
        classes = classes or clf.classes
        if clf.classes != classes:
            raise SystemExit(f"{d}: its models have other classes than the first folder's")
        index = {w: i for i, w in enumerate(classes)}
        for split in SPLITS:
            if split not in drawings:
                drawings[split] = read_split(root, "simplified", split, index)[:2]
                bitmaps[split] = read_bitmaps(root, split, index)
            for name, (plain, mirrored) in _batched(clf, drawings[split][0]).items():
                views[name].setdefault(d, {})[split] = mean_of_views(plain, mirrored)
            if "cnn" in clf.models:
                bitmap_views.setdefault(d, {})[split] = mean_of_views(*clf.raster_views(bitmaps[split][0]))
    if not views["stroke"] or not views["cnn"]:
        raise SystemExit("members: the folders must hold at least one stroke model and one CNN between them")
    rich = rich_mask(root, classes)

    def family(source: dict, members: tuple, split: Split) -> np.ndarray:
        return log_softmax(np.mean([source[m][split] for m in members], axis=0))

    results = []
    for ks, kc in itertools.product((1, 2), repeat=2):
        for sm, cm in itertools.product(itertools.combinations(views["stroke"], ks),
                                        itertools.combinations(views["cnn"], kc)):  # fmt: skip
            s = {sp: family(views["stroke"], sm, sp) for sp in SPLITS}
            c = {sp: family(views["cnn"], cm, sp) for sp in SPLITS}
            y = {sp: drawings[sp][1] for sp in SPLITS}
            obj, w = max((objective(w * s[Split.VALID] + (1 - w) * c[Split.VALID], y[Split.VALID], classes)[0], w)
                         for w in WEIGHT_GRID)  # fmt: skip
            test = figures(w * s[Split.TEST] + (1 - w) * c[Split.TEST], y[Split.TEST], rich, classes)
            bm = ranking_metrics(family(bitmap_views, cm, Split.TEST), bitmaps[Split.TEST][1], classes)
            results.append((obj, sm, cm, w, test, bm["top1"]))
    results.sort(key=lambda r: -r[0])
    print("stroke members | cnn members | w: validation objective; test figures; test CNN top-1 on Google's bitmaps")
    print(HEADER + f"{'bitmaps':>11}{'valid obj':>11}")
    for obj, sm, cm, w, test, bm in results:
        label = f"{'+'.join(map(_short, sm))} | {'+'.join(map(_short, cm))} | {w:.2f}"
        print(row(label, test) + f"{100 * bm:>11.1f}{100 * obj:>11.1f}")


def _short(d: str) -> str:
    return Path(d).name or d


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("rerank", "members"))
    parser.add_argument("dirs", nargs="*", help="members: folders of exported models (the first sets the classes)")
    parser.add_argument("--data", default=str(qd.default_data_dir()))
    args = parser.parse_args(argv)
    if args.study == "rerank":
        study_rerank(Path(args.data))
    elif len(args.dirs) < 1:
        parser.error("members: name at least one folder of exported models")
    else:
        study_members(Path(args.data), args.dirs)


if __name__ == "__main__":
    main()
