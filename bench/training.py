"""Training throughput: drawings per second of one optimiser step (forward + backward + AdamW) of each shipped model.

    python -m bench.training [--steps 5]

Each model is built from its shipped manifest's config (`models/*.json`) with the batch size it was trained with,
on batches of the shape training feeds it (classifiers: stroke-5 of 200 points and 28x28 images; generator: stroke-5
of 64 rows, about the padded length of its length-bucketed batches, with class labels). Data loading and augmentation
are excluded: this is what the model costs. Measured at 1 thread (what the trainings used on the shared machine) and
at every core.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.timing import machine
from sketchlab.runtime import MODELS_DIR, Manifest

STROKE_POINTS = 200  # the shipped stroke model reads the first 200 points
GENERATOR_ROWS = 64  # typical padded length of a generator batch (simplified drawings: median 43, p95 85 points)


def _classifier_step(kind: str) -> tuple[Callable[[], None], int]:
    from training.models_classifier import CNNConfig, StrokeConfig, build

    manifest = Manifest.load(MODELS_DIR / f"{kind}.json")
    fields = {f.name for f in dataclasses.fields(StrokeConfig if kind == "stroke" else CNNConfig)}
    arch = {k: v for k, v in manifest.config.get("model_config", {}).items() if k in fields}
    model = build(kind, {**arch, "n_classes": len(manifest.classes)}).train()
    batch = int(manifest.config.get("batch_size", 128))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    labels = torch.randint(0, len(manifest.classes), (batch,))
    if kind == "stroke":
        inputs = (torch.randn(batch, STROKE_POINTS + 1, 5), torch.full((batch,), STROKE_POINTS + 1))
    else:
        inputs = (torch.rand(batch, 1, 28, 28),)

    def step() -> None:
        loss = F.cross_entropy(model(*inputs), labels, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, batch


def _generator_step() -> tuple[Callable[[], None], int]:
    from training.train_generator import TrainConfig, build_model, compute_loss

    manifest = Manifest.load(MODELS_DIR / "generator_decoder.json")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    stored = manifest.config.get("train", manifest.config)  # the decoder manifest keeps the training config here
    cfg = TrainConfig(**{k: v for k, v in stored.items() if k in known and k != "data"})
    model, _ = build_model(cfg, len(manifest.classes))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = cfg.batch_size
    s5 = torch.zeros(batch, GENERATOR_ROWS + 1, 5)
    s5[:, :, :2] = torch.randn(batch, GENERATOR_ROWS + 1, 2)
    s5[:, :, 2] = 1
    lengths = torch.full((batch,), GENERATOR_ROWS)
    labels = torch.randint(0, len(manifest.classes), (batch,))

    def step() -> None:
        loss, _ = compute_loss(model, cfg, (s5, lengths, labels), step=10_000, epoch=5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, batch


def throughput(make: Callable[[], tuple[Callable[[], None], int]], steps: int) -> float:
    step, batch = make()
    step()  # warm-up: allocations, first-call dispatch
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def run(steps: int = 5) -> list[tuple[str, int, float]]:
    models = {
        "stroke classifier": lambda: _classifier_step("stroke"),
        "CNN": lambda: _classifier_step("cnn"),
        "generator (sketch-rnn, class-conditioned)": _generator_step,
    }
    rows = []
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        for name, make in models.items():
            rows.append((name, threads, throughput(make, steps)))
    return rows


def table(rows: list[tuple[str, int, float]]) -> str:
    head = "| model (one optimiser step, CPU) | threads | drawings / s |\n|---|---:|---:|"
    return "\n".join([head, *(f"| {name} | {threads} | {rate:,.0f} |" for name, threads, rate in rows)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    print(machine())
    print(table(run(args.steps)))


if __name__ == "__main__":
    main()
