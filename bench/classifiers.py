"""Classifier benchmark: each model and the fusion through ONNX Runtime, vs the same architecture in torch eager.

    python -m bench.classifiers [--data DIR] [--calls 200]

Batch 1 is the app's case (one drawing per request); batch 256 is evaluation / offline scoring. The stroke input is a
250-point drawing (stroke-5, T = 250), the CNN input a 28x28 raster. Torch eager runs the architecture of the shipped
manifest's config with freshly initialised weights (latency does not depend on the weight values; the trained weights
live only in the ONNX files). Both run on the app's thread count (`sketchlab.service.CLASSIFIER_THREADS`), so the
fusion row is what a request costs in the app.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from bench.timing import Timing, machine, table, time_calls
from sketchlab.classify import Classifier
from sketchlab.data import default_data_dir, iter_drawings
from sketchlab.prepare import Prepared, from_simplified
from sketchlab.service import CLASSIFIER_THREADS

POINTS = 250  # "one drawing of 250 points"
BIG_BATCH = 256


def drawing_of(points: int, data: Path | None) -> Prepared:
    """A real simplified drawing with at least `points` points (its first `points` are used), else a synthetic one."""
    if data is not None:
        for record in iter_drawings(data, "simplified"):
            if sum(len(s) for s in record.drawing) >= points:
                return from_simplified(record.drawing)
    t = np.arange(points)
    zigzag = np.column_stack([t % 256, (t * 7) % 256]).astype(np.int32)
    return from_simplified([zigzag])


def _torch_model(kind: str, config: dict):

    from training.models_classifier import CNNConfig, StrokeConfig, build

    fields = {f.name for f in dataclasses.fields(StrokeConfig if kind == "stroke" else CNNConfig)}
    config = config.get("model_config", config)  # the manifest stores the training config; the architecture is inside
    return build(kind, {k: v for k, v in config.items() if k in fields}).eval()


def _no_grad(fn):
    """`fn` run without autograd bookkeeping, as inference is (no global switch: other benchmarks train)."""
    import torch

    def call():
        with torch.no_grad():
            return fn()

    return call


def run(data: Path | None, calls: int = 200) -> list[Timing]:
    classifier = Classifier.load(threads=CLASSIFIER_THREADS)
    classifier.warmup()
    prepared = drawing_of(POINTS, data)
    rows = []
    if "stroke" in classifier.models:
        stroke = classifier.models["stroke"]
        x1 = prepared.stroke5(stroke.manifest.scale_factor, POINTS)[None].astype(np.float32)  # (1, T + 1, 5)
        xb = np.repeat(x1, BIG_BATCH, axis=0)
        n1, nb = np.array([POINTS + 1]), np.full(BIG_BATCH, POINTS + 1)
        rows.append(time_calls("stroke model, ONNX, batch 1", lambda: stroke.run(strokes=x1, lengths=n1), calls))
        rows.append(
            time_calls(f"stroke model, ONNX, batch {BIG_BATCH}", lambda: stroke.run(strokes=xb, lengths=nb), 10)
        )
    if "cnn" in classifier.models:
        cnn = classifier.models["cnn"]
        i1 = (prepared.raster[None, None] / 255.0).astype(np.float32)  # (1, 1, 28, 28)
        ib = np.repeat(i1, BIG_BATCH, axis=0)
        rows.append(time_calls("CNN, ONNX, batch 1", lambda: cnn.run(image=i1), calls))
        rows.append(time_calls(f"CNN, ONNX, batch {BIG_BATCH}", lambda: cnn.run(image=ib), 20))
    rows.append(
        time_calls(
            "both models + fusion, ONNX, one 250-point drawing", lambda: classifier.classify_prepared(prepared), calls
        )
    )
    try:
        import torch
    except ImportError:
        return rows
    torch.set_num_threads(CLASSIFIER_THREADS)
    if "stroke" in classifier.models:
        model = _torch_model("stroke", classifier.models["stroke"].manifest.config)
        t1, tb = torch.from_numpy(x1), torch.from_numpy(xb)
        l1, lb = torch.from_numpy(n1), torch.from_numpy(nb)
        rows.append(time_calls("stroke model, torch eager, batch 1", _no_grad(lambda: model(t1, l1)), calls))
        rows.append(time_calls(f"stroke model, torch eager, batch {BIG_BATCH}", _no_grad(lambda: model(tb, lb)), 10))
    if "cnn" in classifier.models:
        model = _torch_model("cnn", classifier.models["cnn"].manifest.config)
        t1, tb = torch.from_numpy(i1), torch.from_numpy(ib)
        rows.append(time_calls("CNN, torch eager, batch 1", _no_grad(lambda: model(t1)), calls))
        rows.append(time_calls(f"CNN, torch eager, batch {BIG_BATCH}", _no_grad(lambda: model(tb)), 20))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    print(machine(), "| provider:", Classifier.load().provider)
    print(table(run(args.data, args.calls)))


if __name__ == "__main__":
    main()
