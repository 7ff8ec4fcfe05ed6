"""Rebuild a torch checkpoint of the generator from its shipped ONNX files, so training can continue from them.

    python -m training.generator_from_onnx                      # models/ -> checkpoints/generator_from_onnx/last.pt
    python -m training.generator_from_onnx --models-dir DIR --out PATH

Checkpoints are not committed; the ONNX files are, and they hold every weight of the exported model. The data grows
by appended lines, so the natural way to bring the shipped generator up to a newer release is to continue training it
(`training.train_generator --init PATH`) rather than to start again. This module maps the ONNX initialisers back to
SketchRNN's state_dict and checks the result against ONNX Runtime with the export's own parity check.

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

from sketchlab.runtime import MODELS_DIR, Manifest

from .export_generator import PARITY_TOLERANCE, parity
from .generator_model import GeneratorConfig, SketchRNN

ONNX_TO_TORCH_GATES = [0, 2, 3, 1]  # torch gate k is ONNX gate ONNX_TO_TORCH_GATES[k]: (i, o, f, c) -> (i, f, c, o)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, order="C"))  # a writable copy: onnx arrays are read-only views


def _gates(w: np.ndarray, hidden: int) -> torch.Tensor:
    """(4H, ...) in ONNX gate order -> torch gate order."""
    blocks = [w[k * hidden : (k + 1) * hidden] for k in ONNX_TO_TORCH_GATES]
    return _tensor(np.concatenate(blocks, axis=0))


def _lstm_state(graph: onnx.GraphProto, inits: dict[str, np.ndarray], prefix: str, hidden: int) -> dict:
    """The one LSTM node of a graph -> nn.LSTM state_dict entries under `prefix` (e.g. "encoder.lstm.")."""
    (node,) = [n for n in graph.node if n.op_type == "LSTM"]
    w, r, b = (inits[name] for name in node.input[1:4])  # inputs: X, W, R, B, sequence_lens, initial_h, initial_c
    state = {}
    for d, suffix in enumerate(["", "_reverse"][: w.shape[0]]):
        state[f"{prefix}weight_ih_l0{suffix}"] = _gates(w[d], hidden)
        state[f"{prefix}weight_hh_l0{suffix}"] = _gates(r[d], hidden)
        state[f"{prefix}bias_ih_l0{suffix}"] = _gates(b[d, : 4 * hidden], hidden)
        state[f"{prefix}bias_hh_l0{suffix}"] = _gates(b[d, 4 * hidden :], hidden)
    return state


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
    enc_w = {i.name: numpy_helper.to_array(i) for i in enc.initializer}
    dec_w = {i.name: numpy_helper.to_array(i) for i in dec.initializer}
    table = dec_w["decoder.class_embedding.weight"]
    if not np.array_equal(enc_w["class_embedding.weight"], table):
        raise ValueError("the encoder's and the decoder's class embeddings differ: not one exported model")
    # the head's weight is the decoder's one anonymous MatMul initialiser, (Hd, 6M + 3): nn.Linear's transposed
    (head,) = [
        v for k, v in dec_w.items() if k.startswith("onnx::MatMul") and v.shape == (cfg.dec_hidden, cfg.n_outputs)
    ]
    state = {
        **_lstm_state(enc, enc_w, "encoder.lstm.", cfg.enc_hidden),
        **_lstm_state(dec, dec_w, "decoder.lstm.", cfg.dec_hidden),
        **{k: _tensor(v) for k, v in enc_w.items() if k.startswith("encoder.")},  # to_mu, to_sigma
        "decoder.class_embedding.weight": _tensor(table),
        "decoder.head.weight": _tensor(head.T),
        "decoder.head.bias": _tensor(dec_w["decoder.head.bias"]),
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--out", default="checkpoints/generator_from_onnx/last.pt")
    args = parser.parse_args(argv)
    ckpt = checkpoint_from_onnx(args.models_dir)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    diff = max(parity(tmp, part, Path(args.models_dir)) for part in ("encoder", "decoder"))  # the export's own check
    if diff > PARITY_TOLERANCE:
        tmp.unlink()
        raise SystemExit(f"rebuilt model differs from the ONNX graphs by {diff:.2e} (> {PARITY_TOLERANCE}): not saved")
    tmp.replace(out)
    print(f"saved {out}: step {ckpt['step']}, {len(ckpt['classes'])} classes, parity {diff:.2e}")


if __name__ == "__main__":
    main()
