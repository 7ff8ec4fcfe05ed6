"""training.train_generator and its parts: losses, data batches, config flags, tiny runs of both recipes, resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training import generator_data
from training.generator_baseline import BaselineConfig, BaselineSeq2Seq, baseline_loss, teacher_prob
from training.generator_model import GeneratorConfig, MixtureParams, SketchRNN, kl_loss, mixture_log_prob, split_params
from training.train_generator import TrainConfig, get_lr, kl_eta, load_model, parse_args, train

WORDS = ["square", "line", "zigzag"]
ROOT = Path(__file__).resolve().parent.parent


def _shape(word: str, i: int) -> list:
    r = np.random.default_rng(i)
    s = int(r.integers(40, 200))
    if word == "square":
        return [[[0, s, s, 0, 0], [0, 0, s, s, 0]]]
    if word == "line":
        return [[[0, s], [0, s // 2]], [[0, s], [s // 2, 0]]]
    xs = list(range(0, 250, 25))
    return [[xs, [0 if k % 2 else s for k in range(len(xs))]]]


def make_dataset(root: Path, per_word: int = 40, words: list[str] = WORDS) -> Path:
    """A tiny data folder in the official layout: categories.txt and full/simplified/<word>.ndjson."""
    (root / "full" / "simplified").mkdir(parents=True)
    (root / "categories.txt").write_text("\n".join(words) + "\n")
    for word in words:
        lines = [
            json.dumps({"word": word, "key_id": f"{word}{i}", "drawing": _shape(word, i)}) for i in range(per_word)
        ]
        (root / "full" / "simplified" / f"{word}.ndjson").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("qd"))


TINY = [
    "--dec-hidden",
    "16",
    "--enc-hidden",
    "8",
    "--z-size",
    "4",
    "--class-embed",
    "4",
    "--n-mixtures",
    "2",
    "--batch-size",
    "8",
    "--save-every",
    "2",
]


def test_mixture_log_prob_matches_the_bivariate_normal_density():
    m = 1
    y = torch.zeros(1, 1, 6 * m + 3)
    y[..., 1], y[..., 2] = 0.5, -1.0  # mu_x, mu_y
    y[..., 3], y[..., 4] = math.log(2.0), math.log(0.5)  # log sigma
    y[..., 5] = math.atanh(0.3 / 0.999)  # rho = 0.3
    p = split_params(y, m)
    x = torch.tensor([[[1.0, -0.5]]])
    zx, zy, rho = (1.0 - 0.5) / 2.0, (-0.5 + 1.0) / 0.5, 0.3
    z = zx**2 + zy**2 - 2 * rho * zx * zy
    expected = math.exp(-z / (2 * (1 - rho**2))) / (2 * math.pi * 2.0 * 0.5 * math.sqrt(1 - rho**2))
    assert isinstance(p, MixtureParams)
    assert mixture_log_prob(p, x).item() == pytest.approx(math.log(expected), rel=1e-4)


def test_kl_floor_and_annealing():
    kl, floored = kl_loss(torch.zeros(2, 4), torch.zeros(2, 4), kl_min=0.2)
    assert kl.item() == pytest.approx(0.0) and floored.item() == pytest.approx(0.2)
    cfg = TrainConfig(kl_eta_min=0.01, kl_decay=0.9)
    assert kl_eta(cfg, 0) == pytest.approx(0.01) and kl_eta(cfg, 1000) == pytest.approx(1.0)


def test_model_shapes_and_class_dropout():
    cfg = GeneratorConfig(n_classes=3, enc_hidden=8, dec_hidden=16, z_size=4, class_embed=4, n_mixtures=2)
    model = SketchRNN(cfg)
    s5 = torch.zeros(2, 6, 5)
    s5[:, 0, 2] = 1
    p, mu, sigma_hat = model(s5, torch.tensor([5, 3]), torch.tensor([0, 2]))
    assert p.log_pi.shape == (2, 5, 2) and p.mu.shape == (2, 5, 2, 2) and p.pen_logits.shape == (2, 5, 3)
    assert mu.shape == sigma_hat.shape == (2, 4)
    assert cfg.unknown_class == 3 and model.decoder.class_embedding.num_embeddings == 4


def test_baseline_shapes_loss_and_teacher_forcing_schedule():
    model = BaselineSeq2Seq(BaselineConfig(n_classes=3, class_embed=4, enc_hidden=8, dec_hidden=8))
    s5 = torch.zeros(2, 6, 5)
    pred = model(s5, torch.tensor([5, 3]), torch.tensor([0, 1]), teacher_prob=0.9)
    assert pred.shape == (2, 5, 5) and baseline_loss(pred, s5[:, 1:], torch.tensor([5, 3])).item() >= 0
    assert model.draw(torch.tensor([2]), 4).shape == (1, 4, 5)
    assert teacher_prob(0) == 0.9 and teacher_prob(9) == pytest.approx(0.45)


def test_batches_are_stroke5_cut_to_the_longest_drawing():
    rng = np.random.default_rng(0)
    s3 = [np.array([[1, 1, 0], [2, 2, 1]], np.float32), np.array([[1, 0, 0], [0, 1, 0], [3, 3, 1]], np.float32)]
    batch, lengths = generator_data.batch_stroke5(s3, scale=2.0, max_len=250, rng=None)
    assert batch.shape == (2, 4, 5) and lengths.tolist() == [2, 3]
    np.testing.assert_array_equal(batch[0, 3], [0, 0, 0, 0, 1])  # padding after the shorter drawing
    assert batch[1, 3, 0] == 1.5  # normalised by the scale
    batches = generator_data.length_batches(np.arange(23), 5, rng)
    assert len(batches) == 4 and all(len(b) == 5 for b in batches)


def test_parse_args_builds_flags_from_the_dataclass_and_baseline_defaults():
    cfg = parse_args(["--recipe", "baseline", "--words", "rich", "--no-augment"])
    assert (cfg.batch_size, cfg.epochs, cfg.weight_decay, cfg.augment) == (32, 10, 1e-5, False)
    assert cfg.out == "checkpoints/generator_baseline"
    cfg = parse_args(["--dec-hidden", "64"])
    assert cfg.dec_hidden == 64 and cfg.recipe == "shipped" and cfg.batch_size == 100
    with pytest.raises(ValueError):
        TrainConfig(recipe="nope")


def test_learning_rate_decays_drops_at_milestones_and_floors():
    cfg = TrainConfig(lr=1e-3, lr_decay=0.9999, lr_milestones="100,200", lr_gamma=0.5, min_lr=1e-5)
    assert get_lr(cfg, 0) == 1e-3
    assert get_lr(cfg, 99) == pytest.approx(1e-3 * 0.9999**99)
    assert get_lr(cfg, 100) == pytest.approx(0.5e-3 * 0.9999**100)
    assert get_lr(cfg, 250) == pytest.approx(0.25e-3 * 0.9999**250)
    assert get_lr(cfg, 10**6) == 1e-5
    assert parse_args(["--recipe", "baseline"]).lr_milestones == ""  # the starting recipe: a constant rate
    assert get_lr(parse_args(["--recipe", "baseline"]), 10**4) == 1e-3


def test_tiny_run_saves_and_resumes(tiny_data, tmp_path):
    out = tmp_path / "run"

    def args(epochs: int) -> list[str]:
        return ["--data", str(tiny_data), "--out", str(out), "--epochs", str(epochs), *TINY]

    path = train(parse_args(args(1)))
    first = torch.load(path, weights_only=True)
    assert first["epoch"] == 1 and first["classes"] == WORDS and first["scale_factor"] > 0
    assert first["history"][-1]["valid"]  # held-out losses were measured
    path = train(parse_args(args(2)))
    second = torch.load(path, weights_only=True)
    assert second["epoch"] == 2 and second["step"] == 2 * first["step"]  # continued, not restarted
    model, ckpt = load_model(path)
    assert isinstance(model, SketchRNN) and not model.training


def test_init_starts_from_the_given_weights_and_scale_with_a_new_schedule(tiny_data, tmp_path):
    first = train(parse_args(["--data", str(tiny_data), "--out", str(tmp_path / "a"), "--epochs", "1", *TINY]))
    start = torch.load(first, weights_only=True)
    start["scale_factor"] = 7.5  # not this data's: the run must keep the weights' normalisation
    torch.save(start, tmp_path / "start.pt")
    flags = ["--data", str(tiny_data), "--out", str(tmp_path / "b"), "--init", str(tmp_path / "start.pt"), *TINY]
    path = train(parse_args([*flags, "--epochs", "1", "--lr", "0", "--min-lr", "0"]))  # the weights stay the start's
    cont = torch.load(path, weights_only=True)
    assert cont["scale_factor"] == 7.5 and cont["step"] == start["step"]  # the schedule counts from 0 again
    assert cont["init_from"]["checkpoint"] == str(tmp_path / "start.pt")
    assert all(torch.equal(cont["model"][k], v) for k, v in start["model"].items())
    with pytest.raises(SystemExit, match="other classes or another model config"):
        train(parse_args([*flags, "--out", str(tmp_path / "c"), "--dec-hidden", "12"]))


def test_tiny_baseline_run(tiny_data, tmp_path):
    path = train(
        parse_args(
            [
                "--data",
                str(tiny_data),
                "--recipe",
                "baseline",
                "--out",
                str(tmp_path / "b"),
                "--epochs",
                "1",
                "--batch-size",
                "8",
            ]
        )
    )
    model, ckpt = load_model(path)
    assert isinstance(model, BaselineSeq2Seq) and ckpt["config"]["weight_decay"] == 1e-5


@pytest.mark.slow
def test_torchrun_two_processes_with_gloo(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "-m",
        "training.train_generator",
        "--data",
        str(tiny_data),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--device",
        "cpu",
        *TINY,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["step"] > 0
