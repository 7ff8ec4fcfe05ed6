"""training.studies.fusion_study.rerank keeps the five guesses; training.fuse.tune_mirror mirrors a model only where it pays."""

import numpy as np

from training.evaluate import ranking_metrics
from training.studies.fusion_study import rerank


def test_rerank_keeps_the_top_five_and_orders_them_by_the_second_score():
    rng = np.random.default_rng(0)
    score, order = rng.normal(size=(50, 20)), rng.normal(size=(50, 20))
    out = rerank(score, order)
    top5 = np.argsort(-score, axis=1)[:, :5]
    new5 = np.argsort(-out, axis=1)[:, :5]
    for i in range(len(score)):
        assert set(new5[i]) == set(top5[i])
        assert list(new5[i]) == sorted(top5[i], key=lambda c: -order[i, c])
    assert np.isneginf(out).sum(axis=1).tolist() == [15] * 50  # everything else ranks below the five


def test_rerank_changes_top1_but_not_top5_metrics():
    rng = np.random.default_rng(1)
    score, labels = rng.normal(size=(200, 30)), rng.integers(0, 30, 200)
    prior = np.zeros(30)
    prior[labels[0]] = 100.0  # a prior that puts one class first wherever it is among the five
    classes = [str(i) for i in range(30)]
    before = ranking_metrics(score, labels, classes)
    after = ranking_metrics(rerank(score, score + prior), labels, classes)
    assert after["top5"] == before["top5"] and after["macro_top5"] == before["macro_top5"]
    assert after["top1"] != before["top1"]


def _views(rng, labels, noise):
    """(plain, mirrored) log-probabilities of 10 classes: the label's logit raised by 2, plus noise."""
    logits = rng.normal(size=(len(labels), 10)) * noise
    logits[np.arange(len(labels)), labels] += 2.0
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def _two_models():
    """Labels of 400 drawings, 10 classes, a flat prior and each model's plain view (log-probabilities)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    return (
        labels,
        [str(i) for i in range(10)],
        np.full(10, -np.log(10)),
        _views(rng, labels, 1.5),
        _views(rng, labels, 1.5),
    )


def test_fusion_mirrors_a_model_only_when_it_pays_on_validation():
    from training.fuse import tune_mirror

    labels, classes, prior, stroke, cnn = _two_models()
    same = {"stroke": (stroke, stroke), "cnn": (cnn, cnn)}  # a mirror that adds nothing costs a pass for nothing
    fusion, report = tune_mirror(same, labels, prior, classes)
    assert fusion.mirror == {"stroke": False, "cnn": False} and len(report["mirror_choices"]) == 4
    better = _views(np.random.default_rng(1), labels, 0.3)  # a much better second view of the CNN
    fusion, _ = tune_mirror({"stroke": (stroke, stroke), "cnn": (cnn, better)}, labels, prior, classes)
    assert fusion.mirror == {"stroke": False, "cnn": True}


def test_fusion_keeps_mirroring_within_the_latency_budget():
    from training.fuse import MIRROR_COST, tune_mirror

    labels, classes, prior, stroke, cnn = _two_models()
    stroke_mirror = _views(np.random.default_rng(1), labels, 0.3)  # the stroke model's mirror would pay most
    views = {"stroke": (stroke, stroke_mirror), "cnn": (cnn, _views(np.random.default_rng(2), labels, 0.5))}
    fusion, _ = tune_mirror(views, labels, prior, classes)
    assert fusion.mirror["stroke"]
    fusion, report = tune_mirror(views, labels, prior, classes, budget_ms=MIRROR_COST["cnn"])
    assert fusion.mirror == {"stroke": False, "cnn": True}
    assert sum(not c["within_budget"] for c in report["mirror_choices"]) == 2  # reported all the same


def test_temperatures_make_the_validation_probabilities_honest():
    from sketchlab.classify import Classifier, Fusion, log_softmax
    from training.fuse import fit_temperatures

    rng = np.random.default_rng(0)
    z = 3 * rng.normal(size=(4000, 10))  # true log-odds; labels drawn from softmax(z), so softmax(z) is calibrated
    p = np.exp(log_softmax(z))
    labels = (rng.random((4000, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    shy, sure = log_softmax(0.5 * z), log_softmax(1.6 * z)  # under- and over-confident models
    fusion = Fusion({"stroke": 0.5, "cnn": 0.5}, {}, np.zeros(10, np.float32))
    clf = Classifier({}, fusion, [str(i) for i in range(10)], [], parallel=False)
    views = {"stroke": (shy, shy), "cnn": (sure, sure)}
    fitted, report = fit_temperatures(clf, fusion, views, labels, {"same": (views, labels)})
    assert abs(fitted.temperature["stroke"] - 0.5) <= 0.1 and abs(fitted.temperature["cnn"] - 1.6) <= 0.15
    assert fitted.weights == fusion.weights and set(fitted.temperature) == {"stroke", "cnn", "fused"}
    for name in ("stroke", "cnn"):
        assert report[name]["after"]["ece"] < report[name]["before"]["ece"]
        assert report[name]["after"]["top1"] == report[name]["before"]["top1"]  # the ranking does not move
        assert report[name]["same"] == {k: report[name][k] for k in ("before", "after")}  # reported on `also` too
