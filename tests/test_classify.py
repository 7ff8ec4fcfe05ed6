"""sketchlab.classify on tiny hand-made ONNX models (no torch): loading, fallbacks, fusion, guesses, batch API."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from _tiny_models import tiny_models
from onnx import TensorProto, helper, numpy_helper

from sketchlab.classify import (
    Classifier,
    Fusion,
    Guess,
    Guesses,
    best_guesses,
    hold_order,
    log_softmax,
    save_fusion,
)
from sketchlab.errors import DrawingError, ModelError
from sketchlab.prepare import PREPROCESSING_VERSION, from_canvas
from sketchlab.runtime import Manifest

CLASSES = ["circle", "line", "square", "zigzag", "star", "house"]
C = len(CLASSES)


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def _stroke_model(path, seed=0):
    """logits = mean over time of strokes @ W + 0 * lengths: depends on the input, accepts any B and T."""
    w = np.random.default_rng(seed).normal(size=(5, C)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["strokes"], ["m"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["z"]),
        helper.make_node("Cast", ["lengths"], ["lf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["lf", "ax"], ["lu"]),
        helper.make_node("Mul", ["lu", "zero"], ["l0"]),
        helper.make_node("Add", ["z", "l0"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "stroke",
        [
            helper.make_tensor_value_info("strokes", TensorProto.FLOAT, ["B", "T", 5]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["B"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", C])],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.array([1], np.int64), "ax"),
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
        ],
    )
    _save(graph, path)
    _manifest(path, "stroke", "stroke_classifier", {"strokes": ["B", "T", 5], "lengths": ["B"]}, scale=20.0)


def _cnn_model(path, seed=1):
    w = np.random.default_rng(seed).normal(size=(784, C)).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", ["image"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "W"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", C])],
        [numpy_helper.from_array(w, "W")],
    )
    _save(graph, path)
    _manifest(path, "cnn", "raster_classifier", {"image": ["B", 1, 28, 28]})


def _manifest(path, name, kind, inputs, scale=None):
    Manifest(
        name=name,
        kind=kind,
        classes=CLASSES,
        inputs=inputs,
        outputs={"logits": ["B", C]},
        input_format="test",
        preprocessing_version=PREPROCESSING_VERSION,
        scale_factor=scale,
        config={"max_points": 200},
    ).save(path.with_suffix(".json"))


@pytest.fixture
def models_dir(tmp_path):
    _stroke_model(tmp_path / "stroke.onnx")
    _cnn_model(tmp_path / "cnn.onnx")
    return tmp_path


def _drawing(n=40):
    t = np.linspace(0, 6, n)
    return [[[float(100 + 50 * np.cos(a)), float(100 + 50 * np.sin(a)), float(i * 10)] for i, a in enumerate(t)]]


def test_classify_returns_sorted_top_k_from_both_models(models_dir):
    clf = Classifier.load(models_dir)
    g = clf.classify(_drawing(), top_k=3)
    assert isinstance(g, Guesses) and len(g.fused) == 3 and len(g.stroke) == 3 and len(g.cnn) == 3
    assert all(isinstance(x, Guess) and x.word in CLASSES for x in g.fused)
    probs = [x.prob for x in g.fused]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert g.raster.shape == (28, 28) and g.raster.dtype == np.uint8
    assert clf.provider.endswith("ExecutionProvider")
    clf.warmup()


def test_missing_fusion_file_falls_back_to_equal_weights(models_dir):
    clf = Classifier.load(models_dir)
    assert any("fusion" in p for p in clf.problems)
    raw = clf.raw_log_probs([from_canvas(_drawing())])
    fused = clf.combine(raw)["fused"]
    np.testing.assert_allclose(fused, log_softmax(raw["stroke"] + raw["cnn"]), atol=1e-5)


def test_fusion_weights_and_prior_are_applied(models_dir):
    log_prior = np.log(np.arange(1, C + 1) / np.arange(1, C + 1).sum()).astype(np.float32)
    fusion = Fusion({"stroke": 0.3, "cnn": 0.7}, {"stroke": 0.5, "cnn": 0.0, "fused": 1.0}, log_prior)
    save_fusion(models_dir / "fusion.json", fusion, CLASSES, {"valid": {}})
    clf = Classifier.load(models_dir)
    assert clf.problems == []
    raw = clf.raw_log_probs([from_canvas(_drawing())])
    out = clf.combine(raw)
    np.testing.assert_allclose(out["fused"], log_softmax(0.3 * raw["stroke"] + 0.7 * raw["cnn"] + log_prior), atol=1e-5)
    np.testing.assert_allclose(out["stroke"], log_softmax(raw["stroke"] + 0.5 * log_prior), atol=1e-5)
    np.testing.assert_allclose(out["cnn"], raw["cnn"], atol=1e-5)


def test_temperatures_change_the_probabilities_not_the_ranking(models_dir):
    log_prior = np.zeros(C, np.float32)
    plain = Fusion({"stroke": 0.4, "cnn": 0.6}, {}, log_prior)
    tempered = Fusion({"stroke": 0.4, "cnn": 0.6}, {}, log_prior, temperature={"stroke": 2.0, "fused": 0.5})
    save_fusion(models_dir / "fusion.json", plain, CLASSES, {"valid": {}})
    before = Classifier.load(models_dir)
    assert before.fusion.temperature == {}  # a fusion.json without temperatures: 1 everywhere
    save_fusion(models_dir / "fusion.json", tempered, CLASSES, {"valid": {}})
    after = Classifier.load(models_dir)
    assert after.problems == [] and after.fusion.temperature == {"stroke": 2.0, "fused": 0.5}
    raw = after.raw_log_probs([from_canvas(_drawing())])
    a, b = before.combine(raw), after.combine(raw)
    np.testing.assert_allclose(b["stroke"], log_softmax(a["stroke"] / 2.0), atol=1e-5)
    np.testing.assert_allclose(b["fused"], log_softmax(a["fused"] / 0.5), atol=1e-5)
    np.testing.assert_allclose(b["cnn"], a["cnn"], atol=1e-6)
    for name in a:
        assert (np.argsort(-a[name][0], kind="stable") == np.argsort(-b[name][0], kind="stable")).all()
    assert np.exp(b["fused"]).max() > np.exp(a["fused"]).max() and np.exp(b["stroke"]).max() < np.exp(a["stroke"]).max()


def test_pen_down_requests_get_their_own_weights_and_temperatures(models_dir):
    log_prior = np.zeros(C, np.float32)
    pen_down = {"weights": {"stroke": 0.1, "cnn": 0.9}, "temperature": {"fused": 2.0}}
    fusion = Fusion({"stroke": 0.4, "cnn": 0.6}, {}, log_prior, temperature={"fused": 0.8}, pen_down=pen_down)
    save_fusion(models_dir / "fusion.json", fusion, CLASSES, {"valid": {}})
    clf = Classifier.load(models_dir)
    assert clf.problems == [] and clf.fusion.pen_down == pen_down
    raw = clf.raw_log_probs([from_canvas(_drawing())])
    after_stroke, drawing = clf.combine(raw), clf.combine(raw, pen_down=True)
    np.testing.assert_allclose(
        after_stroke["fused"], log_softmax((0.4 * raw["stroke"] + 0.6 * raw["cnn"]) / 0.8), atol=1e-5
    )
    np.testing.assert_allclose(drawing["fused"], log_softmax((0.1 * raw["stroke"] + 0.9 * raw["cnn"]) / 2.0), atol=1e-5)
    np.testing.assert_allclose(drawing["stroke"], after_stroke["stroke"], atol=1e-6)  # no pen-down T for it: the same
    live = clf.classify(_drawing(), pen_down=True).fused
    assert [(g.word, round(g.prob, 5)) for g in live] == [
        (g.word, round(g.prob, 5)) for g in best_guesses(drawing["fused"][0], CLASSES, 5)
    ]
    without = Fusion({"stroke": 0.4, "cnn": 0.6}, {}, log_prior)  # an older fusion.json: the same settings
    assert without.for_request(pen_down=True) == without and without.for_request(settled=True) == without


def test_settled_requests_get_their_own_temperatures(models_dir):
    log_prior = np.zeros(C, np.float32)
    settled = {"temperature": {"fused": 0.5, "cnn": 0.7}}
    pen_down = {"weights": {"stroke": 0.1, "cnn": 0.9}, "temperature": {"fused": 2.0}}
    fusion = Fusion(
        {"stroke": 0.4, "cnn": 0.6}, {}, log_prior, temperature={"fused": 0.8}, pen_down=pen_down, settled=settled
    )
    save_fusion(models_dir / "fusion.json", fusion, CLASSES, {"valid": {}})
    clf = Classifier.load(models_dir)
    assert clf.problems == [] and clf.fusion.settled == settled and clf.fusion.pen_down == pen_down
    raw = clf.raw_log_probs([from_canvas(_drawing())])
    after_stroke, rested = clf.combine(raw), clf.combine(raw, settled=True)
    np.testing.assert_allclose(rested["fused"], log_softmax((0.4 * raw["stroke"] + 0.6 * raw["cnn"]) / 0.5), atol=1e-5)
    np.testing.assert_allclose(rested["cnn"], log_softmax(raw["cnn"] / 0.7), atol=1e-5)
    np.testing.assert_allclose(rested["stroke"], after_stroke["stroke"], atol=1e-6)  # no settled T for it: the same
    for name in rested:  # a temperature never changes the order
        assert (np.argsort(-rested[name][0], kind="stable") == np.argsort(-after_stroke[name][0], kind="stable")).all()
    g = clf.classify(_drawing(), settled=True).fused
    assert [(x.word, round(x.prob, 5)) for x in g] == [
        (x.word, round(x.prob, 5)) for x in best_guesses(rested["fused"][0], CLASSES, 5)
    ]
    with pytest.raises(DrawingError, match="either pen_down"):
        clf.classify(_drawing(), pen_down=True, settled=True)


def test_the_shown_guess_stays_first_unless_clearly_beaten(models_dir):
    scores = np.log(np.array([[0.40, 0.35, 0.25], [0.30, 0.30, 0.40]]))
    order = hold_order(scores, np.array([1, -1]), 0.5)  # row 0: class 1 shown first now; row 1: nothing shown
    np.testing.assert_allclose(order[0], scores[0] + [0, 0.5, 0])
    np.testing.assert_allclose(order[1], scores[1])
    assert hold_order(scores, np.array([2, 2]), 0.0) is scores  # no hold: ordered by probability

    fusion = Fusion({"stroke": 0.4, "cnn": 0.6}, {}, np.zeros(C, np.float32), temperature={"fused": 0.8}, hold=0.3)
    save_fusion(models_dir / "fusion.json", fusion, CLASSES, {"valid": {}})
    clf = Classifier.load(models_dir)
    assert clf.problems == [] and clf.fusion.hold == 0.3 and clf.fusion.for_request(pen_down=True).hold == 0.3
    plain = clf.combine(clf.raw_log_probs([from_canvas(_drawing())]))["fused"][0]
    first, second = np.argsort(-plain)[:2]
    g = clf.classify(_drawing(), shown=CLASSES[second])
    held_first = plain[second] + 0.3 > plain[first]
    assert g.fused[0].word == CLASSES[second if held_first else first]
    # the probabilities are the calibrated ones, whatever the order
    assert {x.word: x.prob for x in g.fused} == {x.word: x.prob for x in clf.classify(_drawing()).fused}
    far = dataclasses.replace(fusion, hold=100.0)
    save_fusion(models_dir / "fusion.json", far, CLASSES, {"valid": {}})
    last = int(np.argmin(plain))
    g = Classifier.load(models_dir).classify(_drawing(), shown=CLASSES[last])
    assert g.fused[0].word == CLASSES[last] and g.fused[0].prob == pytest.approx(float(np.exp(plain[last])), rel=1e-5)
    for bad in ("not a class", 3, ["cat"]):
        with pytest.raises(DrawingError, match="shown must be one of"):
            clf.classify(_drawing(), shown=bad)
    assert Fusion({"stroke": 1.0}, {}, np.zeros(C, np.float32)).hold == 0.0  # an older fusion.json: no hold


def test_one_broken_model_still_classifies(models_dir):
    (models_dir / "stroke.onnx").write_bytes(b"not an onnx file")
    clf = Classifier.load(models_dir)
    assert "stroke" not in clf.models and any("stroke" in p for p in clf.problems)
    g = clf.classify(_drawing())
    assert g.stroke is None and g.cnn is not None
    assert [x.word for x in g.fused] == [x.word for x in g.cnn]


def test_cnn_missing_leaves_stroke_model(models_dir):
    (models_dir / "cnn.onnx").unlink()
    g = Classifier.load(models_dir).classify(_drawing())
    assert g.cnn is None and g.stroke is not None and g.fused == g.stroke


def test_no_model_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="no classifier"):
        Classifier.load(tmp_path)


def test_models_with_different_classes_are_refused(models_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(models_dir, other)
    m = json.loads((other / "cnn.json").read_text())
    m["classes"] = list(reversed(CLASSES))
    (other / "cnn.json").write_text(json.dumps(m))
    clf = Classifier.load(other)
    assert len(clf.models) == 1 and any("classes differ" in p for p in clf.problems)


@pytest.mark.parametrize("bad", [[], "cat", [[]], [[["0", 0, 0]]], [[[float("nan"), 1, 2], [3, 4, 5]]]])
def test_bad_drawings_raise_drawing_error(models_dir, bad):
    with pytest.raises(DrawingError):
        Classifier.load(models_dir).classify(bad)


DOTS = {
    "one tap": [[[40, 40, 0]]],
    "a held tap": [[[40, 40, 0], [40, 40, 30], [40, 40, 60]]],
    "taps on one spot": [[[40, 40, 0]], [[40, 40, 300]]],
    "taps apart": [[[40, 40, 0]], [[90, 60, 300]], [[10, 80, 600]]],
    "a dot and a line": [[[40, 40, 0]], [[10, 10, 300], [90, 90, 400]]],
}


@pytest.mark.parametrize("drawing", DOTS.values(), ids=DOTS.keys())
def test_dots_are_a_drawing_in_progress_and_get_guesses(models_dir, drawing):
    """A tap draws a dot, as a one-point stroke of the simplified files does: guesses, no error."""
    clf = Classifier.load(models_dir)
    for kw in ({}, {"pen_down": True}, {"settled": True}):
        g = clf.classify(drawing, top_k=3, **kw)
        assert len(g.fused) == len(g.stroke) == len(g.cnn) == 3
        assert all(np.isfinite(x.prob) and 0 <= x.prob <= 1 for x in g.fused)
    assert g.raster.max() > 0  # the dot is inked


def test_batch_api_matches_single_calls(models_dir):
    clf = Classifier.load(models_dir)
    prepared = [from_canvas(_drawing(n)) for n in (10, 40, 40, 400)]
    batch = clf.probabilities(prepared)
    assert batch["fused"].shape == (4, C)
    np.testing.assert_allclose(batch["fused"].sum(1), 1, atol=1e-5)
    for i, p in enumerate(prepared):
        one = clf.probabilities([p])
        for k in ("stroke", "cnn", "fused"):
            np.testing.assert_allclose(batch[k][i], one[k][0], atol=1e-5)
    assert clf.stroke_input(prepared[-1]).shape[0] <= 201  # first max_points points + start token
    rasters = np.stack([p.raster for p in prepared])
    np.testing.assert_allclose(clf.raster_probabilities(rasters), batch["cnn"], atol=1e-5)


def test_best_guesses_orders_and_limits():
    lp = np.log(np.array([0.1, 0.5, 0.05, 0.3, 0.05]))
    g = best_guesses(lp, ["a", "b", "c", "d", "e"], 3)
    assert [x.word for x in g] == ["b", "d", "a"]
    assert g[0].prob == pytest.approx(0.5)
    assert len(best_guesses(lp, ["a", "b", "c", "d", "e"], 10)) == 5


def test_model_trained_with_other_preprocessing_loads_with_a_warning(tmp_path):
    """A CNN whose manifest names an older rasterizer still serves, and the problem says what changed and the fix;
    the stroke model does not care about the rasterizer."""
    tiny_models(tmp_path)
    for name in ("stroke", "cnn"):
        path = tmp_path / f"{name}.json"
        manifest = json.loads(path.read_text())
        manifest["preprocessing_version"] = PREPROCESSING_VERSION.replace("raster-", "raster-0")
        path.write_text(json.dumps(manifest))
        Manifest.load(path)
    clf = Classifier.load(tmp_path)
    assert set(clf.models) == {"stroke", "cnn"}
    assert len(clf.problems) == 1 and "cnn model" in clf.problems[0] and "raster" in clf.problems[0]
    assert "make models" in clf.problems[0]


def test_models_side_by_side_give_the_same_scores_as_one_after_the_other(models_dir):
    prepared = [from_canvas(_drawing(n)) for n in (10, 40, 400)]
    side_by_side, in_turn = Classifier.load(models_dir), Classifier.load(models_dir, parallel=False)
    assert side_by_side._pool is not None and in_turn._pool is None
    a, b = side_by_side.raw_log_probs(prepared), in_turn.raw_log_probs(prepared)
    assert a.keys() == b.keys() == {"stroke", "cnn"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    (models_dir / "cnn.onnx").unlink()
    assert Classifier.load(models_dir)._pool is None  # one model: nothing to run beside it
