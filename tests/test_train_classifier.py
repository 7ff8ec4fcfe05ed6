"""training.train_classifier, training.classifier_data and training.models_classifier on a tiny synthetic cache."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from sketchlab.split import Split
from training.classifier_config import TrainConfig, resolve
from training.classifier_data import (
    RAW,
    Cache,
    Redraw,
    balanced_weights,
    collate_strokes,
    epoch_order,
    global_batches,
    rank_slice,
    sampled_log_prior,
    stroke_tensor,
    synthetic_cache,
)
from training.models_classifier import (
    CNNConfig,
    SketchCNN,
    StrokeClassifier,
    StrokeConfig,
    augment_rasters,
    conv_lengths,
)
from training.train_classifier import (
    capped,
    distillation_loss,
    init_record,
    load_checkpoint,
    logit_adjustment,
    mirrored_classes,
    mixup_draw,
    parse_args,
    summarize,
    topk_counts,
    train,
    training_pool,
)

TINY_STROKE = {"conv_channels": [8, 8, 8], "hidden": 8, "layers": 1, "dropout": 0.0}
TINY_CNN = {"channels": [4, 8, 8], "strides": [2, 2, 1], "hidden": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "tiny.npz"
    synthetic_cache(n_classes=4, per_class=24).save(path)
    return path


def tiny_config(cache_path, out, model="stroke", **kw) -> TrainConfig:
    base = dict(
        model=model,
        recipe="shipped",
        cache=str(cache_path),
        out=str(out),
        epochs=2,
        batch_size=16,
        samples_per_epoch=64,
        progress=0,
        model_config=TINY_STROKE if model == "stroke" else TINY_CNN,
    )
    return TrainConfig(**{**base, **kw})


# ---------------------------------------------------------------------------------------------------------------
# Config


def test_recipe_fills_unset_fields_and_keeps_explicit_ones():
    cfg = resolve(TrainConfig(model="stroke", recipe="baseline", lr=0.5, augment=0))
    assert cfg.optimizer == "sgd" and cfg.clip_norm == 1.0 and cfg.max_points == 100
    assert cfg.lr == 0.5  # set explicitly
    assert cfg.model_config["conv_channels"] == (32, 64, 128) and cfg.model_config["bidirectional"] is False
    shipped = resolve(TrainConfig(model="cnn", recipe="shipped", augment=0))
    assert shipped.augment == 0 and shipped.sources == "simplified,raw,bitmap" and shipped.balance_power == 0.5
    with pytest.raises(ValueError, match="no recipe"):
        resolve(TrainConfig(model="cnn", recipe="fancy"))


def test_argparse_is_built_from_the_dataclass():
    cfg = parse_args(["--model", "stroke", "--max-minutes", "2.5", "--model-config", '{"hidden": 4}'])
    assert cfg.model == "stroke" and cfg.max_minutes == 2.5 and cfg.model_config == {"hidden": 4}


# ---------------------------------------------------------------------------------------------------------------
# Data


def test_cache_round_trip(tmp_path):
    cache = synthetic_cache(n_classes=3, per_class=5)
    cache.save(tmp_path / "c.npz")
    back = Cache.load(tmp_path / "c.npz")
    assert back.classes == cache.classes
    np.testing.assert_array_equal(back.stroke3(4), cache.stroke3(4))
    assert back.raster.shape == (15, 28, 28)


def test_balanced_weights_flatten_the_class_distribution():
    labels = np.array([0] * 90 + [1] * 10)
    p = balanced_weights(labels, 0.5, 2)
    share = np.array([p[labels == 0].sum(), p[labels == 1].sum()])
    np.testing.assert_allclose(share, np.sqrt([90, 10]) / np.sqrt([90, 10]).sum())
    np.testing.assert_allclose(balanced_weights(labels, 0.0, 2), 1 / 100)


def test_sampled_prior_is_what_the_sampling_shows_the_model():
    labels = np.array([0] * 90 + [1] * 10)  # class 2 has no item
    counts = np.bincount(labels, minlength=3)
    for power in (0.0, 0.5, 1.0):
        p = balanced_weights(labels, power, 3)
        shown = np.array([p[labels == c].sum() for c in range(2)])
        prior = np.exp(sampled_log_prior(counts, power))
        np.testing.assert_allclose(prior[:2] / prior[:2].sum(), shown)
        assert np.isfinite(sampled_log_prior(counts, power)).all()  # a class with no item stays possible
    np.testing.assert_allclose(np.exp(sampled_log_prior(counts, 1.0)), 1 / 3)


def test_logit_adjustment_is_tau_times_the_sampled_prior(cache_path, tmp_path):
    cache = Cache.load(cache_path)
    cfg = resolve(tiny_config(cache_path, tmp_path, model="stroke", balance_power=0.0))
    pool = cache.select(Split.TRAIN)
    assert logit_adjustment(cfg, cache, pool) is None  # off by default
    cfg.logit_adjust = 2.0
    counts = np.bincount(cache.label[pool], minlength=len(cache.classes))
    expected = 2.0 * sampled_log_prior(counts, 0.0)
    np.testing.assert_allclose(logit_adjustment(cfg, cache, pool).numpy(), expected, rtol=1e-6)


def test_training_with_logit_adjustment_runs_and_is_recorded(cache_path, tmp_path):
    train(tiny_config(cache_path, tmp_path, model="cnn", epochs=1, balance_power=0.0, logit_adjust=1.0))
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["config"]["logit_adjust"] == 1.0 and np.isfinite(ckpt["history"][0]["train_loss"])


def test_epoch_order_is_deterministic_and_batches_bucket_by_length():
    items = np.arange(100)
    labels = items % 3
    a = epoch_order(items, labels, 0.5, 3, 64, seed=7)
    assert np.array_equal(a, epoch_order(items, labels, 0.5, 3, 64, seed=7))
    lengths = np.random.default_rng(0).integers(1, 200, 100)
    batches = global_batches(a, 16, lengths, seed=7)
    assert len(batches) == 4 and all(len(b) == 16 for b in batches)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths)  # sorted windows: less padding than random batches


def test_rank_slices_partition_a_global_batch():
    batch = np.arange(12)
    parts = [rank_slice(batch, r, 3) for r in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == batch.tolist()


def test_stroke_tensor_crops_and_collate_pads():
    s3 = np.zeros((50, 3), np.float32)
    s3[:, 0] = 1
    s3[-1, 2] = 1
    x = stroke_tensor(s3, 2.0, 20)
    assert x.shape == (21, 5) and x[1, 0] == 0.5 and x[-1, 3] == 1  # cut drawings end with a pen lift
    batch, lengths = collate_strokes([x, x[:5]])
    assert batch.shape == (2, 21, 5) and lengths.tolist() == [21, 5] and batch[1, 5:, 4].eq(1).all()


# ---------------------------------------------------------------------------------------------------------------
# Models and metrics


def test_models_give_logits_for_any_batch_and_length():
    m = StrokeClassifier(StrokeConfig(n_classes=7, hidden=8, conv_channels=(8, 8, 8))).eval()
    for t in (1, 9, 64):
        assert m(torch.randn(3, t, 5), torch.full((3,), t)).shape == (3, 7)
    assert conv_lengths(torch.tensor([1, 8, 9]), 3, 2).tolist() == [1, 1, 2]
    cnn = SketchCNN(CNNConfig(n_classes=7, strides=(2, 2, 1))).eval()
    assert cnn(torch.rand(2, 1, 28, 28)).shape == (2, 7)


def test_positions_are_centred_and_follow_the_drawing_not_where_it_starts():
    from training.models_classifier import centred_positions

    torch.manual_seed(0)
    x, lengths = torch.randn(2, 12, 5), torch.tensor([12, 7])
    x[:, 0, :2] = 0  # the start token
    pos = centred_positions(x, lengths)  # (2, 12, 2)
    assert pos[:, 0].abs().sum() == 0 and pos[1, 7:].abs().sum() == 0  # start token and padding rows
    for b, n in enumerate(lengths.tolist()):  # the bounding box of the points is centred on 0
        torch.testing.assert_close(pos[b, 1:n].amax(0), -pos[b, 1:n].amin(0))
    moved = x.clone()
    moved[:, 1, :2] += 40  # the same drawing started elsewhere on the canvas
    torch.testing.assert_close(centred_positions(moved, lengths), pos)
    mirrored = x * torch.tensor([-1.0, 1, 1, 1, 1])
    torch.testing.assert_close(centred_positions(mirrored, lengths), pos * torch.tensor([-1.0, 1]))
    m = StrokeClassifier(StrokeConfig(n_classes=7, hidden=8, conv_channels=(8, 8, 8), positions=True)).eval()
    assert m.convs[0].in_channels == 7 and m(x, lengths).shape == (2, 7)


def test_lstm_dropout_acts_in_training_only_and_adds_no_parameters():
    torch.manual_seed(0)
    plain = StrokeClassifier(StrokeConfig(n_classes=7, hidden=8, conv_channels=(8, 8, 8)))
    dropped = StrokeClassifier(StrokeConfig(n_classes=7, hidden=8, conv_channels=(8, 8, 8), lstm_dropout=0.5))
    dropped.load_state_dict(plain.state_dict())  # same parameters: the option changes no shapes
    x, lengths = torch.randn(4, 20, 5), torch.full((4,), 20)
    torch.testing.assert_close(dropped.eval()(x, lengths), plain.eval()(x, lengths))
    dropped.train()
    assert not torch.allclose(dropped(x, lengths), dropped(x, lengths))  # stochastic between the LSTM layers


def test_mirroring_can_be_kept_to_the_data_poor_classes():
    counts = np.array([5, 500, 20, 199, 200])
    assert mirrored_classes(TrainConfig(mirror=0, mirror_below=200), counts) is None
    assert mirrored_classes(TrainConfig(mirror=1, mirror_below=0), counts).all()
    assert mirrored_classes(TrainConfig(mirror=1, mirror_below=200), counts).tolist() == [1, 0, 1, 1, 0]


def test_raster_mirror_flips_only_the_marked_images():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, :, 0] = 1.0  # ink in the left column only
    no_warp = dict(degrees=0.0, scale=0.0, shift=0.0)
    marked = torch.arange(64) % 2 == 0
    out = augment_rasters(x, torch.Generator().manual_seed(0), **no_warp, mirror=marked)
    flipped = out[:, 0, :, -1].sum(dim=1) > out[:, 0, :, 0].sum(dim=1)  # ink now on the right
    assert not flipped[~marked].any()
    assert 10 < int(flipped[marked].sum()) < 32  # about half of the 32 marked ones
    out_all = augment_rasters(x, torch.Generator().manual_seed(0), **no_warp, mirror=torch.ones(64, dtype=torch.bool))
    assert 20 < int((out_all[:, 0, :, -1].sum(dim=1) > out_all[:, 0, :, 0].sum(dim=1)).sum()) < 44


def test_redraw_changes_drawings_only_and_at_its_rate(cache_path):
    cache = Cache.load(cache_path)
    cache.bm_split[:] = 0
    rasters, labels, drawings = training_pool(TrainConfig(model="cnn", sources="simplified,bitmap"), cache)
    assert len(rasters) == len(labels) == len(drawings) and (drawings == -1).sum() == len(cache.bm_label)
    np.testing.assert_array_equal(rasters[drawings >= 0], cache.raster[drawings[drawings >= 0]])
    idx = np.arange(len(rasters))
    never = Redraw(cache, drawings, 0.0, np.random.default_rng(0))(idx, rasters[idx])
    np.testing.assert_array_equal(never, rasters)
    always = Redraw(cache, drawings, 1.0, np.random.default_rng(0))(idx, rasters[idx])
    bitmap = drawings < 0
    np.testing.assert_array_equal(always[bitmap], rasters[bitmap])  # no strokes to re-draw
    changed = (always != rasters).any(axis=(1, 2))
    assert changed[~bitmap].mean() > 0.9
    half = Redraw(cache, drawings, 0.5, np.random.default_rng(0))(idx, rasters[idx])
    assert 0.3 < (half != rasters).any(axis=(1, 2))[~bitmap].mean() < 0.7


def test_prefixes_redraw_the_drawings_at_their_rate_and_leave_the_rest_as_before(cache_path):
    cache = Cache.load(cache_path)
    cache.bm_split[:] = 0
    rasters, _, drawings = training_pool(TrainConfig(model="cnn", sources="simplified,bitmap"), cache)
    idx = np.arange(len(rasters))
    plain = Redraw(cache, drawings, 0.5, np.random.default_rng(0))(idx, rasters[idx])
    unset = Redraw(cache, drawings, 0.5, np.random.default_rng(0), prefix=0.0)(idx, rasters[idx])
    np.testing.assert_array_equal(unset, plain)  # prefix 0 draws nothing more: the shipped recipe reproduces
    middle = (cache.offsets[:-1] + cache.offsets[1:]) // 2
    cache.points[middle, 2] = 1  # the synthetic polygons in two strokes each, so that they have prefixes
    cut = Redraw(cache, drawings, 0.0, np.random.default_rng(0), prefix=1.0)(idx, rasters[idx])
    bitmap = drawings < 0
    np.testing.assert_array_equal(cut[bitmap], rasters[bitmap])
    assert (cut != rasters).any(axis=(1, 2))[~bitmap].mean() > 0.9


def test_training_on_prefixes_runs(cache_path, tmp_path):
    for model, anywhere in itertools.product(("stroke", "cnn"), (0, 1)):
        out = tmp_path / f"{model}-{anywhere}"
        train(tiny_config(cache_path, out, model=model, epochs=1, prefix=0.3, prefix_anywhere=anywhere))
        config = load_checkpoint(out / "last.pt")["config"]
        assert config["prefix"] == 0.3 and config["prefix_anywhere"] == anywhere


def test_capped_keeps_at_most_n_of_each_group_at_random():
    groups = np.array([0, 0, 0, 0, 1, 1, 2, 0, 1, 1])
    keep = capped(groups, 2, seed=5)
    assert np.bincount(groups[keep]).tolist() == [2, 2, 1]
    assert (np.diff(keep) > 0).all() and (capped(groups, 2, seed=5) == keep).all()
    assert any((capped(groups, 2, seed=s) != keep).any() for s in range(6, 12))  # another seed, other items
    assert (capped(groups, 9, seed=5) == np.arange(len(groups))).all()


def test_a_cap_per_class_bounds_each_source_of_the_pool(cache_path, tmp_path):
    cache = Cache.load(cache_path)
    cache.bm_split[:] = 0  # every bitmap a training one
    for model in ("stroke", "cnn"):
        every = "simplified,raw,bitmap"
        full = training_pool(tiny_config(cache_path, tmp_path, model=model, sources=every), cache)
        small = training_pool(tiny_config(cache_path, tmp_path, model=model, sources=every, max_per_class=5), cache)
        idx = small if model == "stroke" else small[2][small[2] >= 0]
        per_group = np.bincount(cache.label[idx] * 2 + (cache.source[idx] == RAW))
        assert per_group.max() == 5 and len(idx) < len(full if model == "stroke" else full[2])
        if model == "cnn":
            assert np.bincount(small[1][small[2] < 0]).max() == 5  # Google's bitmaps too


def test_training_with_redrawn_rasters_runs(cache_path, tmp_path):
    train(tiny_config(cache_path, tmp_path, model="cnn", epochs=1, redraw=0.5))
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["config"]["redraw"] == 0.5


def test_mixup_draws_a_weight_and_partners_seeded():
    assert mixup_draw(0.0, 8, np.random.default_rng(0)) == (1.0, None)
    lam, perm = mixup_draw(0.2, 8, np.random.default_rng(0))
    assert 0.0 <= lam <= 1.0 and sorted(perm.tolist()) == list(range(8))
    again = mixup_draw(0.2, 8, np.random.default_rng(0))
    assert again[0] == lam and torch.equal(again[1], perm)


def test_training_with_mixup_runs_and_is_seeded(cache_path, tmp_path):
    a = train(tiny_config(cache_path, tmp_path / "a", model="cnn", epochs=1, mixup=0.2))
    b = train(tiny_config(cache_path, tmp_path / "b", model="cnn", epochs=1, mixup=0.2))
    plain = train(tiny_config(cache_path, tmp_path / "c", model="cnn", epochs=1))
    assert a["train_loss"] == b["train_loss"] != plain["train_loss"]
    with pytest.raises(ValueError, match="CNN only"):
        resolve(tiny_config(cache_path, tmp_path / "d", model="stroke", mixup=0.2))


def test_distillation_loss_is_zero_against_itself_and_positive_otherwise():
    torch.manual_seed(0)
    teacher = torch.nn.Linear(6, 4).eval()
    x = torch.randn(5, 6)
    same = distillation_loss(teacher(x), (x,), [teacher])
    assert abs(same.item()) < 1e-6
    other = torch.nn.Linear(6, 4).eval()
    assert distillation_loss(teacher(x), (x,), [teacher, other]).item() > 0  # the pair's mean is neither of them


def test_training_with_teachers_runs_records_them_and_checks_them(cache_path, tmp_path):
    train(tiny_config(cache_path, tmp_path / "t1", epochs=1))
    train(tiny_config(cache_path, tmp_path / "t2", epochs=1, seed=7))
    teachers = f"{tmp_path / 't1' / 'last.pt'},{tmp_path / 't2' / 'last.pt'}"
    a = train(tiny_config(cache_path, tmp_path / "s", epochs=1, teachers=teachers, distill=0.5))
    plain = train(tiny_config(cache_path, tmp_path / "p", epochs=1))
    assert a["train_loss"] != plain["train_loss"]
    recorded = load_checkpoint(tmp_path / "s" / "last.pt")["data"]["teachers"]
    assert [r["checkpoint"] for r in recorded] == teachers.split(",")
    with pytest.raises(ValueError, match="go together"):
        resolve(tiny_config(cache_path, tmp_path / "x", teachers=teachers))
    train(tiny_config(cache_path, tmp_path / "c", model="cnn", epochs=1))
    with pytest.raises(ValueError, match="not stroke"):
        train(tiny_config(cache_path, tmp_path / "y", teachers=str(tmp_path / "c" / "last.pt"), distill=0.5))


def test_training_with_mirroring_of_the_data_poor_classes_runs(cache_path, tmp_path):
    for model in ("stroke", "cnn"):
        cfg = tiny_config(cache_path, tmp_path / model, model=model, epochs=1, mirror=1, mirror_below=20)
        train(cfg)
        assert load_checkpoint(tmp_path / model / "last.pt")["epoch"] == 1


def test_checkpoints_record_the_preprocessing_and_where_a_phase_started(cache_path, tmp_path):
    from sketchlab.prepare import PREPROCESSING_VERSION

    train(tiny_config(cache_path, tmp_path / "one", model="cnn", epochs=1))
    first = load_checkpoint(tmp_path / "one" / "last.pt")["data"]
    assert first["preprocessing_version"] == PREPROCESSING_VERSION and "init" not in first
    train(tiny_config(cache_path, tmp_path / "two", model="cnn", epochs=1, init=str(tmp_path / "one" / "best.pt")))
    second = load_checkpoint(tmp_path / "two" / "last.pt")["data"]["init"]
    assert second["checkpoint"].endswith("best.pt") and second["recipe"] == "shipped" and second["epochs"] == 1
    assert second["preprocessing_version"] == PREPROCESSING_VERSION and second["init"] is None
    train(tiny_config(cache_path, tmp_path / "three", model="cnn", epochs=1, init=str(tmp_path / "two" / "last.pt")))
    chain = load_checkpoint(tmp_path / "three" / "last.pt")["data"]["init"]
    assert chain["init"] == second  # the lineage goes back to training from scratch
    assert init_record(str(tmp_path / "missing.pt")) is None


def test_topk_counts_and_summary():
    logits = torch.tensor([[3.0, 2, 1, 0, -1, -2], [0, 3, 2, 1, -1, -2], [0, 1, 2, 3, 4, 5]])
    counts = topk_counts(logits, torch.tensor([0, 2, 0]), 6)
    assert counts[0].tolist() == [2, 1, 1, 1] and counts[2].tolist() == [1, 0, 1, 1]
    s = summarize(counts, np.array([True] + [False] * 5), loss_sum=3.0)
    assert s["top1"] == pytest.approx(1 / 3) and s["macro_top1"] == pytest.approx(0.25) and s["loss"] == 1.0
    assert s["rich_top1"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------------------
# Training


def test_training_saves_resumable_checkpoints(cache_path, tmp_path):
    best = train(tiny_config(cache_path, tmp_path, epochs=2))
    assert best["epoch"] in (1, 2)
    ckpt = load_checkpoint(tmp_path / "last.pt")  # weights_only=True
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2 and ckpt["config"]["model"] == "stroke"
    assert (tmp_path / "best.pt").exists() and json.loads((tmp_path / "history.json").read_text())
    train(tiny_config(cache_path, tmp_path, epochs=3))
    resumed = load_checkpoint(tmp_path / "last.pt")
    assert resumed["epoch"] == 3 and [r["epoch"] for r in resumed["history"]] == [1, 2, 3]


def test_training_is_seeded(cache_path, tmp_path):
    a = train(tiny_config(cache_path, tmp_path / "a", model="cnn", epochs=1))
    b = train(tiny_config(cache_path, tmp_path / "b", model="cnn", epochs=1))
    assert a["train_loss"] == b["train_loss"] and a["drawings_loss"] == b["drawings_loss"]


def test_cnn_learns_the_synthetic_shapes(cache_path, tmp_path):
    cfg = tiny_config(cache_path, tmp_path, model="cnn", epochs=6, samples_per_epoch=160, lr=3e-3, augment=0)
    train(cfg)
    history = load_checkpoint(tmp_path / "last.pt")["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert max(r["drawings_top1"] for r in history) > 0.4  # 4 classes: chance is 0.25


def test_early_stopping_ends_a_run_that_does_not_improve(cache_path, tmp_path):
    cfg = tiny_config(cache_path, tmp_path, epochs=10, lr=1e-12, patience=1, scheduler="none")
    train(cfg)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] < 10


def test_time_budget_stops_after_an_epoch(cache_path, tmp_path):
    train(tiny_config(cache_path, tmp_path, epochs=10, max_minutes=1e-6))
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
