"""Stand-in models for the reliability tests: tiny ONNX graphs with the shipped models' inputs, outputs and manifests.

Built with `onnx.helper` in milliseconds (no torch), so the fuzz and fault tests run on a fresh clone before any
model is trained. `models_for_tests(folder)` copies the shipped models when they are all there (the real thing is
what users get) and builds the stand-ins otherwise.

    stroke.onnx             strokes (B, T, 5), lengths (B,)  -> logits (B, C)     mean row @ W + length * w
    cnn.onnx                image (B, 1, 28, 28)             -> logits (B, C)     flattened image @ W
    generator_encoder.onnx  strokes (B, T, 5), label (B,)    -> mu, sigma_hat (B, Z)
    generator_decoder.onnx  prev (B, 5), z (B, Z), label (B,), h, c (B, H) -> log_pi (B, M), mu, log_sigma (B, M, 2),
                            rho (B, M), pen_logits (B, 3), h_out, c_out (B, H)
    generator_prior.npz     two random latent components a class (sketchlab.latent_prior), tied to that encoder
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from sketchlab import latent_prior
from sketchlab.classify import Fusion, save_fusion
from sketchlab.prepare import PREPROCESSING_VERSION
from sketchlab.runtime import MODELS_DIR, Manifest

WORDS = ["cat", "dog", "house", "tree", "sun", "car", "fish"]
SCALE = 20.0  # stroke offsets are divided by this, as a trained model's scale factor
Z, H, M = 4, 8, 3  # latent size, decoder state size, mixture components of the stand-in generator
OPSET = 17
SHIPPED = ("stroke", "cnn", "generator_encoder", "generator_decoder")  # models/<name>.onnx the app serves
PEN_BIAS = (1.0, 0.0, -1.0)  # the stand-in decoder mostly keeps the pen down and sometimes ends the drawing


def _weight(name: str, shape: tuple[int, ...], rng: np.random.Generator, scale: float = 0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _save(path: Path, nodes, inputs, outputs, initializers) -> None:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def _f32(name: str, shape: list) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _manifest(name: str, kind: str, classes, inputs, outputs, **extra) -> Manifest:
    return Manifest(
        name=name,
        kind=kind,
        classes=list(classes),
        inputs=inputs,
        outputs=outputs,
        input_format="stand-in model for tests",
        preprocessing_version=PREPROCESSING_VERSION,
        **extra,
    )


def stroke_model(folder: Path, classes=WORDS, seed: int = 1) -> None:
    rng, c = np.random.default_rng(seed), len(classes)
    nodes = [
        helper.make_node("ReduceMean", ["strokes"], ["mean"], axes=[1], keepdims=0),  # (B, 5)
        helper.make_node("MatMul", ["mean", "w"], ["rows"]),  # (B, C)
        helper.make_node("Cast", ["lengths"], ["len_f"], to=TensorProto.FLOAT),  # (B,)
        helper.make_node("Unsqueeze", ["len_f", "axis1"], ["len_col"]),  # (B, 1)
        helper.make_node("Mul", ["len_col", "w_len"], ["by_len"]),  # (B, C)
        helper.make_node("Add", ["rows", "by_len"], ["logits"]),
    ]
    inits = [
        _weight("w", (5, c), rng),
        _weight("w_len", (1, c), rng, 0.01),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    lengths = helper.make_tensor_value_info("lengths", TensorProto.INT64, ["B"])
    _save(folder / "stroke.onnx", nodes, [_f32("strokes", ["B", "T", 5]), lengths], [_f32("logits", ["B", c])], inits)
    _manifest(
        "stroke",
        "stroke_classifier",
        classes,
        {"strokes": ["B", "T", 5], "lengths": ["B"]},
        {"logits": ["B", c]},
        scale_factor=SCALE,
        config={"max_points": 200},
    ).save(folder / "stroke.json")


def cnn_model(folder: Path, classes=WORDS, seed: int = 2, side: int = 28) -> None:
    """`side` other than 28 makes a wrong-shape model (its manifest then says so too, as an export would)."""
    rng, c = np.random.default_rng(seed), len(classes)
    nodes = [
        helper.make_node("Reshape", ["image", "flat"], ["x"]),  # (B, side * side)
        helper.make_node("MatMul", ["x", "w"], ["logits"]),  # (B, C)
    ]
    inits = [_weight("w", (side * side, c), rng, 0.05), numpy_helper.from_array(np.array([-1, side * side]), "flat")]
    _save(folder / "cnn.onnx", nodes, [_f32("image", ["B", 1, side, side])], [_f32("logits", ["B", c])], inits)
    _manifest("cnn", "raster_classifier", classes, {"image": ["B", 1, side, side]}, {"logits": ["B", c]}).save(
        folder / "cnn.json"
    )


def generator_models(folder: Path, classes=WORDS, seed: int = 3) -> None:
    rng, n = np.random.default_rng(seed), len(classes)
    config = {"z_size": Z, "dec_hidden": H, "n_mixtures": M, "n_classes": n, "unknown_class": n}
    common = dict(classes=classes, scale_factor=SCALE, config=config)

    enc_in = {"strokes": ["B", "T", 5], "label": ["B"]}
    enc_out = {"mu": ["B", Z], "sigma_hat": ["B", Z]}
    nodes = [
        helper.make_node("ReduceMean", ["strokes"], ["mean"], axes=[1], keepdims=0),  # (B, 5)
        helper.make_node("Gather", ["enc_embed", "label"], ["e"], axis=0),  # (B, Z)
        helper.make_node("MatMul", ["mean", "w_mu"], ["mu_x"]),
        helper.make_node("Add", ["mu_x", "e"], ["mu"]),
        helper.make_node("MatMul", ["mean", "w_sigma"], ["sigma_hat"]),
    ]
    inits = [_weight("w_mu", (5, Z), rng), _weight("w_sigma", (5, Z), rng), _weight("enc_embed", (n + 1, Z), rng)]
    label = helper.make_tensor_value_info("label", TensorProto.INT64, ["B"])
    _save(
        folder / "generator_encoder.onnx",
        nodes,
        [_f32("strokes", ["B", "T", 5]), label],
        [_f32(k, v) for k, v in enc_out.items()],
        inits,
    )
    _manifest("generator_encoder", "generator_encoder", inputs=enc_in, outputs=enc_out, **common).save(
        folder / "generator_encoder.json"
    )

    dec_in = {"prev": ["B", 5], "z": ["B", Z], "label": ["B"], "h": ["B", H], "c": ["B", H]}
    dec_out = {
        "log_pi": ["B", M],
        "mu": ["B", M, 2],
        "log_sigma": ["B", M, 2],
        "rho": ["B", M],
        "pen_logits": ["B", 3],
        "h_out": ["B", H],
        "c_out": ["B", H],
    }
    nodes = [
        helper.make_node("Concat", ["prev", "z", "h"], ["x"], axis=1),  # (B, 5 + Z + H)
        helper.make_node("Gather", ["embed", "label"], ["e"], axis=0),  # (B, H)
        helper.make_node("MatMul", ["x", "w_h"], ["xh"]),
        helper.make_node("Add", ["xh", "e"], ["pre_h"]),
        helper.make_node("Tanh", ["pre_h"], ["h_out"]),  # (B, H)
        helper.make_node("MatMul", ["x", "w_c"], ["pre_c"]),
        helper.make_node("Tanh", ["pre_c"], ["c_out"]),
        helper.make_node("MatMul", ["h_out", "w_pi"], ["log_pi"]),  # (B, M)
        helper.make_node("MatMul", ["h_out", "w_mu"], ["mu_flat"]),
        helper.make_node("Reshape", ["mu_flat", "mix2"], ["mu"]),  # (B, M, 2)
        helper.make_node("MatMul", ["h_out", "w_sigma"], ["ls_flat"]),
        helper.make_node("Add", ["ls_flat", "sigma_bias"], ["ls_biased"]),
        helper.make_node("Reshape", ["ls_biased", "mix2"], ["log_sigma"]),
        helper.make_node("MatMul", ["h_out", "w_rho"], ["pre_rho"]),
        helper.make_node("Tanh", ["pre_rho"], ["rho"]),  # (B, M) in (-1, 1)
        helper.make_node("MatMul", ["h_out", "w_pen"], ["pen_raw"]),
        helper.make_node("Add", ["pen_raw", "pen_bias"], ["pen_logits"]),  # (B, 3)
    ]
    inits = [
        _weight("embed", (n + 1, H), rng),
        _weight("w_h", (5 + Z + H, H), rng),
        _weight("w_c", (5 + Z + H, H), rng),
        _weight("w_pi", (H, M), rng),
        _weight("w_mu", (H, 2 * M), rng),
        _weight("w_sigma", (H, 2 * M), rng, 0.1),
        _weight("w_rho", (H, M), rng),
        _weight("w_pen", (H, 3), rng),
        numpy_helper.from_array(np.full(2 * M, -1.0, np.float32), "sigma_bias"),
        numpy_helper.from_array(np.array(PEN_BIAS, np.float32), "pen_bias"),
        numpy_helper.from_array(np.array([-1, M, 2], np.int64), "mix2"),
    ]
    label = helper.make_tensor_value_info("label", TensorProto.INT64, ["B"])
    inputs = [_f32("prev", ["B", 5]), _f32("z", ["B", Z]), label, _f32("h", ["B", H]), _f32("c", ["B", H])]
    _save(folder / "generator_decoder.onnx", nodes, inputs, [_f32(k, v) for k, v in dec_out.items()], inits)
    _manifest("generator_decoder", "generator_decoder", inputs=dec_in, outputs=dec_out, **common).save(
        folder / "generator_decoder.json"
    )
    generator_prior(folder, classes, rng)


def generator_prior(folder: Path, classes, rng: np.random.Generator, per_class: int = 2) -> None:
    """Random (mu, sigma) components for every class, tied to the generator_encoder.onnx in `folder`."""
    k = per_class * len(classes)
    outputs = {"mu": ["K", Z], "sigma": ["K", Z], "label": ["K"]}
    config = {
        "per_class": per_class,
        "z_size": Z,
        "encoder_sha256": latent_prior.file_sha256(folder / "generator_encoder.onnx"),
    }
    manifest = _manifest(latent_prior.PRIOR_NAME, latent_prior.PRIOR_NAME, classes, {}, outputs, config=config)
    labels = np.repeat(np.arange(len(classes)), per_class)
    latent_prior.save(folder, rng.standard_normal((k, Z)), np.full((k, Z), 0.9), labels, manifest)


def tiny_models(folder: Path, classes=WORDS) -> Path:
    """Write all four stand-ins and an equal-weight fusion.json into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stroke_model(folder, classes)
    cnn_model(folder, classes)
    generator_models(folder, classes)
    save_fusion(folder / "fusion.json", Fusion.default(len(classes)), list(classes), metrics={})
    return folder


def shipped_models_present() -> bool:
    return all((MODELS_DIR / f"{name}.onnx").exists() for name in SHIPPED)


def models_for_tests(folder: Path) -> Path:
    """A complete models folder in `folder`: a copy of the shipped models when present, else the stand-ins."""
    if shipped_models_present():
        folder.mkdir(parents=True, exist_ok=True)
        for f in MODELS_DIR.iterdir():
            if f.suffix in (".onnx", ".json", ".npz"):  # not plots/ and the like
                shutil.copy2(f, folder / f.name)
        return folder
    return tiny_models(folder)


def old_encoder(folder: Path, seed: int = 4) -> None:
    """Replace generator_encoder with one as exported before it took the class label (strokes only), with a manifest
    that agrees with it: a file from another version of the code."""
    manifest = Manifest.load(folder / "generator_encoder.json")
    z = int(manifest.config["z_size"])
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("ReduceMean", ["strokes"], ["mean"], axes=[1], keepdims=0),  # (B, 5)
        helper.make_node("MatMul", ["mean", "w_mu"], ["mu"]),
        helper.make_node("MatMul", ["mean", "w_sigma"], ["sigma_hat"]),
    ]
    outputs = [_f32("mu", ["B", z]), _f32("sigma_hat", ["B", z])]
    inits = [_weight("w_mu", (5, z), rng), _weight("w_sigma", (5, z), rng)]
    _save(folder / "generator_encoder.onnx", nodes, [_f32("strokes", ["B", "T", 5])], outputs, inits)
    manifest.inputs = {"strokes": ["B", "T", 5]}
    manifest.outputs = {"mu": ["B", z], "sigma_hat": ["B", z]}
    manifest.save(folder / "generator_encoder.json")
