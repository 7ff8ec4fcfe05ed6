import numpy as np
import pytest
from onnx import TensorProto, helper

from sketchlab.data import DATASET
from sketchlab.errors import ModelError
from sketchlab.runtime import CPU, MODELS_DIR, Manifest, gpu_available, load_onnx

CLASSES = ["cat", "dog", "eye"]


def tiny_model(path, n_out=3):
    """x (B, 4) float -> logits (B, n_out) = x @ W: a stand-in for a classifier."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, n_out], np.arange(4 * n_out, dtype=np.float32).tolist())
    node = helper.make_node("MatMul", ["x", "w"], ["logits"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", n_out])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def manifest(**changes):
    fields = dict(
        name="tiny",
        kind="raster_classifier",
        classes=CLASSES,
        inputs={"x": ["B", 4]},
        outputs={"logits": ["B", 3]},
        input_format="four numbers",
        preprocessing_version="test",
    )
    return Manifest(**{**fields, **changes})


@pytest.fixture
def models(tmp_path):
    tiny_model(tmp_path / "tiny.onnx")
    manifest().save(tmp_path / "tiny.json")
    return tmp_path


def test_load_and_run(models):
    model = load_onnx("tiny", models)
    assert model.provider == CPU and not gpu_available()
    out = model.run(x=np.ones((2, 4), np.float32))
    assert out["logits"].shape == (2, 3)
    assert model.manifest.classes == CLASSES


def test_manifest_round_trip(tmp_path):
    m = manifest(scale_factor=np.float32(2.5), metrics={"top1": 0.9})
    m.save(tmp_path / "m.json")
    assert Manifest.load(tmp_path / "m.json") == manifest(scale_factor=2.5, metrics={"top1": 0.9})


def test_missing_model_file_names_the_file_and_fix(tmp_path):
    with pytest.raises(ModelError, match=r"nothing\.onnx is missing.*make models"):
        load_onnx("nothing", tmp_path)


def test_missing_manifest(models):
    (models / "tiny.json").unlink()
    with pytest.raises(ModelError, match="manifest"):
        load_onnx("tiny", models)


def test_corrupt_manifest(models):
    (models / "tiny.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a valid manifest"):
        load_onnx("tiny", models)


def test_truncated_model_file(models):
    data = (models / "tiny.onnx").read_bytes()
    (models / "tiny.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cannot be loaded"):
        load_onnx("tiny", models)


def test_manifest_with_wrong_inputs_is_refused(models):
    manifest(inputs={"strokes": ["B", "T", 5]}).save(models / "tiny.json")
    with pytest.raises(ModelError, match="inputs"):
        load_onnx("tiny", models)
    manifest(inputs={"x": ["B", 5]}).save(models / "tiny.json")
    with pytest.raises(ModelError, match="shape"):
        load_onnx("tiny", models)


def test_manifest_with_wrong_class_count_is_refused(models):
    manifest(classes=["cat", "dog"]).save(models / "tiny.json")
    with pytest.raises(ModelError, match="3 classes but its manifest lists 2"):
        load_onnx("tiny", models)


TRAINED = ("stroke", "cnn", "generator_encoder", "generator_decoder", "generator_prior")  # made from a data folder


@pytest.mark.parametrize("name", TRAINED)
def test_shipped_manifests_name_their_data_not_a_path(name):
    """A manifest travels with its model: it credits the dataset and records the folder's fingerprint (how
    `training.evaluate` recognises the training data), never a path that means nothing on another machine."""
    data = Manifest.load(MODELS_DIR / f"{name}.json").data
    assert data["folder"] == DATASET
    assert len(data["fingerprint"]) == 16
    assert "root" not in data
