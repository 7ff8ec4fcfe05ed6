"""Figures of the classifiers: training curves, the most confused classes, sample drawings with their top-5, and
the live guesses as a drawing grows.

    python -m training.plots --data ../shared/quickdraw          # -> models/plots/*.png

The confusion matrix and the samples use the SHIPPED ONNX models (fused scores) on the held-out test split; the
live guesses are read from `training.evaluate_live`'s JSON (`--live`, <runs>/eval_live.json), when it is there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sketchlab import data as qd  # noqa: E402
from sketchlab.classify import Classifier  # noqa: E402
from sketchlab.runtime import MODELS_DIR  # noqa: E402
from sketchlab.split import Split  # noqa: E402
from training.classifier_config import RUNS  # noqa: E402
from training.evaluate import MAX_PER_CLASS, read_split, scores  # noqa: E402

CONFUSED = 20  # classes shown in the confusion matrix
SAMPLES = 16  # drawings in the sample grid (4 x 4)
# The run folders `training.train_all` makes (runs/<model>-<recipe>): the curves show these when there are any, not
# the experiments kept beside them.
RECIPE_RUNS = tuple(
    f"{model}-{recipe}" for model in ("stroke", "cnn") for recipe in ("baseline", "shipped", "finetune")
)


def training_curves(runs: dict[str, Path], path: Path) -> None:
    """Train loss and validation top-1 per epoch of each run (history.json of its run folder)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for label, folder in runs.items():
        hist_path = folder / "history.json"
        if not hist_path.exists():
            continue
        hist = json.loads(hist_path.read_text())
        epochs = [r["epoch"] for r in hist]
        (line,) = ax_loss.plot(epochs, [r["train_loss"] for r in hist], label=f"{label} train")
        ax_loss.plot(epochs, [r["drawings_loss"] for r in hist], "--", color=line.get_color(), label=f"{label} valid")
        ax_acc.plot(epochs, [r["drawings_top1"] for r in hist], color=line.get_color(), label=f"{label} top-1")
        ax_acc.plot(
            epochs, [r["drawings_macro_top5"] for r in hist], ":", color=line.get_color(), label=f"{label} macro top-5"
        )
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss (valid: simplified drawings)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy (before prior correction)", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion(log_probs: np.ndarray, labels: np.ndarray, classes: list[str], path: Path, top: int = CONFUSED) -> None:
    """Row-normalised confusion matrix of the `top` classes most involved in errors."""
    pred = log_probs.argmax(1)
    n = len(classes)
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (labels, pred), 1)
    errors = matrix - np.diag(np.diag(matrix))
    involved = errors.sum(0) + errors.sum(1)
    pick = np.argsort(-involved)[:top]
    sub = matrix[np.ix_(pick, pick)].astype(np.float64)
    rows = np.maximum(matrix[pick].sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(sub / rows, cmap="Blues", vmin=0, vmax=1)
    names = [classes[i] for i in pick]
    ax.set_xticks(range(len(pick)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(pick)), names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=f"fused model, test split: the {top} most confused classes")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class's drawings")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sample_grid(
    prepared: list,
    labels: np.ndarray,
    log_probs: np.ndarray,
    classes: list[str],
    path: Path,
    n: int = SAMPLES,
    seed: int = 0,
) -> None:
    """Random test drawings (the 28x28 raster the CNN saw) with the fused top-5."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(prepared), size=min(n, len(prepared)), replace=False)
    side = int(np.ceil(np.sqrt(len(idx))))
    fig, axes = plt.subplots(side, side, figsize=(side * 2.6, side * 3.5))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, i in zip(np.ravel(axes), idx, strict=False):
        ax.imshow(255 - prepared[i].raster, cmap="gray", vmin=0, vmax=255)
        top5 = np.argsort(-log_probs[i])[:5]
        lines = [f"{'*' if c == labels[i] else ' '}{classes[c][:16]} {np.exp(log_probs[i, c]):.2f}" for c in top5]
        ax.set_title(f"true: {classes[labels[i]]}", fontsize=8, color="green" if top5[0] == labels[i] else "red")
        ax.text(0, 30, "\n".join(lines), fontsize=6.5, va="top", family="monospace")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def live_guesses(live: dict, path: Path) -> None:
    """Fused top-1 and top-5 after the first 25 / 50 / 75 / 100% of the strokes (`training.evaluate_live` JSON)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    series = [
        ("raw", "fused", "players' raw strokes (all classes)"),
        ("simplified", "fused", "simplified drawings (all classes)"),
        ("simplified", "fused_rich", "simplified, the 22 rich classes"),
    ]
    for kind, key, label in series:
        at = live.get(kind, {}).get(key, {}).get("at_fraction")
        if not at:
            continue
        x = [100 * float(f) for f in at]
        (line,) = ax.plot(x, [v["top1"] for v in at.values()], "o-", label=f"{label}: top-1")
        ax.plot(x, [v["top5"] for v in at.values()], "o:", color=line.get_color(), label="top-5")
    ax.set(xlabel="% of the drawing's strokes drawn", ylabel="accuracy", ylim=(0, 1), xticks=[25, 50, 75, 100])
    ax.set_title(
        f"live guesses, fused, {live.get('split', '')} split: each drawing replayed stroke by stroke", fontsize=9
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(qd.default_data_dir()))
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--runs", default=str(RUNS))
    parser.add_argument("--out", default=str(MODELS_DIR / "plots"))
    parser.add_argument("--max-per-class", type=int, default=MAX_PER_CLASS, help="test drawings read per class")
    parser.add_argument("--live", default="", help="training.evaluate_live's JSON (default: <runs>/eval_live.json)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {p.name: p for p in sorted(Path(args.runs).glob("*-*")) if (p / "history.json").exists()}
    if runs:
        training_curves({k: v for k, v in runs.items() if k in RECIPE_RUNS} or runs, out / "training_curves.png")
    else:  # models trained elsewhere: keep the curves drawn where they trained
        print(f"no run history under {args.runs}: training_curves.png left as it is")
    clf = Classifier.load(args.models_dir)
    index = {w: i for i, w in enumerate(clf.classes)}
    prepared, labels, _ = read_split(Path(args.data), "simplified", Split.TEST, index, args.max_per_class)
    fused = scores(clf, prepared, settled=True)["fused"]  # the finished drawings, as the page shows them at rest
    confusion(fused, labels, clf.classes, out / "confusion_fused.png")
    sample_grid(prepared, labels, fused, clf.classes, out / "samples_top5.png")
    live = Path(args.live or Path(args.runs) / "eval_live.json")
    if live.exists():
        live_guesses(json.loads(live.read_text()), out / "live_guesses.png")
    print(f"wrote {sorted(p.name for p in out.glob('*.png'))} to {out}")


if __name__ == "__main__":
    main()
