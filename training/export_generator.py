"""Export a trained generator checkpoint to ONNX: the encoder and one decoder step, each with its manifest.

    python -m training.export_generator                                   # checkpoints/generator_shipped/last.pt
    python -m training.export_generator --checkpoint PATH --models-dir models

Writes models/generator_encoder.onnx|json and models/generator_decoder.onnx|json, then checks each ONNX graph
against torch on random inputs (the largest absolute difference goes into the manifest's metrics). Each graph is
exported in its own Python process: in torch 2.13 a second LSTM export in one process can silently freeze the time
axis to the example length (see /work/shared/STACK-NOTES.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from sketchlab.runtime import MODELS_DIR, Manifest, load_onnx

from .generator_model import PEN_STATES, STROKE5, DecoderStep, EncoderForExport
from .train_generator import load_model

DEFAULT_CHECKPOINT = Path("checkpoints/generator_shipped/last.pt")
OPSET = 17
PARITY_TOLERANCE = 1e-4  # float32 LSTM in torch vs ONNX Runtime typically differs by ~1e-7; more means a wrong graph
ENCODER_INPUTS = {"strokes": ["B", "T", STROKE5], "label": ["B"]}
ENCODER_FORMAT = (
    "strokes: stroke-5 rows [dx, dy, p1, p2, p3] of whole drawings without the start token or padding, offsets "
    "divided by scale_factor, in the 0..255 simplified frame (sketchlab.prepare); label: class index, or "
    "config.unknown_class when the class is not known. Outputs: mu and sigma_hat (log variance) of q(z | drawing, class)."
)
DECODER_FORMAT = (
    "One decoder step. prev: the previous stroke-5 row (start token [0,0,1,0,0] first); z: latent (drawn from "
    "sketchlab.latent_prior when drawing from scratch, or the encoder's mu); label: class index, or config.unknown_class when the class is not known; h, c: LSTM state "
    "(zeros at the start). Outputs: log_pi (mixture log weights), mu, log_sigma (B, M, 2) for normalised (dx, dy), "
    "rho, pen_logits over [p1 pen down, p2 pen lifted, p3 end], h_out, c_out. Temperature is the sampler's job."
)


def _shapes(cfg) -> tuple[dict, dict, dict]:
    z, h, m = cfg.z_size, cfg.dec_hidden, cfg.n_mixtures
    enc_outputs = {"mu": ["B", z], "sigma_hat": ["B", z]}
    dec_inputs = {"prev": ["B", STROKE5], "z": ["B", z], "label": ["B"], "h": ["B", h], "c": ["B", h]}
    dec_outputs = {
        "log_pi": ["B", m],
        "mu": ["B", m, 2],
        "log_sigma": ["B", m, 2],
        "rho": ["B", m],
        "pen_logits": ["B", PEN_STATES],
        "h_out": ["B", h],
        "c_out": ["B", h],
    }
    return enc_outputs, dec_inputs, dec_outputs


def _example_inputs(cfg, part: str, batch: int = 2, steps: int = 7) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if part == "encoder":
        labels = torch.tensor([cfg.n_classes, 0][:batch] + [1] * max(0, batch - 2), dtype=torch.int64)
        return {"strokes": torch.randn(batch, steps, STROKE5, generator=g), "label": labels}
    return {
        "prev": torch.randn(batch, STROKE5, generator=g),
        "z": torch.randn(batch, cfg.z_size, generator=g),
        "label": torch.tensor([0, cfg.n_classes][:batch] + [1] * max(0, batch - 2), dtype=torch.int64),
        "h": torch.randn(batch, cfg.dec_hidden, generator=g) * 0.1,
        "c": torch.randn(batch, cfg.dec_hidden, generator=g) * 0.1,
    }


def export_part(checkpoint: Path, part: str, models_dir: Path) -> Path:
    """Export one graph (in this process) and write its manifest. part: "encoder" or "decoder"."""
    model, ckpt = load_model(checkpoint)
    cfg = model.cfg
    enc_outputs, dec_inputs, dec_outputs = _shapes(cfg)
    if part == "encoder":
        module, inputs, outputs, fmt = EncoderForExport(model), ENCODER_INPUTS, enc_outputs, ENCODER_FORMAT
        dynamic = {"strokes": {0: "B", 1: "T"}, "label": {0: "B"}, "mu": {0: "B"}, "sigma_hat": {0: "B"}}
    else:
        module, inputs, outputs, fmt = DecoderStep(model), dec_inputs, dec_outputs, DECODER_FORMAT
        dynamic = {name: {0: "B"} for name in [*dec_inputs, *dec_outputs]}
    name = f"generator_{part}"
    path = models_dir / f"{name}.onnx"
    example = _example_inputs(cfg, part)
    torch.onnx.export(
        module.eval(),
        tuple(example.values()),
        str(path),
        input_names=list(inputs),
        output_names=list(outputs),
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,
    )
    history = ckpt.get("history") or []
    manifest = Manifest(
        name=name,
        kind=name,
        classes=list(ckpt["classes"]),
        inputs=inputs,
        outputs=outputs,
        input_format=fmt,
        preprocessing_version=ckpt["preprocessing_version"],
        scale_factor=float(ckpt["scale_factor"]),
        config={**ckpt["model_config"], "unknown_class": cfg.unknown_class, "train": ckpt["config"]},
        data=ckpt["data"],
        metrics={
            "valid": history[-1]["valid"] if history else None,
            "steps": ckpt["step"],
            "epochs_done": ckpt["epoch"],
            "batches_into_epoch": ckpt["batch_in_epoch"],
            "train_minutes": round(float(ckpt["train_minutes"]), 1),
        },
        git_commit=ckpt.get("git_commit"),
    )
    manifest.save(path.with_suffix(".json"))
    return path


def parity(checkpoint: Path, part: str, models_dir: Path) -> float:
    """Largest absolute difference between torch and ONNX Runtime outputs on random inputs (two batch sizes and,
    for the encoder, two lengths: the dynamic axes must really be dynamic)."""
    model, _ = load_model(checkpoint)
    module = EncoderForExport(model) if part == "encoder" else DecoderStep(model)
    onnx_model = load_onnx(f"generator_{part}", models_dir)
    worst = 0.0
    for batch, steps in ((1, 3), (3, 40)):
        example = _example_inputs(model.cfg, part, batch, steps)
        with torch.no_grad():
            expected = [t.numpy() for t in module(*example.values())]
        got = onnx_model.run(**{k: v.numpy() for k, v in example.items()})
        for e, g in zip(expected, got.values(), strict=True):
            worst = max(worst, float(np.abs(e - g).max()))
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--part", choices=["encoder", "decoder"], help="export only this graph (used internally)")
    args = parser.parse_args(argv)
    args.models_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.part:
        path = export_part(args.checkpoint, args.part, args.models_dir)
        worst = parity(args.checkpoint, args.part, args.models_dir)
        manifest = Manifest.load(path.with_suffix(".json"))
        manifest.metrics["parity_max_abs_diff"] = worst
        manifest.save(path.with_suffix(".json"))
        status = "ok" if worst <= PARITY_TOLERANCE else "FAILED"
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, parity with torch {worst:.2e} ({status})")
        if worst > PARITY_TOLERANCE:
            raise SystemExit(1)
        return
    for part in ("encoder", "decoder"):  # one process each (see the module docstring)
        cmd = [
            sys.executable,
            "-m",
            "training.export_generator",
            "--checkpoint",
            str(args.checkpoint),
            "--models-dir",
            str(args.models_dir),
            "--part",
            part,
        ]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
