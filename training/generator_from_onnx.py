"""Rebuild a torch checkpoint of the generator from its shipped ONNX files, so training can continue from them.

    python -m training.generator_from_onnx                      # models/ -> checkpoints/generator_from_onnx/last.pt
    python -m training.generator_from_onnx --models-dir DIR --out PATH

Checkpoints are not committed; the ONNX files are, and they hold every weight of the exported model. The data grows
by appended lines, so the natural way to bring the shipped generator up to a newer release is to continue training it
(`training.train_generator --init PATH`) rather than to start again. This module maps the ONNX initialisers back to
SketchRNN's state_dict and checks the result against ONNX Runtime on random inputs.

Mapping (torch.onnx export of opset 17, see training/export_generator.py):
    nn.Linear in a Gemm node: same name, same (out, in) layout; the decoder head in a MatMul node: weight transposed.
    nn.LSTM -> one LSTM node with W (D, 4H, in), R (D, 4H, H), B (D, 8H) = [W_b; R_b], D directions, gates in ONNX
    order (i, o, f, c); torch keeps weight_ih (4H, in), weight_hh (4H, H), bias_ih, bias_hh per direction, gates
    in order (i, f, g = c, o).
The class embedding is one table in torch (decoder.class_embedding, shared with the encoder) and a copy in each graph;
the two copies must agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from sketchlab.runtime import MODELS_DIR, Manifest, load_onnx

from .generator_model import STROKE5, GeneratorConfig, SketchRNN

ONNX_TO_TORCH_GATES = [0, 2, 3, 1]  # torch gate k is ONNX gate ONNX_TO_TORCH_GATES[k]: (i, o, f, c) -> (i, f, c, o)
PARITY_TOLERANCE = 1e-4


def _gates(w: np.ndarray, hidden: int) -> torch.Tensor:
    """(4H, ...) in ONNX gate order -> torch gate order."""
    blocks = [w[k * hidden : (k + 1) * hidden] for k in ONNX_TO_TORCH_GATES]
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(blocks, axis=0)))


def _lstm_state(graph: onnx.GraphProto, prefix: str, hidden: int) -> dict[str, torch.Tensor]:
    """The one LSTM node of a graph -> nn.LSTM state_dict entries under `prefix` (e.g. "encoder.lstm.")."""
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    (node,) = [n for n in graph.node if n.op_type == "LSTM"]
    w, r, b = (inits[name] for name in node.input[1:4])  # inputs: X, W, R, B, sequence_lens, initial_h, initial_c
    state = {}
    for d, suffix in enumerate(["", "_reverse"][: w.shape[0]]):
        state[f"{prefix}weight_ih_l0{suffix}"] = _gates(w[d], hidden)
        state[f"{prefix}weight_hh_l0{suffix}"] = _gates(r[d], hidden)
        state[f"{prefix}bias_ih_l0{suffix}"] = _gates(b[d, : 4 * hidden], hidden)
        state[f"{prefix}bias_hh_l0{suffix}"] = _gates(b[d, 4 * hidden :], hidden)
    return state


def _named(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in graph.initializer if not i.name.startswith("onnx::")}


def _head_weight(graph: onnx.GraphProto, n_outputs: int, hidden: int) -> np.ndarray:
    """The decoder head's weight, exported as an anonymous MatMul initialiser of shape (Hd, 6M + 3)."""
    (w,) = [
        numpy_helper.to_array(i)
        for i in graph.initializer
        if i.name.startswith("onnx::MatMul") and tuple(i.dims) == (hidden, n_outputs)
    ]
    return w.T


def checkpoint_from_onnx(models_dir: str | Path = MODELS_DIR) -> dict:
    """A checkpoint dict (as training.train_generator saves, without optimiser state) rebuilt from
    generator_encoder.onnx and generator_decoder.onnx and their manifests in models_dir."""
    models_dir = Path(models_dir)
    dec_manifest = Manifest.load(models_dir / "generator_decoder.json")
    config = dict(dec_manifest.config)
    train_config = config.pop("train")
    config.pop("unknown_class", None)
    cfg = GeneratorConfig(**config)
    enc = onnx.load(models_dir / "generator_encoder.onnx").graph
    dec = onnx.load(models_dir / "generator_decoder.onnx").graph
    enc_named, dec_named = _named(enc), _named(dec)
    if not np.array_equal(enc_named["class_embedding.weight"], dec_named["decoder.class_embedding.weight"]):
        raise ValueError("the encoder's and the decoder's class embeddings differ: not one exported model")

    state = {
        **_lstm_state(enc, "encoder.lstm.", cfg.enc_hidden),
        **_lstm_state(dec, "decoder.lstm.", cfg.dec_hidden),
        **{k: torch.from_numpy(v.copy()) for k, v in enc_named.items() if k.startswith("encoder.")},
        "decoder.class_embedding.weight": torch.from_numpy(dec_named["decoder.class_embedding.weight"].copy()),
        "decoder.head.weight": torch.from_numpy(np.ascontiguousarray(_head_weight(dec, cfg.n_outputs, cfg.dec_hidden))),
        "decoder.head.bias": torch.from_numpy(dec_named["decoder.head.bias"].copy()),
    }
    model = SketchRNN(cfg)
    model.load_state_dict(state)  # strict: every weight of the model is accounted for
    metrics = dec_manifest.metrics
    return {
        "model": model.state_dict(),
        "config": train_config,
        "model_config": config,
        "classes": list(dec_manifest.classes),
        "scale_factor": float(dec_manifest.scale_factor),
        "step": int(metrics.get("steps", 0)),
        "train_minutes": float(metrics.get("train_minutes", 0.0)),
        "data": dec_manifest.data,
        "from_onnx": str(models_dir),
    }


def parity(ckpt: dict, models_dir: str | Path = MODELS_DIR, seed: int = 0) -> float:
    """Largest absolute difference between the rebuilt torch model and the ONNX graphs on random inputs."""
    from .generator_model import DecoderStep, EncoderForExport  # the graphs that were exported

    models_dir = Path(models_dir)
    model = SketchRNN(GeneratorConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    cfg = model.cfg
    rng = np.random.default_rng(seed)
    strokes = rng.normal(size=(3, 11, STROKE5)).astype(np.float32)
    label = np.array([0, cfg.n_classes - 1, cfg.unknown_class], dtype=np.int64)  # first, last and "unknown"
    z = rng.normal(size=(3, cfg.z_size)).astype(np.float32)
    h = rng.normal(size=(3, cfg.dec_hidden)).astype(np.float32) * 0.1
    c = rng.normal(size=(3, cfg.dec_hidden)).astype(np.float32) * 0.1
    encoder = load_onnx(models_dir / "generator_encoder.onnx")
    decoder = load_onnx(models_dir / "generator_decoder.onnx")
    with torch.no_grad():
        want_enc = [t.numpy() for t in EncoderForExport(model)(torch.from_numpy(strokes), torch.from_numpy(label))]
        args = [torch.from_numpy(a) for a in (strokes[:, 0], z, label, h, c)]
        want_dec = [t.numpy() for t in DecoderStep(model)(*args)]
    got_enc = list(encoder.run(strokes=strokes, label=label).values())  # mu, sigma_hat
    got_dec = list(decoder.run(prev=strokes[:, 0], z=z, label=label, h=h, c=c).values())  # in DecoderStep's order
    return max(float(np.abs(a - b).max()) for a, b in zip(want_enc + want_dec, got_enc + got_dec, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--out", default="checkpoints/generator_from_onnx/last.pt")
    args = parser.parse_args(argv)
    ckpt = checkpoint_from_onnx(args.models_dir)
    diff = parity(ckpt, args.models_dir)
    if diff > PARITY_TOLERANCE:
        raise SystemExit(f"rebuilt model differs from the ONNX graphs by {diff:.2e} (> {PARITY_TOLERANCE}): not saved")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    print(f"saved {out}: step {ckpt['step']}, {len(ckpt['classes'])} classes, parity {diff:.2e}")


if __name__ == "__main__":
    main()
