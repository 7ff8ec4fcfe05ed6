"""training.stream on a tiny data folder in the official layout, and both trainers in stream mode on 1 and 2 processes.

The 2-process runs cannot take exactly the 1-process steps: a rank streams its own byte ranges of the files through
its own shuffle buffer, so a global batch of 2 processes holds other drawings than the 1-process batch of the same
step (the cached path can slice one global batch, the stream by design never materialises one). So the check is:
both runs finish with finite losses, take the same number of steps of the same global batch (the same number of
drawings), and, started from the same weights with a small learning rate, end with validation losses close to each
other; the stream's own tests check that the ranks' shards are disjoint, cover the split and give equal batch counts.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_layout import PER_WORD, WORDS, make_layout

from sketchlab.split import Split, split_of
from training import stream
from training.classifier_config import TrainConfig
from training.stream import StreamConfig
from training.train_classifier import stream_inputs, train

ROOT = Path(__file__).resolve().parent.parent
TINY_STROKE = '{"conv_channels": [8, 8, 8], "hidden": 8, "layers": 1, "dropout": 0.0}'
TINY_GEN = ["--dec-hidden", "16", "--enc-hidden", "8", "--z-size", "4", "--class-embed", "4", "--n-mixtures", "2"]
CLASSIFIER_TOL = 0.02  # validation loss, relative, 1 vs 2 processes (measured: 0.003, CNN 0.002)
GENERATOR_TOL = 0.1  # relative difference of the summed validation loss terms (measured: 0.026)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return make_layout(tmp_path_factory.mktemp("qd"))


def _cfg(layout, **kw) -> StreamConfig:
    return StreamConfig(root=str(layout), classes=WORDS, **{"shuffle_buffer": 16, **kw})


def _expected_keys(layout: Path, split: Split, kinds=("simplified",)) -> set[str]:
    keys = set()
    for kind in kinds:
        for path in (layout / "full" / kind).glob("*.ndjson"):
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "key_id" in rec and split_of(rec["key_id"]) == split:
                    keys.add(rec["key_id"])
    return keys


def _take(cfg: StreamConfig, n: int, epoch: int = 0) -> list[stream.Example]:
    it = stream.examples(cfg, epoch)
    return [next(it) for _ in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# The stream


@pytest.mark.parametrize("world", [1, 2, 3])
def test_rank_shards_are_disjoint_cover_the_split_and_are_nearly_equal(layout, world):
    kinds = ("simplified", "raw")
    # 3,000 examples of a rank's endless stream: each of its files read through several times.
    shards = [
        {e.key_id for e in _take(_cfg(layout, kinds=kinds, rank=r, world_size=world), 3000)} for r in range(world)
    ]
    union = set().union(*shards)
    assert sum(len(s) for s in shards) == len(union)  # disjoint
    keyed = union - {None}
    assert keyed == _expected_keys(layout, Split.TRAIN, kinds)  # cover the split, and only it
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 0.15 * len(union)  # byte ranges of nearly equal line counts


def test_only_the_requested_split_is_kept(layout):
    got = {e.key_id for e in _take(_cfg(layout, split=Split.VALID), 500)}
    assert got - {None} == _expected_keys(layout, Split.VALID)


def test_stream_is_deterministic_for_a_seed_and_changes_with_the_epoch(layout):
    cfg = _cfg(layout, world_size=2, rank=1)
    a = [e.key_id for e in _take(cfg, 200)]
    assert a == [e.key_id for e in _take(cfg, 200)]
    assert a != [e.key_id for e in _take(cfg, 200, epoch=1)]
    assert a != [e.key_id for e in _take(replace(cfg, seed=7), 200)]


def test_examples_are_preprocessed_by_sketchlab(layout):
    ex = _take(_cfg(layout, kinds=("simplified", "raw")), 300)
    assert all(e.stroke3.dtype == np.float32 and e.stroke3.shape[1] == 3 for e in ex)
    assert all(e.raster.shape == (28, 28) and e.raster.dtype == np.uint8 for e in ex)
    assert {e.source for e in ex} == {0, 1}  # simplified and raw (through from_canvas)
    no_raster = _take(_cfg(layout, rasters=False), 10)
    assert all(e.raster is None for e in no_raster)


def test_batches_mix_classes_and_balancing_flattens_them(layout):
    first = next(stream.batches(_cfg(layout), 0, 16, 1))
    assert len({e.label for e in first}) > 1  # interleaved, not file after file
    natural = Counter(e.label for e in _take(_cfg(layout), 3000))
    balanced = Counter(e.label for e in _take(_cfg(layout, balance_power=1.0), 3000))
    assert natural[0] > 2.5 * natural[2]  # circle has 4x zigzag's drawings
    assert max(balanced.values()) < 1.3 * min(balanced.values())  # n_c ** -1: every class alike


def test_class_counts_estimate_the_drawings_per_class(layout):
    counts = stream.class_counts(_cfg(layout))  # every split's lines: the logit adjustment's sampled prior
    np.testing.assert_allclose(counts, [PER_WORD[w] for w in WORDS], rtol=0.25)
    with_raw = stream.class_counts(_cfg(layout, kinds=("simplified", "raw")))
    assert with_raw[1] > counts[1] and with_raw[0] == counts[0]


def test_shuffle_buffer_holds_at_most_its_size():
    consumed = 0

    def source():
        nonlocal consumed
        for i in range(1000):
            consumed += 1
            yield i

    out, held = [], 0
    for item in stream.shuffle(source(), 50, np.random.default_rng(0)):
        out.append(item)
        held = max(held, consumed - len(out) + 1)
    assert held <= 51  # the buffer, plus the item just read
    assert sorted(out) == list(range(1000)) and out != list(range(1000))


def test_every_rank_gets_the_same_number_of_full_batches(layout):
    steps = stream.steps_per_epoch(_cfg(layout), 8)
    assert steps == int(sum(PER_WORD.values()) * 0.8 // 8)  # one pass, estimated from the (small: exact) files
    for world in (1, 2, 3):
        counts = [
            [len(b) for b in stream.batches(_cfg(layout, rank=r, world_size=world), 0, 8 // world or 1, steps)]
            for r in range(world)
        ]
        assert all(len(c) == steps for c in counts)
        assert len({n for c in counts for n in c}) == 1


def _keys(batch, rng):
    return [e.key_id for e in batch]


def test_loader_workers_split_a_rank_shard_and_give_its_batch_count(layout):
    cfg = _cfg(layout, rank=1, world_size=2)
    inline = list(stream.loader(cfg, 0, 4, 5, _keys))
    assert inline == [_keys(b, None) for b in stream.batches(cfg, 0, 4, 5)]  # workers 0: the rank's own batches
    pooled = list(stream.loader(cfg, 0, 4, 5, _keys, workers=2))
    assert len(pooled) == 5 and all(len(b) == 4 for b in pooled)
    shard = {e.key_id for e in _take(cfg, 3000)}
    assert {k for b in pooled for k in b} <= shard  # the workers read sub-shards of this rank's shard


def test_validation_set_and_scale_are_the_same_on_every_rank(layout):
    caches = [stream.validation_cache(_cfg(layout, split=Split.VALID, rank=r, world_size=2), 1000) for r in (0, 1)]
    assert np.array_equal(caches[0].label, caches[1].label) and np.array_equal(caches[0].points, caches[1].points)
    assert set(caches[0].label.tolist()) == {0, 1, 2} and (caches[0].split == 1).all()
    keys = [e.key_id for e in stream.collect(_cfg(layout, split=Split.VALID), 1000)]
    assert len(keys) == len(set(keys)) == len(caches[0].label)  # each held-out drawing once
    assert set(keys) - {None} == _expected_keys(layout, Split.VALID)
    scales = {stream.estimate_scale(_cfg(layout, rank=r, world_size=2)) for r in (0, 1)}
    assert len(scales) == 1 and scales.pop() > 0


@pytest.mark.parametrize("bound", [{"limit_train": 10}, {"max_per_class": 5}])
def test_bounds_on_the_cached_items_are_refused_in_stream_mode(layout, tmp_path, bound):
    cfg = TrainConfig(model="cnn", data=str(layout), out=str(tmp_path), data_mode="stream", progress=0, **bound)
    with pytest.raises(ValueError, match="samples-per-epoch"):
        train(cfg)


def test_streamed_cnn_batches_are_redrawn_from_the_strokes_too():
    square = np.array([[10, 10, 0], [200, 0, 0], [0, 200, 0], [-200, 0, 0], [0, -200, 1]], np.float32)
    blank = stream.Example(label=0, stroke3=square, raster=np.zeros((28, 28), np.uint8), source=0, key_id=None)
    for redraw, inked in ((0.0, False), (1.0, True)):
        cfg = TrainConfig(model="cnn", augment=1, redraw=redraw)
        (x,), y = stream_inputs(cfg, 1.0, None, [blank] * 4, np.random.default_rng(0))
        assert x.shape == (4, 1, 28, 28) and y.tolist() == [0] * 4
        assert bool((x.flatten(1).amax(dim=1) > 0.5).all()) == inked  # the raster comes from the strokes


def test_missing_files_are_an_actionable_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ndjson files"):
        list(_take(StreamConfig(root=str(tmp_path), classes=("cat",)), 1))


# ---------------------------------------------------------------------------------------------------------------
# Both trainers in stream mode, 1 process and 2 (torchrun, gloo)


def _run(args: list[str], out: Path, procs: int) -> None:
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)] if procs > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, *launcher, *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["stroke", "cnn"])
def test_classifier_stream_mode_on_two_processes_agrees_with_one(layout, tmp_path, model):
    config = TINY_STROKE if model == "stroke" else '{"channels": [4, 8, 8], "hidden": 16, "dropout": 0.0}'
    workers = "0" if model == "stroke" else "1"  # the CNN runs read through a DataLoader worker a rank
    args = ["-m", "training.train_classifier", "--model", model, "--data", str(layout), "--data-mode", "stream"]
    args += ["--epochs", "1", "--batch-size", "16", "--samples-per-epoch", "64", "--lr", "0.003", "--progress", "0"]
    args += ["--shuffle-buffer", "32", "--sources", "simplified,raw", "--device", "cpu", "--model-config", config]
    args += ["--loader-workers", workers]
    for procs in (1, 2):
        _run(args, tmp_path / str(procs), procs)
    a, b = (torch.load(tmp_path / p / "last.pt", weights_only=True) for p in ("1", "2"))
    ha, hb = a["history"][0], b["history"][0]
    assert math.isfinite(ha["train_loss"]) and math.isfinite(hb["train_loss"])
    assert ha["drawings_n"] == hb["drawings_n"]  # the same validation drawings, each counted once over the ranks
    assert abs(ha["drawings_loss"] - hb["drawings_loss"]) / ha["drawings_loss"] < CLASSIFIER_TOL
    # The same 64 // 16 = 4 steps of 16 drawings each: 8 a rank on 2 processes (checked by the batch-count test).
    assert a["config"]["samples_per_epoch"] == b["config"]["samples_per_epoch"] == 64


@pytest.mark.slow
def test_generator_stream_mode_on_two_processes_agrees_with_one(layout, tmp_path):
    args = ["-m", "training.train_generator", "--data", str(layout), "--data-mode", "stream", "--epochs", "1"]
    args += ["--batch-size", "8", "--steps-per-epoch", "4", "--shuffle-buffer", "32", "--device", "cpu", *TINY_GEN]
    for procs in (1, 2):
        _run(args, tmp_path / str(procs), procs)
    a, b = (torch.load(tmp_path / p / "last.pt", weights_only=True) for p in ("1", "2"))
    assert a["step"] == b["step"] == 4  # the same steps of the same global batch: the same number of drawings
    assert a["scale_factor"] == b["scale_factor"]  # every rank estimates it from the same drawings
    va, vb = a["history"][-1]["valid"], b["history"][-1]["valid"]
    assert all(math.isfinite(v) for v in [*va.values(), *vb.values()])
    total_a, total_b = sum(va.values()), sum(vb.values())
    assert abs(total_a - total_b) / abs(total_a) < GENERATOR_TOL
