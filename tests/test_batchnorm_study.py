"""training.studies.batchnorm_study on a tiny stroke model trained on a synthetic cache."""

from __future__ import annotations

import hashlib

import torch
from test_train_classifier import cache_path, tiny_config  # noqa: F401 (cache_path: the module's fixture)

from training.studies.batchnorm_study import recompute_batchnorm, study
from training.train_classifier import train


def test_recompute_sets_plain_averages_and_leaves_weights():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5))
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    data = [torch.randn(8, 3) for _ in range(5)]
    assert recompute_batchnorm(model, ((x,) for x in data)) == 5
    with torch.no_grad():
        h = torch.cat([model[0](x) for x in data])
    norm = model[1]
    assert torch.allclose(norm.running_mean, h.mean(0), atol=1e-5)  # equal batches: the mean of batch means
    assert norm.momentum is None and not model.training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())


def test_study_scores_the_checkpoint_as_saved_and_recomputed_without_changing_it(cache_path, tmp_path):  # noqa: F811
    cfg = tiny_config(cache_path, tmp_path / "run", model="stroke")
    train(cfg)
    checkpoint = tmp_path / "run" / "last.pt"
    before = hashlib.sha1(checkpoint.read_bytes()).hexdigest()
    out = study(str(checkpoint), batches=3, augmented=True, threads=1)
    assert out["batches"] == 3
    for arm in ("as_saved", "recomputed"):
        assert set(out[arm]) >= {"score", "top1", "macro_top5", "loss"}
        assert 0 <= out[arm]["top1"] <= 1
    assert hashlib.sha1(checkpoint.read_bytes()).hexdigest() == before
