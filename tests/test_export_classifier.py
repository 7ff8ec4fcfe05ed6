"""training.export_classifier: ONNX export with dynamic axes, saved shapes, parity with torch, manifests."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from sketchlab.prepare import PREPROCESSING_VERSION, stale_steps
from sketchlab.runtime import load_onnx
from training.classifier_data import synthetic_cache
from training.export_classifier import check_shapes
from training.models_classifier import build
from training.train_classifier import TrainConfig, load_checkpoint, train

CLASSES = [f"shape{c}" for c in range(4)]
TINY = {
    "stroke": {"conv_channels": [8, 8, 8], "hidden": 8, "layers": 2, "bidirectional": True, "dropout": 0.0},
    "cnn": {"channels": [4, 8, 8], "strides": [2, 2, 1], "hidden": 16, "dropout": 0.0},
}
POSITIONS = {**TINY["stroke"], "positions": True}  # running sums and masked min/max inside the graph


def export_tiny(root, kind: str, model_config: dict) -> None:
    """Train a tiny `kind` model for one epoch into root/kind and export it to root/models in its own process."""
    cfg = TrainConfig(
        model=kind,
        cache=str(root / "cache.npz"),
        out=str(root / kind),
        epochs=1,
        batch_size=16,
        samples_per_epoch=32,
        progress=0,
        model_config=model_config,
    )
    train(cfg)
    code = (
        "from pathlib import Path; from training.export_classifier import export_one; "
        f"export_one({kind!r}, Path({str(root / kind / 'best.pt')!r}), Path({str(root / 'models')!r}), "
        f"classes={CLASSES!r}, scale=12.5)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # its own process, as the real export does


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    synthetic_cache(n_classes=4, per_class=16).save(root / "cache.npz")
    for kind in ("stroke", "cnn"):
        export_tiny(root, kind, TINY[kind])
    return root


@pytest.mark.parametrize("kind", ["stroke", "cnn"])
def test_export_keeps_batch_and_time_dynamic(exported, kind):
    path = exported / "models" / f"{kind}.onnx"
    check_shapes(path, kind)
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in onnx.load(path).graph.input
    }
    if kind == "stroke":
        assert dims == {"strokes": ["B", "T", 5], "lengths": ["B"]}
    else:
        assert dims == {"image": ["B", 1, 28, 28]}


def assert_parity(root, kind: str) -> None:
    ckpt = load_checkpoint(root / kind / "best.pt")
    model = build(kind, ckpt["config"]["model_config"]).eval()
    model.load_state_dict(ckpt["model"])
    onnx_model = load_onnx(root / "models" / f"{kind}.onnx")
    for batch, length in ((1, 3), (2, 250)):
        if kind == "stroke":
            x = torch.randn(batch, length, 5)
            inputs = (x, torch.tensor([length, max(2, length - 7)])[:batch])  # the second sequence padded
            feed = {"strokes": x.numpy(), "lengths": inputs[1].numpy()}
        else:
            inputs = (torch.rand(batch, 1, 28, 28),)
            feed = {"image": inputs[0].numpy()}
        with torch.no_grad():
            want = model(*inputs).numpy()
        got = onnx_model.run(**feed)["logits"]
        assert np.abs(got - want).max() <= 1e-4


@pytest.mark.parametrize("kind", ["stroke", "cnn"])
def test_onnx_matches_torch(exported, kind):
    assert_parity(exported, kind)


def test_stroke_model_with_positions_exports_with_parity(tmp_path):
    synthetic_cache(n_classes=4, per_class=16).save(tmp_path / "cache.npz")
    export_tiny(tmp_path, "stroke", POSITIONS)
    check_shapes(tmp_path / "models" / "stroke.onnx", "stroke")
    assert load_onnx(tmp_path / "models" / "stroke.onnx").manifest.config["model_config"]["positions"] is True
    assert_parity(tmp_path, "stroke")


def test_manifests_carry_what_serving_needs(exported):
    stroke = load_onnx(exported / "models" / "stroke.onnx").manifest
    cnn = load_onnx(exported / "models" / "cnn.onnx").manifest
    assert stroke.classes == CLASSES == cnn.classes
    assert stroke.scale_factor == 12.5 and cnn.scale_factor is None
    assert stroke.config["max_points"] == 200 and stroke.kind == "stroke_classifier"
    assert stroke.preprocessing_version and stroke.metrics["onnx_parity_max_abs_diff"] <= 1e-4
    assert "valid_best_epoch" in cnn.metrics and cnn.data["sources"]
    assert "fingerprint" in cnn.data and "fingerprint" in stroke.data  # how training.evaluate knows the training data
    assert (exported / "models" / "stroke.onnx").stat().st_size < 10e6


def test_export_stamps_the_preprocessing_the_checkpoint_trained_on(exported, tmp_path):
    ckpt = load_checkpoint(exported / "cnn" / "best.pt")
    assert ckpt["data"]["preprocessing_version"] == PREPROCESSING_VERSION
    assert load_onnx(exported / "models" / "cnn.onnx").manifest.data["init"] is None  # trained from scratch
    assert load_onnx(exported / "models" / "cnn.onnx").manifest.data["teachers"] is None  # and not distilled
    ckpt["data"]["preprocessing_version"] = "qd-simplify-1/raster-1"  # as if trained before the rasterizer changed
    ckpt["data"]["teachers"] = [{"checkpoint": "a.pt", "recipe": "finetune", "epochs": 3}]  # as if distilled
    torch.save(ckpt, tmp_path / "old.pt")
    code = (
        "from pathlib import Path; from training.export_classifier import export_one; "
        f"export_one('cnn', Path({str(tmp_path / 'old.pt')!r}), Path({str(tmp_path / 'models')!r}))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    manifest = load_onnx(tmp_path / "models" / "cnn.onnx").manifest
    assert manifest.preprocessing_version == "qd-simplify-1/raster-1"
    assert manifest.data["teachers"] == ckpt["data"]["teachers"]
    assert stale_steps(manifest.preprocessing_version) == ["raster"]  # so the app warns that it is stale
