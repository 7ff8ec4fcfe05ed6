"""sketchlab.generate.Generator on a tiny untrained model exported to ONNX, plus the shipped model when present."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchlab.errors import DrawingError, ModelError
from sketchlab.generate import FINISH_STROKES_AS_WORD, FINISH_STROKES_NO_WORD, MS_PER_POINT, Generator
from sketchlab.latent_prior import AGGREGATE, NORMAL, AggregatePosterior
from sketchlab.runtime import MODELS_DIR
from training.generator_model import GeneratorConfig, SketchRNN
from training.generator_prior import PriorConfig
from training.generator_prior import build as build_prior
from training.train_generator import TrainConfig, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["cat", "eye", "cake"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    """A tiny random generator, saved as a training checkpoint and exported with training.export_generator."""
    tmp = tmp_path_factory.mktemp("gen")
    torch.manual_seed(0)
    mcfg = GeneratorConfig(n_classes=len(CLASSES), enc_hidden=8, dec_hidden=16, z_size=4, class_embed=4, n_mixtures=3)
    model = SketchRNN(mcfg)
    with torch.no_grad():  # make the untrained model draw a few points before it ends: lower the p3 logit
        model.decoder.head.bias[-1] = -3.0
    optimizer = torch.optim.AdamW(model.parameters())
    meta = {
        "classes": CLASSES,
        "scale_factor": 20.0,
        "step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
        "history": [],
        "train_minutes": 0.0,
        "git_commit": None,
        "preprocessing_version": "test",
        "data": {},
    }
    from dataclasses import asdict

    save_checkpoint(tmp / "tiny.pt", model, optimizer, TrainConfig(), asdict(mcfg), meta)
    models = tmp / "models"
    cmd = [
        sys.executable,
        "-m",
        "training.export_generator",
        "--checkpoint",
        str(tmp / "tiny.pt"),
        "--models-dir",
        str(models),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, timeout=900)
    return models


@pytest.fixture(scope="module")
def gen(tiny_models) -> Generator:
    return Generator.load(tiny_models)


def test_checkpoint_rebuilt_from_onnx_has_the_exported_weights(tiny_models, tmp_path):
    from training.export_generator import parity
    from training.generator_from_onnx import main as rebuild

    rebuild(["--models-dir", str(tiny_models), "--out", str(tmp_path / "rebuilt.pt")])
    ckpt = torch.load(tmp_path / "rebuilt.pt", weights_only=True)
    saved = torch.load(tiny_models.parent / "tiny.pt", weights_only=True)
    assert ckpt["classes"] == CLASSES and ckpt["scale_factor"] == 20.0
    assert ckpt["model"].keys() == saved["model"].keys()
    assert all(torch.allclose(ckpt["model"][k], v) for k, v in saved["model"].items())  # LSTM gates reordered back
    assert max(parity(tmp_path / "rebuilt.pt", part, tiny_models) for part in ("encoder", "decoder")) < 1e-4


def test_load_reads_classes_and_manifests(gen, tiny_models):
    assert gen.classes == CLASSES and gen.provider == "CPUExecutionProvider" and gen.quality == {}
    manifest = json.loads((tiny_models / "generator_decoder.json").read_text())
    assert manifest["scale_factor"] == 20.0 and manifest["config"]["unknown_class"] == 3
    assert manifest["metrics"]["parity_max_abs_diff"] < 1e-4


def test_load_raises_model_error_for_missing_or_corrupt_files(tiny_models, tmp_path):
    with pytest.raises(ModelError):
        Generator.load(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models, broken)
    (broken / "generator_decoder.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError):
        Generator.load(broken)


def test_quality_file_is_read(tiny_models, tmp_path):
    models = tmp_path / "q"
    shutil.copytree(tiny_models, models)
    (models / "generator_quality.json").write_text(json.dumps({"per_class": {"cat": {"top1": 0.9}}}))
    assert Generator.load(models).quality == {"cat": {"top1": 0.9}}


# ---------------------------------------------------------------------------------------------------------------
# The latent prior (sketchlab.latent_prior, built by training.generator_prior)


def test_without_a_prior_file_z_comes_from_the_normal_prior_and_the_generator_says_so(gen):
    assert gen.prior.name == NORMAL
    assert len(gen.problems) == 1 and "generator_prior.npz is missing" in gen.problems[0]


def test_prior_built_from_training_drawings_is_tied_to_the_encoder_and_used(tiny_models, tmp_path):
    from test_train_generator import make_dataset

    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    data = make_dataset(tmp_path / "qd", per_word=60, words=CLASSES)
    path = build_prior(data, models, PriorConfig(per_class=5))
    loaded = Generator.load(models)
    assert loaded.problems == [] and loaded.prior.name == AGGREGATE
    assert [len(c) for c in loaded.prior.components] == [5, 5, 5]
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["data"]["split"] == "train" and manifest["config"]["per_class"] == 5
    # the stored posteriors are what the encoder says for those drawings (float16 storage)
    assert 0 < loaded.prior.sigma.min() and np.isfinite(loaded.prior.mu).all()
    assert loaded.generate("cat", seed=3) == loaded.generate("cat", seed=3)
    assert loaded.variations("eye", 4, seed=3) == loaded.variations("eye", 4, seed=3)
    # changing the encoder makes the prior stale: refused, with the fallback said
    import onnx

    encoder = onnx.load(models / "generator_encoder.onnx")
    encoder.doc_string = "exported again"  # same graph, other bytes: as a re-export would be
    onnx.save(encoder, models / "generator_encoder.onnx")
    stale = Generator.load(models)
    assert stale.prior.name == NORMAL and "another generator_encoder.onnx" in stale.problems[0]


def test_aggregate_posterior_samples_near_its_own_class_components():
    mu = np.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 5.0], [3.0, -7.0]], np.float32)
    prior = AggregatePosterior(mu, np.full_like(mu, 1e-3), np.array([0, 1, 1, 2]), n_classes=4)
    z = prior.sample(1, 200, np.random.default_rng(0))
    nearest = np.abs(z[:, None, :] - mu[None]).sum(-1).argmin(1)
    assert z.shape == (200, 2) and z.dtype == np.float32
    assert set(nearest) == {1, 2} and np.abs(z - mu[nearest]).max() < 0.01  # both components of class 1, only those
    wide = AggregatePosterior(mu, np.ones_like(mu), np.array([0, 1, 1, 2]), n_classes=4).sample(
        0, 4000, np.random.default_rng(1)
    )
    assert abs(wide.std() - 1.0) < 0.05  # each z keeps its component's spread
    assert prior.sample(3, 5, np.random.default_rng(0)).shape == (5, 2)  # a class without components: N(0, I)


def test_stream_yields_points_and_ends_with_a_pen_lift(gen):
    points = list(gen.stream("cat", temperature=0.5, seed=1, max_len=40))
    assert 1 <= len(points) <= 40
    assert all(isinstance(x, float) and isinstance(y, float) and pen in (0, 1) for x, y, pen in points)
    assert points[-1][2] == 1


def test_generate_is_reproducible_and_canvas_shaped(gen):
    a = gen.generate("eye", temperature=0.5, seed=3, max_len=30)
    assert a == gen.generate("eye", temperature=0.5, seed=3, max_len=30)
    assert a != gen.generate("eye", temperature=0.5, seed=4, max_len=30)
    times = [p[2] for s in a for p in s]
    assert times == [i * MS_PER_POINT for i in range(len(times))]
    assert all(len(p) == 3 for s in a for p in s)


def test_stream_matches_generate(gen):
    points = list(gen.stream("cake", seed=9, max_len=30))
    flat = [p[:2] for s in gen.generate("cake", seed=9, max_len=30) for p in s]
    assert [list(p[:2]) for p in points] == flat


def test_variations_are_batched_distinct_and_reproducible(gen):
    v = gen.variations("cat", 4, temperature=0.8, seed=2)
    assert len(v) == 4 and v == gen.variations("cat", 4, temperature=0.8, seed=2)
    assert len({json.dumps(d) for d in v}) > 1
    with pytest.raises(ValueError):
        gen.variations("cat", 0)


def test_guidance_is_seeded_changes_the_drawing_and_is_checked(gen):
    guided = gen.generate("eye", seed=3, max_len=30, guidance=2.0)
    assert guided == gen.generate("eye", seed=3, max_len=30, guidance=2.0)
    assert guided != gen.generate("eye", seed=3, max_len=30, guidance=0.0)
    assert gen.variations("eye", 2, seed=3, guidance=2.0) == gen.variations("eye", 2, seed=3, guidance=2.0)
    for bad in (-0.5, float("nan"), 100.0):
        with pytest.raises(ValueError, match="guidance"):
            gen.generate("eye", guidance=bad)
    user = [[[10, 10, 0], [60, 12, 50]], [[20, 40, 90], [25, 70, 120]]]
    # without a word the unconditional pass would equal the conditional one: guidance is not used
    assert gen.complete(user, seed=2, max_len=20, guidance=3.0) == gen.complete(user, seed=2, max_len=20, guidance=0)
    assert gen.complete(user, seed=2, word="cat", max_len=20, guidance=3.0) != gen.complete(
        user, seed=2, word="cat", max_len=20, guidance=0
    )


def test_unknown_word_is_a_value_error_with_suggestions(gen):
    with pytest.raises(ValueError, match="did you mean"):
        gen.generate("kat")


def test_complete_returns_only_new_strokes_in_canvas_coordinates(gen):
    user = [[[1000, 500, 0], [1400, 520, 100], [1300, 900, 200]], [[1100, 600, 300], [1150, 700, 400]]]
    new = gen.complete(user, temperature=0.5, seed=1, max_len=30)
    assert new == gen.complete(user, temperature=0.5, seed=1, max_len=30)
    assert new, "the tiny model should add some points"
    pts = np.array([p for s in new for p in s])
    assert pts.shape[1] == 3 and pts[0, 2] > 400  # times continue after the user's
    # offsets are in canvas pixels: 400 px of canvas span 255 simplified units, so points stay near the drawing
    assert np.all(np.abs(pts[:, :2] - [1200, 700]) < 400 * 20)


def _eager(step):
    """A decoder step that wants the drawing to end now and otherwise lifts the pen after every point (dots)."""

    def eager(**inputs):
        out = dict(step(**inputs))
        out["pen_logits"] = out["pen_logits"] + np.array([0.0, 8.0, 16.0], np.float32)
        return out

    return eager


def _user(n_strokes: int) -> list:
    return [[[10 + 30 * i, 10, 100 * i], [20 + 30 * i, 80, 100 * i + 50]] for i in range(n_strokes)]


def test_complete_is_not_cut_before_its_minimum_and_draws_lines_not_dots(gen, monkeypatch):
    monkeypatch.setattr(gen, "_step", _eager(gen._step))
    low, high = FINISH_STROKES_AS_WORD
    for n_user, wanted in ((1, low), (low, low), (high, high), (9, high)):
        new = gen.complete(_user(n_user), seed=1, word="cat")
        assert len(new) == wanted and all(len(s) >= 2 for s in new)  # the eager step ends right after the minimum
    new = gen.complete(_user(4), seed=1)
    assert len(new) == FINISH_STROKES_NO_WORD and all(len(s) >= 2 for s in new)
    assert gen.complete(_user(4), seed=1, word="cat", max_len=3) != []  # max_len still bounds the continuation


def test_a_second_press_on_a_finished_drawing_adds_strokes_not_dots(gen, monkeypatch):
    first = gen.complete(_user(3), seed=2, word="eye")
    monkeypatch.setattr(gen, "_step", _eager(gen._step))  # the drawing looks finished to the model now
    for word in ("eye", None):
        again = gen.complete(_user(3) + first, seed=3, word=word)
        assert len(again) >= (FINISH_STROKES_AS_WORD[1] if word else FINISH_STROKES_NO_WORD)
        for stroke in again:
            xy = np.array(stroke)[:, :2]
            assert len(xy) >= 2 and np.ptp(xy, axis=0).max() > 0  # each stroke is a line, not a dot


def test_complete_rejects_bad_input(gen):
    for bad in ([], "cat", [[[1, 1, 0]]], [[["a", 2, 0]]]):
        with pytest.raises(DrawingError):
            gen.complete(bad)


@pytest.mark.skipif(not (MODELS_DIR / "generator_decoder.onnx").exists(), reason="no shipped generator yet")
def test_shipped_generator_draws_every_class_quickly():
    import time

    gen = Generator.load()
    assert len(gen.classes) >= 22
    assert gen.problems == [] and gen.prior.name == AGGREGATE  # the shipped prior belongs to the shipped encoder
    t0 = time.perf_counter()
    drawing = gen.generate(gen.classes[0], temperature=0.5, seed=0)
    assert time.perf_counter() - t0 < 1.0 and drawing
    assert drawing == gen.generate(gen.classes[0], temperature=0.5, seed=0)
