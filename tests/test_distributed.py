"""Two CPU processes (torchrun, gloo) take the same optimiser steps as one process on the classifier training.

Each rank gets every second item of each global batch and DDP averages the gradients, so the runs take the same
steps up to floating-point order, batch norm's per-rank statistics (8 drawings per rank instead of 16) and the
padding of each rank's shorter batch. Batch norm makes the weights before it move differently (measured: about as
much as they move at all in 4 steps), so the check is on what the model computes: the validation loss after the
steps must agree closely, and no weight may drift far from the one-process run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from training.classifier_data import synthetic_cache
from training.train_classifier import load_checkpoint

TINY = '{"conv_channels": [8, 8, 8], "hidden": 8, "layers": 1, "dropout": 0.0}'
LOSS_TOL = 0.01  # relative difference of the validation loss (measured: 3e-4)
TRAIN_LOSS_TOL = 0.02  # relative difference of the mean training loss over the 4 steps
PARAM_TOL = 0.2  # max abs difference of any weight (measured: 0.08, from batch norm; SGD lr 0.1)


def _args(cache, out):
    return [
        "-m",
        "training.train_classifier",
        "--model",
        "stroke",
        "--recipe",
        "shipped",
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--samples-per-epoch",
        "64",
        "--augment",
        "0",
        "--lr",
        "0.01",
        "--progress",
        "0",
        "--model-config",
        TINY,
    ]


def test_two_gloo_processes_match_one(tmp_path):
    cache = tmp_path / "cache.npz"
    synthetic_cache(n_classes=4, per_class=24).save(cache)
    one = subprocess.run([sys.executable, *_args(cache, tmp_path / "one")], capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            *_args(cache, tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert two.returncode == 0, two.stderr[-8000:]  # the failing rank's own message comes before torchrun's summary
    a, b = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert a["epoch"] == b["epoch"] == 1
    diff = max((a["model"][k].float() - b["model"][k].float()).abs().max().item() for k in a["model"])
    assert diff < PARAM_TOL
    la, lb = a["history"][0]["drawings_loss"], b["history"][0]["drawings_loss"]
    assert abs(la - lb) / la < LOSS_TOL
    ta, tb = a["history"][0]["train_loss"], b["history"][0]["train_loss"]
    assert abs(ta - tb) / ta < TRAIN_LOSS_TOL
    # The validation counts are summed over both ranks: every validation drawing is counted once.
    assert a["history"][0]["drawings_n"] == b["history"][0]["drawings_n"]
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # really two different runs


def test_finish_leaves_a_torchrun_rank_without_finalisation_and_is_a_no_op_alone():
    code = "import atexit; from training import distributed; atexit.register(print, 'finalised'); "
    code += "print('saved', end=''); distributed.finish(); print(' and went on')"
    for world, expected in (("2", "saved"), ("1", "saved and went on\nfinalised")):
        env = {**os.environ, "WORLD_SIZE": world}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        assert run.returncode == 0 and run.stdout.strip() == expected, run.stderr[-2000:]
