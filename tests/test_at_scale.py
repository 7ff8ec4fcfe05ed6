"""The README's "At scale" path end to end on a tiny folder in the official layout: both classifiers trained in
stream mode (no cache is ever built), exported, fused, evaluated and plotted, every step reading only what it needs.

A full download (50M drawings) cannot be cached, so nothing after training may re-read the whole training data:
export takes the classes, the offset scale and the class counts from the checkpoint, `training.fuse` takes the class
prior from the manifests and reads at most `--max-per-class` validation items a class, `training.plots` likewise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_layout import PER_WORD, WORDS, make_layout

from sketchlab.classify import Classifier
from sketchlab.data import fingerprint
from sketchlab.split import Split
from training import evaluate, evaluate_live, fuse, plots
from training.classifier_config import TrainConfig
from training.evaluate import read_bitmaps, read_split
from training.stream import SPLIT_FRACTION
from training.train_classifier import train

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "stroke": {"conv_channels": [8, 8, 8], "hidden": 8, "layers": 1, "dropout": 0.0, "positions": True},
    "cnn": {"channels": [4, 8, 8], "hidden": 16, "dropout": 0.0},
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """root/{qd, stroke-full, cnn-full, models}: the data, both stream-mode runs and the exported, fused models."""
    root = tmp_path_factory.mktemp("at_scale")
    data = make_layout(root / "qd")
    for model in ("stroke", "cnn"):
        cfg = TrainConfig(
            model=model,
            data=str(data),
            data_mode="stream",
            cache=str(root / "no-cache.npz"),  # stream mode must never build one
            sources="simplified,raw",
            out=str(root / f"{model}-full"),  # as named in the README
            epochs=1,
            batch_size=16,
            samples_per_epoch=32,
            shuffle_buffer=32,
            progress=0,
            model_config=TINY[model],
        )
        train(cfg)
    data.rename(root / "elsewhere")  # export must not need the data: it may run on another machine
    for model in ("stroke", "cnn"):
        export = [sys.executable, "-m", "training.export_classifier", "--model", model]
        export += ["--checkpoint", str(root / f"{model}-full" / "last.pt"), "--out-dir", str(root / "models")]
        subprocess.run(export, cwd=ROOT, check=True, capture_output=True)  # each model in its own process
    (root / "elsewhere").rename(data)
    assert not (root / "no-cache.npz").exists()
    fuse.main(["--data", str(data), "--models-dir", str(root / "models"), "--max-per-class", "5"])
    return root


@pytest.mark.slow
def test_export_takes_classes_scale_and_counts_from_the_checkpoint(pipeline):
    ckpt = torch.load(pipeline / "stroke-full" / "last.pt", weights_only=True)
    assert ckpt["data"]["data_mode"] == "stream"
    for model in ("stroke", "cnn"):
        manifest = json.loads((pipeline / "models" / f"{model}.json").read_text())
        assert manifest["classes"] == list(WORDS)
        assert manifest["data"]["mode"] == "stream"
        assert manifest["data"]["fingerprint"] == fingerprint(pipeline / "qd")  # recorded when it trained
        # Estimated from the file sizes (exact for files this small) times the training split's share.
        expected = [PER_WORD[w] * SPLIT_FRACTION[Split.TRAIN] for w in WORDS]
        np.testing.assert_allclose(manifest["data"]["train_counts"], expected, rtol=0.05, atol=1)
    stroke = json.loads((pipeline / "models" / "stroke.json").read_text())
    assert stroke["scale_factor"] == pytest.approx(ckpt["data"]["scale"])  # what the model's inputs were divided by


@pytest.mark.slow
def test_fusion_prior_is_the_manifests_counts(pipeline):
    clf = Classifier.load(pipeline / "models")
    counts = np.asarray(clf.models["cnn"].manifest.data["train_counts"], np.float64)
    np.testing.assert_allclose(clf.fusion.log_prior, np.log((counts + 1) / (counts + 1).sum()), rtol=1e-5)  # float32
    assert set(clf.fusion.weights) == {"stroke", "cnn"}
    # The raw squares (200 ms strokes: one request while the pen is down each) tune the pen-down settings.
    assert set(clf.fusion.pen_down) == {"weights", "temperature"}
    assert set(clf.fusion.pen_down["temperature"]) == {"stroke", "cnn", "fused"}
    assert set(clf.fusion.settled) == {"temperature"}  # once the pen rests: the weights stay
    assert set(clf.fusion.settled["temperature"]) == {"stroke", "cnn", "fused"}
    # ... and replayed as the page asks, what each hold would do (the one set is a design setting)
    hold = json.loads((pipeline / "models" / "fusion.json").read_text())["metrics"]["valid"]["hold"]
    assert clf.fusion.hold == hold["hold"] == fuse.HOLD
    assert set(hold["by_hold"]) == {str(float(h)) for h in fuse.HOLD_GRID}
    assert all(0 <= m["flickers_per_drawing"] <= m["changes_per_drawing"] for m in hold["by_hold"].values())


@pytest.mark.slow
def test_evaluate_and_plots_run_on_the_streamed_models(pipeline, tmp_path, monkeypatch):
    out, summary = tmp_path / "eval.json", tmp_path / "summary.json"
    args = ["--data", str(pipeline / "qd"), "--models-dir", str(pipeline / "models"), "--json", str(out)]
    monkeypatch.setattr("sketchlab.data.RICH_MIN", 100)  # circle has 160 drawings, square 80, zigzag 42
    evaluate.main([*args, "--summary", str(summary)])
    result = json.loads(out.read_text())
    assert {"stroke", "cnn", "fused", "fused_raw"} <= set(result)
    assert result["fused"]["n"] > 0 and set(result["fused"]["per_class"]) <= set(WORDS)
    for row in result["fused"]["per_class"].values():
        assert set(row) == {"n", "top1", "top3", "top5"} and row["top1"] <= row["top3"] <= row["top5"]
    first = json.loads(summary.read_text())
    assert first["rich_classes"] == ["circle"]
    for name in ("stroke", "cnn", "fused", "fused_raw"):  # every figure again, with and without a key_id
        keyed, unkeyed = (first["groups"][g][name] for g in ("with_key_id", "without_key_id"))
        assert keyed["n"] + unkeyed["n"] == result[name]["n"]
        assert {"top1", "top5", "macro_top1", "macro_top5", "rich", "rich_first_release"} <= set(keyed)
    other = tmp_path / "other"  # a folder whose own counts say which classes are rich
    (other / "full" / "simplified").mkdir(parents=True)
    (other / "full" / "simplified" / "zigzag.ndjson").write_text("{}\n" * 100)
    evaluate.main([*args, "--summary", str(summary), "--rich-from", str(other)])
    rich = json.loads(summary.read_text())
    assert rich["rich_classes"] == ["zigzag"] and rich["rich_from"] == str(other)
    assert rich["fused_rich"]["n"] == result["fused"]["per_class"]["zigzag"]["n"]
    runs = tmp_path / "runs"
    shutil.copytree(pipeline, runs, ignore=shutil.ignore_patterns("qd", "models"))
    live = ["--data", str(pipeline / "qd"), "--models-dir", str(pipeline / "models"), "--split", "all"]
    evaluate_live.main([*live, "--json", str(runs / "eval_live.json"), "--per-class", "4"])
    assert json.loads((runs / "eval_live.json").read_text())["raw"]["fused"]["n"] > 0  # the raw squares
    plots.main(
        ["--data", str(pipeline / "qd"), "--models-dir", str(pipeline / "models"), "--runs", str(runs)]
        + ["--out", str(tmp_path / "plots"), "--max-per-class", "4"]
    )
    assert {p.name for p in (tmp_path / "plots").glob("*.png")} == {
        "training_curves.png",
        "confusion_fused.png",
        "samples_top5.png",
        "live_guesses.png",
    }


def test_per_class_caps_what_is_read(tmp_path):
    data = make_layout(tmp_path / "qd")
    index = {w: i for i, w in enumerate(WORDS)}
    _, labels, _ = read_split(data, "simplified", Split.TRAIN, index, per_class=7)
    assert np.bincount(labels, minlength=3).tolist() == [7, 7, 7]
    _, every, _ = read_split(data, "simplified", Split.TRAIN, index)
    assert len(every) > 21
    bitmaps = tmp_path / "qd" / "full" / "numpy_bitmap"
    bitmaps.mkdir()
    np.save(bitmaps / "circle.npy", np.zeros((40, 784), np.uint8))
    images, bm_labels = read_bitmaps(data, None, index, per_class=9)
    assert images.shape == (9, 28, 28) and bm_labels.tolist() == [0] * 9


def test_fuse_refuses_manifests_without_counts(tmp_path):
    from _tiny_models import tiny_models

    clf = Classifier.load(tiny_models(tmp_path))
    for model in clf.models.values():
        model.manifest.data.pop("train_counts", None)
    with pytest.raises(SystemExit, match="train_counts"):
        fuse.training_log_prior(clf)
