"""Do a trained classifier's BatchNorm statistics, recomputed over many training batches, score better? Measured.

    python -m training.studies.batchnorm_study runs/stroke-finetune/last.pt                  # ~1 min on 2 CPU cores
    python -m training.studies.batchnorm_study runs/stroke-finetune/best.pt --batches 300 --augmented

During training each BatchNorm layer keeps an exponential moving average (momentum 0.1) of its batch statistics, so
the means and variances a checkpoint evaluates with come mostly from its last few dozen batches, of augmented, cut
short and mirrored drawings. "Precise BN" (Wu and Johnson 2021, "Rethinking 'Batch' in BatchNorm") replaces them by
plain averages over many batches with the weights frozen. This study scores the checkpoint on the validation split
(`train_classifier.evaluate`, the figures training keeps its best epoch by) as saved, then with statistics
recomputed over --batches training batches: plain drawings (as evaluated), or with --augmented the training
distribution (augmentation, cuts and mirroring as the recipe sets them). The checkpoint file is only read.
"""

from __future__ import annotations

import argparse
import json

import torch

from training import distributed
from training.classifier_config import TrainConfig
from training.classifier_data import load_or_build
from training.models_classifier import build
from training.train_classifier import (
    batch_iter,
    batches_for_epoch,
    evaluate,
    load_checkpoint,
    score,
    training_pool,
    validation_sets,
)

FIGURES = ("top1", "top5", "macro_top1", "macro_top5", "rich_top1", "loss")
STATS_EPOCH = 10_000  # the batch order's seed: an epoch number no recipe trains to


def recompute_batchnorm(model: torch.nn.Module, inputs) -> int:
    """Reset every BatchNorm layer's running statistics and set them to plain averages over `inputs` (an iterable of
    input tuples), the weights untouched; returns the number of batches seen. Other layers (dropout) stay in eval."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.eval()
    for m in norms:
        m.train()
    n = 0
    with torch.no_grad():
        for batch in inputs:
            model(*batch)
            n += 1
    model.eval()
    return n


def study(checkpoint: str, batches: int, augmented: bool, threads: int = 2) -> dict:
    torch.set_num_threads(threads)
    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig(**ckpt["config"])
    info = distributed.setup("cpu")
    cache = load_or_build(cfg.data, cfg.cache)
    scale = cache.scale()
    pool = training_pool(cfg, cache)
    valid = validation_sets(cfg, cache)["drawings"]
    model = build(cfg.model, cfg.model_config)
    model.load_state_dict(ckpt["model"])

    def measure() -> dict:
        m = evaluate(cfg, model, cache, valid, info, scale)
        return {"score": score(m), **{k: m[k] for k in FIGURES if k in m}}  # rich_top1: where there are rich classes

    saved = measure()
    order = batches_for_epoch(cfg, cache, pool, STATS_EPOCH)[:batches]
    stream = (x for x, _ in batch_iter(cfg, cache, pool, order, info, scale, train=augmented, epoch=STATS_EPOCH))
    seen = recompute_batchnorm(model, stream)
    return {
        "checkpoint": checkpoint,
        "batches": seen,
        "augmented": augmented,
        "as_saved": saved,
        "recomputed": measure(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--batches", type=int, default=200, help="training batches the statistics average over")
    parser.add_argument("--augmented", action="store_true", help="batches as training draws them (else plain)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args(argv)
    out = study(args.checkpoint, args.batches, args.augmented, args.threads)
    for arm in ("as_saved", "recomputed"):
        print(
            f"{arm:>10}: "
            + " ".join(f"{k} {100 * v:.2f}" if k != "loss" else f"loss {v:.4f}" for k, v in out[arm].items())
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
