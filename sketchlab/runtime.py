"""ONNX Runtime sessions and model manifests: how every shipped model is loaded.

Each model is `models/<name>.onnx` with `models/<name>.json` beside it (the manifest): the model's own config,
so serving never needs the dataset (see `Manifest`). Sessions use the CUDA provider when a GPU is there and the CPU
provider otherwise; `provider` tells which one a session really got.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# onnxruntime 1.31 sends usage events to mobile.events.data.microsoft.com from a background thread (OneDS telemetry,
# on Linux too) unless this is set before it is imported; found by tests/test_security.py's proxy trap.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import onnxruntime as ort  # noqa: E402

from .errors import ModelError  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_ORT_QUIET = 3  # ERROR level hides onnxruntime-gpu's two "CUDA not available" lines on CPU machines


@dataclass
class Manifest:
    """What a model file needs to be used correctly. Stored as JSON beside the ONNX file."""

    name: str  # e.g. "stroke", "cnn", "generator_decoder"
    kind: str  # "stroke_classifier" | "raster_classifier" | "fusion" | "generator_encoder" | "generator_decoder"
    classes: list[str]  # output class names, in output order
    inputs: dict[str, list[Any]]  # input name -> shape with symbolic dims as strings, e.g. {"strokes": ["B", "T", 5]}
    outputs: dict[str, list[Any]]  # output name -> shape
    input_format: str  # human-readable description of what the inputs hold
    preprocessing_version: str  # sketchlab.prepare.PREPROCESSING_VERSION the model was trained with
    scale_factor: float | None = None  # stroke offsets are divided by this (stroke models and the generator)
    config: dict[str, Any] = field(default_factory=dict)  # the training config (dataclass as dict)
    data: dict[str, Any] = field(default_factory=dict)  # what it was trained on: folder, split, counts
    metrics: dict[str, Any] = field(default_factory=dict)  # held-out metrics measured after training
    git_commit: str | None = None  # commit of the code that trained it

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
            return cls(**raw)
        except FileNotFoundError as e:
            raise ModelError(f"manifest {path} is missing; re-export the model (see README, 'Training')") from e
        except (json.JSONDecodeError, TypeError) as e:
            raise ModelError(f"manifest {path} is not a valid manifest ({e}); re-export the model") from e

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.__dict__, indent=1, default=_json_default) + "\n")


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a manifest")


def gpu_available() -> bool:
    """True when onnxruntime-gpu can run on a CUDA device here (checked once, by creating a tiny session)."""
    return _providers_that_work()[0] == CUDA


_PROBED: list[str] | None = None


def _providers_that_work() -> list[str]:
    global _PROBED
    if _PROBED is None:
        no_driver = not (Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists())
        forced_cpu = os.environ.get("SKETCHLAB_DEVICE", "").lower() == "cpu"
        if forced_cpu or no_driver or CUDA not in ort.get_available_providers():
            _PROBED = [CPU]
        else:
            _PROBED = [CUDA, CPU] if _cuda_session_works() else [CPU]
    return _PROBED


def _cuda_session_works() -> bool:
    # get_available_providers() lists CUDA for onnxruntime-gpu even without a GPU, so it cannot tell; try it, with
    # the logger at FATAL so a driver without CUDA libraries does not print its two error lines.
    ort.set_default_logger_severity(4)
    try:
        from onnx import TensorProto, helper

        node = helper.make_node("Identity", ["x"], ["y"])
        graph = helper.make_graph(
            [node],
            "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        session = ort.InferenceSession(model.SerializeToString(), _options(), providers=[CUDA, CPU])
        return session.get_providers()[0] == CUDA
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU"
        return False
    finally:
        ort.set_default_logger_severity(_ORT_QUIET)


def _options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = _ORT_QUIET
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return options


ort.set_default_logger_severity(_ORT_QUIET)


@dataclass
class Model:
    """A loaded ONNX model with its manifest. `run(**inputs)` returns the outputs by name."""

    manifest: Manifest
    session: ort.InferenceSession
    path: Path

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def run(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, inputs), strict=True))


def load_onnx(
    name_or_path: str | Path,
    models_dir: str | Path = MODELS_DIR,
    threads: int | None = None,
    expect_inputs: Collection[str] | None = None,
) -> Model:
    """Load `models/<name>.onnx` and its manifest, check they agree, and open a session on the best provider.

    Raises `ModelError` naming the file and the fix when a file is missing or corrupt, when the manifest's
    inputs or class count do not match the ONNX graph, or when the graph's inputs are not `expect_inputs` (the
    names the calling code feeds: a file exported by another version would otherwise fail at the first request).
    """
    path = Path(name_or_path)
    if path.suffix != ".onnx":
        path = Path(models_dir) / f"{name_or_path}.onnx"
    if not path.exists():
        raise ModelError(f"model file {path} is missing; run `make models` or restore it from git")
    manifest = Manifest.load(path.with_suffix(".json"))
    providers = _providers_that_work()
    try:
        session = ort.InferenceSession(str(path), _options(threads), providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise ModelError(f"model file {path} cannot be loaded ({type(e).__name__}: {e}); restore it from git") from e
    _check_matches(path, manifest, session)
    graph_inputs = sorted(i.name for i in session.get_inputs())
    if expect_inputs is not None and graph_inputs != sorted(expect_inputs):
        raise ModelError(
            f"{path} takes the inputs {graph_inputs} but this version of sketchlab feeds {sorted(expect_inputs)}: "
            "the file comes from another version; re-export it (see README, 'Training') or restore it from git"
        )
    if providers[0] == CUDA and session.get_providers()[0] != CUDA:
        warnings.warn(f"{path.name}: CUDA provider refused the model, running on CPU", stacklevel=2)
    return Model(manifest, session, path)


def _check_matches(path: Path, manifest: Manifest, session: ort.InferenceSession) -> None:
    graph_inputs = {i.name: i.shape for i in session.get_inputs()}
    if set(graph_inputs) != set(manifest.inputs):
        raise ModelError(
            f"{path}: manifest inputs {sorted(manifest.inputs)} do not match the model's {sorted(graph_inputs)}; "
            "the manifest belongs to another model: re-export both together"
        )
    for name, shape in manifest.inputs.items():
        got = graph_inputs[name]
        if len(got) != len(shape) or any(
            isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(got, shape, strict=True)
        ):
            raise ModelError(
                f"{path}: input {name!r} has shape {got} in the model but {shape} in the manifest; "
                "re-export the model and its manifest together (see README, 'Training')"
            )
    for out in session.get_outputs():
        want = manifest.outputs.get(out.name)
        if want is None:
            raise ModelError(f"{path}: output {out.name!r} is not in the manifest; re-export the model")
        last = out.shape[-1] if out.shape else None
        if manifest.kind.endswith("classifier") and isinstance(last, int) and last != len(manifest.classes):
            raise ModelError(
                f"{path}: the model has {last} classes but its manifest lists {len(manifest.classes)}; "
                "re-export the model and its manifest together (see README, 'Training')"
            )
