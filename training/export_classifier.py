"""Export trained classifiers to ONNX with their manifests: models/stroke.onnx|json and models/cnn.onnx|json.

    python -m training.export_classifier                      # both, from runs/{stroke,cnn}-finetune/last.pt
    python -m training.export_classifier --model cnn --checkpoint runs/cnn-shipped/best.pt --out-dir models

Each model is exported in its own process: a second export of an LSTM model in one process can silently freeze
the time axis to the example's length (STACK-NOTES). After export the saved input shapes are checked (batch and
time must be symbolic) and ONNX Runtime is compared with torch on inputs of another size (max abs diff <= 1e-4).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from sketchlab.data import DATASET
from sketchlab.prepare import PREPROCESSING_VERSION
from sketchlab.runtime import MODELS_DIR, Manifest, load_onnx
from training.classifier_config import RUNS
from training.models_classifier import build
from training.train_classifier import load_checkpoint

OPSET = 17
PARITY_TOL = 1e-4  # max abs logit difference torch vs ONNX Runtime (issue 3, item 4)
INPUTS = {
    "stroke": {"strokes": ["B", "T", 5], "lengths": ["B"]},
    "cnn": {"image": ["B", 1, 28, 28]},
}
KINDS = {"stroke": "stroke_classifier", "cnn": "raster_classifier"}
FORMATS = {
    "stroke": (
        "strokes: float32 (B, T, 5) stroke-5 rows [dx, dy, p1, p2, p3] (sketchlab.prepare.Prepared.stroke5) of the "
        "simplified drawing, offsets divided by scale_factor, start token [0,0,1,0,0] first, the first "
        "config.max_points points only; lengths: int64 (B,) real rows including the start token (pad with "
        "[0,0,0,0,1] rows beyond it). Output logits (B, C)."
    ),
    "cnn": "image: float32 (B, 1, 28, 28), sketchlab.raster bitmap / 255 (Google's numpy_bitmap format). Output logits (B, C).",
}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def example_inputs(kind: str, batch: int, length: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(batch * 100 + length)
    if kind == "stroke":
        x = torch.randn(batch, length, 5, generator=g)
        x[:, :, 2:] = torch.nn.functional.one_hot(torch.randint(0, 2, (batch, length), generator=g), 3).float()
        return x, torch.full((batch,), length, dtype=torch.int64)
    return (torch.rand(batch, 1, 28, 28, generator=g),)


def check_shapes(path: Path, kind: str) -> None:
    """The saved graph's inputs must keep batch (and time) symbolic, with fixed sizes where the manifest has them."""
    import onnx

    graph = onnx.load(str(path)).graph
    for inp in graph.input:
        want = INPUTS[kind][inp.name]
        dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
        for w, d in zip(want, dims, strict=True):
            if isinstance(w, str) and not isinstance(d, str):
                raise RuntimeError(f"{path}: input {inp.name} axis {w} was frozen to {d} during export")
            if isinstance(w, int) and d != w:
                raise RuntimeError(f"{path}: input {inp.name} has {dims}, expected {want}")


def export_one(
    kind: str, checkpoint: Path, out_dir: Path, classes: list[str] | None = None, scale: float | None = None
) -> dict:
    """Export one model (call in a fresh process), check it, and write its manifest. Returns the parity figures.
    `classes` and `scale` default to those the checkpoint trained with (tests pass their own)."""
    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    model = build(kind, cfg["model_config"]).eval()
    model.load_state_dict(ckpt["model"])
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}.onnx"
    names = list(INPUTS[kind])
    dynamic = {n: {i: a for i, a in enumerate(shape) if isinstance(a, str)} for n, shape in INPUTS[kind].items()}
    dynamic["logits"] = {0: "B"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and LSTM batch-size notes
        torch.onnx.export(
            model,
            example_inputs(kind, 2, 37),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    check_shapes(path, kind)

    data = ckpt.get("data") or _data_from_cache(cfg)  # older checkpoints hold no "data"
    classes = classes or data["classes"]
    scale = data["scale"] if scale is None else scale
    best = max(ckpt["history"], key=lambda r: r["score"])
    manifest = Manifest(
        name=kind,
        kind=KINDS[kind],
        classes=classes,
        inputs=INPUTS[kind],
        outputs={"logits": ["B", len(classes)]},
        input_format=FORMATS[kind],
        preprocessing_version=data.get("preprocessing_version", PREPROCESSING_VERSION),
        scale_factor=float(scale) if kind == "stroke" else None,
        config={**cfg, "max_points": cfg["max_points"]},
        data={
            "folder": DATASET,
            "sources": cfg["sources"],
            "mode": data["data_mode"],  # "stream": read per rank from files, counts estimated
            "split": "sketchlab.split (salted sha1 of key_id, 80/10/10); trained on train, best epoch on valid",
            "train_items": data["train_items"],
            "fingerprint": data["fingerprint"],  # of the folder it trained on: how training.evaluate knows it
            # (C,) simplified training drawings per class, in `classes` order: the prior training.fuse corrects by
            "train_counts": data["train_counts"],
            "init": data.get("init"),  # the checkpoint a fine-tuning phase started from, and its own (None: scratch)
            "teachers": data.get("teachers"),  # the runs it was distilled from (`--teachers`), each as `init`
        },
        metrics={"valid_best_epoch": {k: v for k, v in best.items() if isinstance(v, (int, float))}},
        git_commit=git_commit(),
    )
    manifest.save(path.with_suffix(".json"))

    loaded = load_onnx(path)
    worst = 0.0
    for batch, length in ((1, 250), (3, 61), (1, 5)):
        inputs = example_inputs(kind, batch, length)
        with torch.no_grad():
            want = model(*inputs).numpy()
        got = loaded.run(**{n: t.numpy() for n, t in zip(names, inputs, strict=True)})["logits"]
        worst = max(worst, float(np.abs(got - want).max()))
    if worst > PARITY_TOL:
        raise RuntimeError(f"{path}: ONNX Runtime differs from torch by {worst:.2e} > {PARITY_TOL}")
    manifest.metrics["onnx_parity_max_abs_diff"] = worst
    manifest.save(path.with_suffix(".json"))
    size = path.stat().st_size / 1e6
    print(f"{path}: {size:.2f} MB, parity max abs diff {worst:.1e}, inputs {INPUTS[kind]}", flush=True)
    return {"path": str(path), "mb": size, "parity": worst}


def _data_from_cache(cfg: dict) -> dict:
    """`train_classifier.training_data` re-made from the training cache, for checkpoints that do not hold it."""
    from training.classifier_config import TrainConfig
    from training.classifier_data import load_or_build
    from training.train_classifier import init_record, training_data, training_pool

    cache = load_or_build(cfg["data"], cfg["cache"])
    pool = training_pool(TrainConfig(**{**cfg, "limit_train": 0}), cache)
    data = training_data(cfg["data"], cache, pool, None, cache.scale(), cfg["model"])
    return data | ({"init": init_record(cfg["init"])} if cfg.get("init") else {})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["stroke", "cnn", "all"], default="all")
    parser.add_argument(
        "--checkpoint", default="", help="default: runs/<model>-finetune/last.pt, the end of its cosine schedule"
    )
    parser.add_argument("--out-dir", default=str(MODELS_DIR))
    args = parser.parse_args(argv)
    if args.model == "all":
        for kind in ("stroke", "cnn"):  # one process per model (see the module docstring)
            cmd = [sys.executable, "-m", "training.export_classifier", "--model", kind, "--out-dir", args.out_dir]
            subprocess.run(cmd, check=True)
        return
    checkpoint = Path(args.checkpoint or RUNS / f"{args.model}-finetune" / "last.pt")
    print(json.dumps(export_one(args.model, checkpoint, Path(args.out_dir))))


if __name__ == "__main__":
    main()
