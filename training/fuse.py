"""Tune how the two classifiers combine, on the validation split, and write models/fusion.json.

    python -m training.fuse --data ../shared/quickdraw

The models learn a class prior from what they train on: the CNN's class-balanced sampling flattens it, and the stroke
model (natural frequencies) keeps the training data's, where a rich class has up to 100 times the drawings of a poor
one. The game prompts every category equally often, so a player's drawings come with a flat prior. A prior
correction adds g * log prior to the log-probabilities (the prior: the training drawings per class recorded in the
models' manifests, so the training data is never re-read): g < 0 takes out part of the prior a model learned
(logit adjustment, Menon et al. 2021), g > 0 puts back the one balanced sampling flattened. g is tuned per model and
for the fusion, whose score is w * log p_stroke + (1 - w) * log p_cnn + g * log prior. Everything is chosen on the
validation split (never the test split) by one objective (`objective`): the mean of macro top-1 and macro top-5
(every class weighing the same) and of top-1 on the rich classes' drawings, so that the correction cannot trade the
rich classes away to gain the poor ones (docs/classifiers.md has the measured trade-off). Each model's log p is either
its own or the mean over the drawing and its left-right mirror (test-time mirroring; the models were trained with
mirrored drawings): the combinations that fit the latency budget (`--mirror-budget-ms`) are tuned alike and the
best fused objective wins, or a cheaper one within MIRROR_TOLERANCE of it. Last, each output gets the temperature
that makes its probabilities honest on validation (temperature scaling, Guo et al. 2017: the lowest negative
log-likelihood, every class weighing the same, as the game prompts every category equally often): the app shows them
as confidence bars, and a temperature never changes which guesses come first. They are fitted on what the page shows
guesses for (`--calibrate stroke-ends`, the default): every validation drawing, raw and simplified, as it stood
after each of its strokes, through the canvas path (`training.evaluate_live.read_stroke_ends`); an unfinished
drawing is guessed less often right at the same confidence, so temperatures fitted on finished drawings only
(`--calibrate finished`) make the live headline over-confident.
While the pen is down the page asks for guesses about 7 times a second, on a drawing whose last stroke is still being
drawn; those requests get their own stroke weight and temperatures (`Fusion.pen_down`), tuned the same way on every
such request of the raw validation drawings (`training.evaluate_live.read_pen_down`), with the mirroring and prior
chosen above.
Once the pen has rested (SETTLE_MS after a change) the page asks once more, and the drawing is then most likely
finished: guessed right more often, at the same scores, than the unfinished ones of every stroke end. Those requests
get temperatures of their own (`Fusion.settled`; the weights stay the ones tuned on finished drawings above), fitted
the same way on what the page sends then for the validation drawings (`training.evaluate_live.read_settled`: every
finished drawing, raw and simplified, and the raw ones' pauses).
Last, the hold: the page says which guess it shows first, and that guess stays first unless another is more than
e^hold times as likely (`sketchlab.classify.hold_order`; the probabilities shown do not change), so that two
near-equal guesses do not swap the headline at every request. It is a design setting, `--hold` (HOLD, docs/classifiers.md),
not fitted: on validation its cost is within the noise of every measure,
so a rule that fits it picks by noise. What each hold of HOLD_GRID would do is measured and reported on the raw
validation drawings replayed as the page asks (`training.evaluate_live.replay_scored`): the top guess's changes
and flickers per drawing, top-1 while the pen is down, the finished drawing's first guess, and the drawings named
right in two answers in a row.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np

from sketchlab import data as qd
from sketchlab.classify import FUSION_FILE, Classifier, Fusion, log_softmax, mean_of_views, save_fusion
from sketchlab.runtime import MODELS_DIR
from sketchlab.split import Split
from training.evaluate import (
    MAX_PER_CLASS,
    Reliability,
    ranking_metrics,
    read_bitmaps,
    read_split,
    rich_mask,
    subset_metrics,
)
from training.evaluate_live import (
    LiveTally,
    chunks,
    read_pen_down,
    read_settled,
    read_stroke_ends,
    replay_scored,
    score_answers,
)
from training.export_classifier import git_commit

# g: 0 = as trained, -1 = the training prior taken out, 1 = added (+ 0.0: no -0.0 in the reports)
PRIOR_GRID = np.round(np.arange(-1.0, 1.01, 0.1), 2) + 0.0
WEIGHT_GRID = np.round(np.arange(0.0, 0.81, 0.05), 2)  # w of the stroke model; the CNN gets 1 - w
# Milliseconds a mirrored view adds to one classification (`training.bench_classifier --threads 1`, this 2-core CPU):
# the stroke model's LSTM runs its 200 steps once more; the CNN's second image shares the batch.
MIRROR_COST = {"stroke": 1.0, "cnn": 0.3}
# Objective points (0..1) a costlier mirroring choice must gain on validation. The objective's standard error on
# the ~3,000 validation drawings is about 0.006, so smaller differences are noise.
MIRROR_TOLERANCE = 0.0025
# The most milliseconds mirroring may add. Both models and the fusion take 0.6 to 1.5 ms without it (median,
# `python -m bench`, the 2-core CPUs measured) and the budget is 3 ms, which the stroke model's mirror (about +1 ms)
# would all but use up.
MIRROR_BUDGET_MS = 0.5
HOLD = 0.3  # the guess shown first stays first unless another is e^0.3 = 1.35 times as likely (docs/classifiers.md)
HOLD_GRID = np.round(np.arange(0.0, 1.01, 0.1), 2)  # the holds whose effect is measured and reported
TEMPERATURE_GRID = np.round(np.arange(0.5, 2.001, 0.05), 2)  # T < 1 sharpens the probabilities, T > 1 softens them
# Validation drawings a class (of each kind, raw and simplified) replayed stroke by stroke for the temperatures: ~6
# prefixes each, so at most ~400k prefixes and their scores in memory on a full download; the NLL weighs every class
# the same, so more drawings of a rich class would not move the fit.
STROKE_END_DRAWINGS = 100
# Raw validation drawings a class replayed as the page asks while the pen is down: ~30 requests each, so at most ~200k
# requests in memory on a full download; the shared data has at most 13 a class.
PEN_DOWN_DRAWINGS = 20


def objective(
    log_probs: np.ndarray, labels: np.ndarray, classes: list[str], rich: np.ndarray | None = None
) -> tuple[float, dict]:
    """(score, metrics): the mean of macro top-1, macro top-5 and top-1 over the drawings of the (C,) bool mask `rich`
    (default: every class, i.e. plain top-1). metrics["rich_top1"] is that last term."""
    m = ranking_metrics(log_probs, labels, classes)
    keep = np.ones(len(classes), bool) if rich is None or not rich[labels].any() else rich
    m["rich_top1"] = float(subset_metrics(log_probs, labels, keep)["top1"])
    return (m["macro_top1"] + m["macro_top5"] + m["rich_top1"]) / 3, m


def tune(
    raw: dict[str, np.ndarray],
    labels: np.ndarray,
    log_prior: np.ndarray,
    classes: list[str],
    bitmaps: tuple[np.ndarray, np.ndarray] | None = None,
    rich: np.ndarray | None = None,
) -> tuple[Fusion, dict]:
    """Grid search on validation log-probabilities {"stroke", "cnn": (N, C)} (either may be missing); `rich` is the
    (C,) bool mask of the rich classes for `objective`."""
    prior_weight, report = {}, {}
    for name, lp in raw.items():
        best = (-1.0, 0.0, {})
        for g in PRIOR_GRID:
            obj, m = objective(lp + g * log_prior, labels, classes, rich)
            if name == "cnn" and bitmaps is not None and len(bitmaps[1]):
                bm = ranking_metrics(bitmaps[0] + g * log_prior, bitmaps[1], classes)
                obj = (2 * obj + bm["top1"]) / 3  # the CNN also serves Google-style bitmaps
            if obj > best[0]:
                best = (obj, float(g), m)
        prior_weight[name] = best[1]
        report[name] = {"prior_weight": best[1], "objective": best[0]}
        report[name].update({k: v for k, v in best[2].items() if k != "per_class"})
    weights = {name: 1.0 for name in raw}
    if len(raw) == 2:
        best = (-1.0, 0.5, 0.0, {})
        for w, g in itertools.product(WEIGHT_GRID, PRIOR_GRID):
            score = w * raw["stroke"] + (1 - w) * raw["cnn"] + g * log_prior
            obj, m = objective(score, labels, classes, rich)
            if obj > best[0]:
                best = (obj, float(w), float(g), m)
        weights = {"stroke": best[1], "cnn": round(1 - best[1], 4)}
        prior_weight["fused"] = best[2]
        report["fused"] = {
            "weights": weights,
            "prior_weight": best[2],
            "objective": best[0],
            **{k: v for k, v in best[3].items() if k != "per_class"},
        }
    return Fusion(weights, prior_weight, log_prior.astype(np.float32)), report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(qd.default_data_dir()))
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument(
        "--mirror-budget-ms", type=float, default=MIRROR_BUDGET_MS, help="most latency mirroring may add (MIRROR_COST)"
    )
    parser.add_argument("--max-per-class", type=int, default=MAX_PER_CLASS, help="validation items read per class")
    parser.add_argument(
        "--calibrate",
        choices=["stroke-ends", "finished"],
        default="stroke-ends",
        help="fit the temperatures on every stroke end of the validation drawings, or on the finished drawings",
    )
    parser.add_argument(
        "--stroke-end-drawings",
        type=int,
        default=STROKE_END_DRAWINGS,
        help="with --calibrate stroke-ends: validation drawings a class and kind replayed stroke by stroke",
    )
    parser.add_argument(
        "--pen-down-drawings",
        type=int,
        default=PEN_DOWN_DRAWINGS,
        help="raw validation drawings a class replayed as the page asks while the pen is down (0: no pen-down settings)",
    )
    parser.add_argument(
        "--settled-drawings",
        type=int,
        default=STROKE_END_DRAWINGS,
        help="validation drawings a class and kind whose settled requests fit the settled temperatures (0: none)",
    )
    parser.add_argument(
        "--hold", type=float, default=HOLD, help="log-odds another guess needs over the one shown first (0: none)"
    )
    args = parser.parse_args(argv)
    models_dir = Path(args.models_dir)
    (models_dir / FUSION_FILE).unlink(missing_ok=True)  # tune on the raw models, not on a previous fusion
    clf = Classifier.load(models_dir)
    classes = clf.classes
    log_prior = training_log_prior(clf)

    index = {w: i for i, w in enumerate(classes)}
    prepared, labels, _ = read_split(Path(args.data), "simplified", Split.VALID, index, args.max_per_class)
    views = _batched(clf, prepared)
    bm_views = None
    if "cnn" in clf.models:
        images, bm_labels = read_bitmaps(Path(args.data), Split.VALID, index, args.max_per_class)
        none = np.zeros((0, len(classes)))
        bm_views = (*(clf.raster_views(images) if len(images) else (none, none)), bm_labels)
    rich = rich_mask(Path(args.data), classes)
    fusion, report = tune_mirror(views, labels, log_prior, classes, bm_views, args.mirror_budget_ms, rich)
    if args.calibrate == "stroke-ends":
        ends, end_labels = read_stroke_ends(Path(args.data), Split.VALID, index, args.stroke_end_drawings)
        fit_on, also = (_batched(clf, ends), end_labels), {"finished": (views, labels)}
    else:
        fit_on, also = (views, labels), {}
    fusion, report["calibration"] = fit_temperatures(clf, fusion, *fit_on, also)
    report["calibration"]["fitted_on"] = args.calibrate
    if args.pen_down_drawings:
        requests, request_labels = read_pen_down(Path(args.data), Split.VALID, index, args.pen_down_drawings)
        if len(request_labels):
            fusion, report["pen_down"] = tune_pen_down(clf, fusion, _batched(clf, requests), request_labels, rich)
    if args.settled_drawings:
        rested, rested_labels = read_settled(Path(args.data), Split.VALID, index, args.settled_drawings)
        if len(rested_labels):
            fusion, report["settled"] = tune_settled(clf, fusion, _batched(clf, rested), rested_labels)
    if args.pen_down_drawings:
        report["hold"] = {
            "hold": args.hold,
            "by_hold": measure_hold(clf, fusion, Path(args.data), index, args.pen_down_drawings),
        }
    fusion = dataclasses.replace(fusion, hold=args.hold)
    save_fusion(models_dir / FUSION_FILE, fusion, classes, {"valid": report}, {"git_commit": git_commit()})
    print(json.dumps(report, indent=1))


def training_log_prior(clf: Classifier) -> np.ndarray:
    """(C,) log of the class prior of held-out drawings: the simplified training drawings per class that the models'
    manifests record (`data.train_counts`, written by training.export_classifier), +1 each so that a class with no
    training drawing stays possible. The models trained on the same folder; the first manifest that has counts
    is used, so tuning never re-reads the training data."""
    for name, model in clf.models.items():
        counts = model.manifest.data.get("train_counts")
        if counts is not None:
            counts = np.asarray(counts, np.float64)
            if counts.shape != (len(clf.classes),):
                raise SystemExit(f"{name}: data.train_counts has {counts.shape}, not one count per class")
            return np.log((counts + 1) / (counts + 1).sum())
    raise SystemExit("no model manifest records data.train_counts; re-export with python -m training.export_classifier")


def tune_mirror(
    views: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
    log_prior: np.ndarray,
    classes: list[str],
    bm_views: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    budget_ms: float = math.inf,
    rich: np.ndarray | None = None,
) -> tuple[Fusion, dict]:
    """`tune` for every choice of test-time mirroring per model ({name: (plain, mirrored) log-probs}) that costs at
    most `budget_ms` (MIRROR_COST). The choice with the best fused objective (or the single model's objective) wins,
    unless a cheaper one is within MIRROR_TOLERANCE of it. Every choice is reported, the ones over budget too."""
    tried = []
    for choice in itertools.product((False, True), repeat=len(views)):
        mirror = dict(zip(views, choice, strict=True))
        raw = chosen_views(views, mirror)
        bitmaps = None
        if bm_views is not None:
            bitmaps = (mean_of_views(bm_views[0], bm_views[1]) if mirror.get("cnn") else bm_views[0], bm_views[2])
        fusion, report = tune(raw, labels, log_prior, classes, bitmaps, rich)
        key = "fused" if "fused" in report else next(iter(report))
        obj = report[key]["objective"]
        cost = sum(MIRROR_COST.get(n, 1.0) for n, m in mirror.items() if m)
        report["mirror"] = mirror
        tried.append((obj, cost, Fusion(fusion.weights, fusion.prior_weight, fusion.log_prior, mirror), report))
    affordable = [t for t in tried if t[1] <= budget_ms]
    best_obj = max(t[0] for t in affordable)
    _, _, fusion, report = min(
        (t for t in affordable if t[0] >= best_obj - MIRROR_TOLERANCE), key=lambda t: (t[1], -t[0])
    )
    report["mirror_choices"] = [
        {"mirror": t[3]["mirror"], "objective": t[0], "cost_ms": t[1], "within_budget": t[1] <= budget_ms}
        for t in tried
    ]
    return fusion, report


def fit_temperatures(
    clf: Classifier,
    fusion: Fusion,
    views: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
    also: dict[str, tuple[dict, np.ndarray]] | None = None,
) -> tuple[Fusion, dict]:
    """`fusion` with a temperature for each output ("stroke", "cnn", "fused"): the T of TEMPERATURE_GRID with the
    lowest negative log-likelihood of the validation labels, every class weighing the same (`nll_classes`). The
    validation drawings are 76% rich-class ones, whose guesses are right more often at the same confidence, so the
    plain mean would fit their temperature, not a player's. Reports the calibration before and after, and so for
    each other set in `also` ({name: (views, labels)}) at the same temperatures."""
    untempered = Classifier(clf.models, dataclasses.replace(fusion, temperature={}), clf.classes, [], parallel=False)

    def calibration(views, labels, grid) -> dict[str, dict[float, dict]]:
        return {
            name: {float(t): Reliability(lp.shape[1]).add(log_softmax(lp / t), labels).metrics() for t in grid}
            for name, lp in untempered.combine(chosen_views(views, fusion.mirror)).items()
        }

    temperature, report = {}, {}
    for name, by_t in calibration(views, labels, TEMPERATURE_GRID).items():
        temperature[name] = min(by_t, key=lambda t: by_t[t]["nll_classes"])
        report[name] = {"temperature": temperature[name], "before": by_t[1.0], "after": by_t[temperature[name]]}
    for other, (other_views, other_labels) in (also or {}).items():
        for name, by_t in calibration(other_views, other_labels, sorted({1.0, *temperature.values()})).items():
            report[name][other] = {"before": by_t[1.0], "after": by_t[temperature[name]]}
    return dataclasses.replace(fusion, temperature=temperature), report


def tune_pen_down(
    clf: Classifier,
    fusion: Fusion,
    views: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
    rich: np.ndarray | None = None,
) -> tuple[Fusion, dict]:
    """`fusion` with `pen_down` settings: the stroke weight of WEIGHT_GRID with the best objective on the page's
    pen-down requests ({name: (plain, mirrored) log-probs}, `fusion`'s mirroring and prior kept), then the
    temperatures that fit those requests (`fit_temperatures`), with the calibration the other settings give them."""
    raw = chosen_views(views, fusion.mirror)
    weights, report = fusion.weights, {}
    if len(raw) == 2:
        g = fusion.prior_weight.get("fused", 0.0) * fusion.log_prior

        def fused_metrics(w: float) -> tuple[float, dict]:
            return objective(w * raw["stroke"] + (1 - w) * raw["cnn"] + g, labels, clf.classes, rich)

        by_w = {float(w): fused_metrics(w) for w in WEIGHT_GRID}
        w = max(by_w, key=lambda k: by_w[k][0])
        weights = {"stroke": w, "cnn": round(1 - w, 4)}
        report["weights"] = weights
        for name, (_, m) in (("between_strokes", fused_metrics(fusion.weights["stroke"])), ("pen_down", by_w[w])):
            report[f"fused_with_{name}_weights"] = {k: v for k, v in m.items() if k != "per_class"}
    drawing, calibration = fit_temperatures(clf, dataclasses.replace(fusion, weights=weights), views, labels)
    as_between_strokes = Classifier(clf.models, fusion, clf.classes, [], parallel=False).combine(raw)
    for name, lp in as_between_strokes.items():
        calibration[name]["with_between_strokes_settings"] = Reliability(lp.shape[1]).add(lp, labels).metrics()
    report["calibration"] = calibration
    pen_down = {"weights": weights, "temperature": drawing.temperature}
    return dataclasses.replace(fusion, pen_down=pen_down), report


def tune_settled(
    clf: Classifier, fusion: Fusion, views: dict[str, tuple[np.ndarray, np.ndarray]], labels: np.ndarray
) -> tuple[Fusion, dict]:
    """`fusion` with `settled` temperatures: the ones that fit the page's settled requests ({name: (plain, mirrored)
    log-probs}; `fit_temperatures`, `fusion`'s weights, mirroring and prior kept), with the calibration the
    stroke-end temperatures give them."""
    rested, report = fit_temperatures(clf, fusion, views, labels)
    as_stroke_end = Classifier(clf.models, fusion, clf.classes, [], parallel=False).combine(
        chosen_views(views, fusion.mirror)
    )
    for name, lp in as_stroke_end.items():
        report[name]["with_stroke_end_temperatures"] = Reliability(lp.shape[1]).add(lp, labels).metrics()
    return dataclasses.replace(fusion, settled={"temperature": rested.temperature}), {"calibration": report}


def measure_hold(clf: Classifier, fusion: Fusion, root: Path, index: dict[str, int], per_class: int) -> dict:
    """What each hold of HOLD_GRID does to the live guesses of the raw validation drawings (at most `per_class` a
    class) replayed as the page asks, `fusion` otherwise: {hold: {"changes_per_drawing", "flickers_per_drawing",
    "pen_down_top1", "finished_top1", "share_steady"}}."""
    scorer = Classifier(clf.models, fusion, clf.classes, [], parallel=False)
    tallies = {float(h): LiveTally(len(clf.classes)) for h in HOLD_GRID}
    for drawings, labels, _ in chunks(root, "raw", Split.VALID, index, per_class):
        answers = [
            dataclasses.replace(a, scores={"fused": a.scores["fused"]})
            for a in score_answers(scorer, drawings, labels, timed=True)
        ]  # the hold orders the fused guesses only
        for hold, tally in tallies.items():
            for r in replay_scored(drawings, answers, True, hold):
                pen_down = (*r.pen_down["fused"], r.pen_down_ms)
                tally.add(r.label, r.ranks["fused"], r.sure["fused"], r.stroke_end_ms, pen_down, r.shown["fused"])
    report = {}
    for hold, tally in tallies.items():
        m = tally.metrics()
        if m["n"]:
            changes = m.get("top_guess_changes", {})
            report[str(hold)] = {
                "changes_per_drawing": changes.get("per_drawing", 0.0),
                "flickers_per_drawing": changes.get("back_per_drawing", 0.0),
                "pen_down_top1": m.get("pen_down", {}).get("top1", 0.0),
                "finished_top1": m["at_fraction"]["1.0"]["top1"],
                "share_steady": m["guessed"].get("share_steady", 0.0),
            }
    return report


def chosen_views(views: dict[str, tuple[np.ndarray, np.ndarray]], mirror: dict[str, bool]) -> dict[str, np.ndarray]:
    """{name: (plain, mirrored) log-probs} -> {name: the view or the mean of both views `mirror` chooses}."""
    return {n: mean_of_views(*views[n]) if mirror.get(n) else views[n][0] for n in views}


def _batched(clf: Classifier, prepared: list, batch: int = 512) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for i in range(0, len(prepared), batch):
        for k, v in clf.view_log_probs(prepared[i : i + batch]).items():
            out.setdefault(k, []).append(v)
    return {k: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v])) for k, v in out.items()}


if __name__ == "__main__":
    main()
