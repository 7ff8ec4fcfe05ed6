"""Broken deployments (issue 6, item 3): each fault in a copy of models/, the loader started in that state.

For every fault: the start-up message names the file and the fix, the broken part is off, and everything else still
works (guesses from the CNN alone when the stroke model is broken, drawing and classification when the generator is
missing, ...). A model whose manifest does not match its ONNX graph is refused. The last test starts app.py itself
in a broken state. Uses a copy of the shipped models when present, tiny stand-ins otherwise (tests/_tiny_models.py).
"""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest
from _app_server import running_app
from _tiny_models import cnn_model, models_for_tests, old_encoder
from gradio_client import Client
from gradio_client.exceptions import AppError

from sketchlab.errors import DrawingError, ModelError
from sketchlab.service import Service

HOUSE = [
    [[50, 150, 0], [50, 300, 100], [250, 300, 200], [250, 150, 300], [50, 150, 400]],
    [[50, 150, 700], [150, 50, 800], [250, 150, 900]],
]
FIXES = ("make models", "restore it from git", "re-export")  # every start-up message says one of these


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return models_for_tests(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def models(pristine, tmp_path):
    """A fresh copy of a working models folder, for one test to break."""
    folder = tmp_path / "models"
    folder.mkdir()
    for f in pristine.iterdir():
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    return folder


def start(models, caplog) -> Service:
    """Load the service as the app does, and return it with the start-up log captured."""
    with caplog.at_level(logging.WARNING, logger="sketchlab"):
        return Service.load(models)


def assert_says(caplog, service: Service, *needles: str, fix: bool = True) -> str:
    """The start-up log and /health's problems both name the file (needles) and a fix; returns the message."""
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (logged, "\n".join(service.health()["problems"])):
        for needle in needles:
            assert needle in text, f"{needle!r} not in {text!r}"
        assert not fix or any(f in text for f in FIXES), f"no fix in {text!r}"
    return logged


def truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def edit_manifest(path, **changes) -> None:
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, **changes}))


def classifies_with(service: Service, only: str) -> None:
    """Classification works from one model alone: its own top-5 is the fused one, the other is None."""
    result = service.classify(HOUSE)
    other = {"stroke": "cnn", "cnn": "stroke"}[only]
    assert result[other] is None and len(result[only]) == 5
    assert result["fused"] == result[only]


def generates(service: Service) -> None:
    word = service.categories()[0][1]
    (drawing,) = service.generate(word, 0.4, 1)
    assert all(len(p) == 3 for s in drawing for p in s)
    assert isinstance(service.complete(HOUSE, 0.4, 1)["strokes"], list)


# ---------------------------------------------------------------------------------------------------------------
# Each fault


def test_working_models_start_without_problems(models, caplog):
    service = start(models, caplog)
    assert service.problems == [] and not caplog.records
    assert service.health()["models"] == {"classifier": True, "generator": True}
    assert {"fused", "stroke", "cnn"} <= set(service.classify(HOUSE)) and service.classify(HOUSE)["stroke"]
    generates(service)


def test_missing_stroke_model_leaves_the_cnn_guessing(models, caplog):
    (models / "stroke.onnx").unlink()
    service = start(models, caplog)
    assert_says(caplog, service, "stroke.onnx", "missing")
    classifies_with(service, "cnn")
    generates(service)


def test_truncated_cnn_leaves_the_stroke_model_guessing(models, caplog):
    truncate(models / "cnn.onnx")
    service = start(models, caplog)
    assert_says(caplog, service, "cnn.onnx", "cannot be loaded")
    classifies_with(service, "stroke")
    generates(service)


def test_wrong_shape_cnn_is_refused(models, caplog):
    """A CNN for 32x32 images where the manifest promises 28x28 (say, a file from another project)."""
    manifest = (models / "cnn.json").read_text()
    cnn_model(models, json.loads(manifest)["classes"], side=32)
    (models / "cnn.json").write_text(manifest)
    service = start(models, caplog)
    assert_says(caplog, service, "cnn.onnx", "shape")
    classifies_with(service, "stroke")


def test_manifest_with_other_inputs_than_the_graph_is_refused(models, caplog):
    edit_manifest(models / "stroke.json", inputs={"strokes": ["B", "T", 5], "mask": ["B", "T"]})
    service = start(models, caplog)
    assert_says(caplog, service, "stroke.onnx", "inputs")
    classifies_with(service, "cnn")


def test_manifest_with_another_class_count_is_refused(models, caplog):
    classes = json.loads((models / "cnn.json").read_text())["classes"]
    edit_manifest(models / "cnn.json", classes=classes[:-1])
    service = start(models, caplog)
    assert_says(caplog, service, "cnn.onnx", f"{len(classes)} classes", f"lists {len(classes) - 1}")
    classifies_with(service, "stroke")


def test_missing_manifest_is_refused(models, caplog):
    (models / "stroke.json").unlink()
    service = start(models, caplog)
    assert_says(caplog, service, "stroke.json", "missing")
    classifies_with(service, "cnn")


def test_corrupt_fusion_settings_fall_back_to_equal_weights(models, caplog):
    (models / "fusion.json").write_text("{oops")
    service = start(models, caplog)
    assert any("fusion" in p for p in service.problems)
    result = service.classify(HOUSE)
    assert result["stroke"] and result["cnn"] and len(result["fused"]) == 5


def test_without_any_classifier_the_generator_still_draws_and_finishes(models, caplog):
    (models / "stroke.onnx").unlink()
    truncate(models / "cnn.onnx")
    service = start(models, caplog)
    assert_says(caplog, service, "stroke.onnx", "cnn.onnx")
    assert service.health()["models"] == {"classifier": False, "generator": True}
    with pytest.raises(ModelError, match="stroke.onnx"):
        service.classify(HOUSE)
    generates(service)


@pytest.mark.parametrize("fault", ["decoder missing", "encoder truncated", "decoder manifest missing"])
def test_broken_generator_leaves_drawing_and_classification(models, caplog, fault):
    if fault == "decoder missing":
        (models / "generator_decoder.onnx").unlink()
        needles = ("generator_decoder.onnx", "missing")
    elif fault == "encoder truncated":
        truncate(models / "generator_encoder.onnx")
        needles = ("generator_encoder.onnx", "cannot be loaded")
    else:
        (models / "generator_decoder.json").unlink()
        needles = ("generator_decoder.json", "missing")
    service = start(models, caplog)
    assert_says(caplog, service, *needles)
    assert service.health()["models"] == {"classifier": True, "generator": False}
    assert service.categories() == []
    result = service.classify(HOUSE)
    assert result["stroke"] and result["cnn"]
    for call in (lambda: service.generate("cat"), lambda: service.complete(HOUSE)):
        with pytest.raises(ModelError, match=needles[0]):
            call()


@pytest.mark.parametrize("fault", ["missing", "truncated", "from another encoder", "other classes"])
def test_broken_latent_prior_falls_back_to_the_normal_prior(models, caplog, fault):
    """generator_prior.npz only says where z comes from: without it the generator still draws, from N(0, I)."""
    prior = models / "generator_prior.npz"
    needles = ["generator_prior.npz", "N(0, I)"]
    if fault == "missing":
        prior.unlink()
        needles.append("missing")
    elif fault == "truncated":
        truncate(prior)
        needles.append("cannot be read")
    elif fault == "from another encoder":
        manifest = json.loads(prior.with_suffix(".json").read_text())
        edit_manifest(prior.with_suffix(".json"), config={**manifest["config"], "encoder_sha256": "0" * 64})
        needles.append("another generator_encoder.onnx")
    else:
        manifest = json.loads(prior.with_suffix(".json").read_text())
        edit_manifest(prior.with_suffix(".json"), classes=manifest["classes"][::-1])
        needles.append("other classes")
    service = start(models, caplog)
    assert_says(caplog, service, *needles)
    assert service.generator is not None and service.generator.prior.name == "N(0, I)"
    generates(service)


def test_generator_halves_from_different_exports_are_refused(models, caplog):
    edit_manifest(models / "generator_encoder.json", scale_factor=123.0)
    service = start(models, caplog)
    assert_says(caplog, service, "generator_encoder", "different exports")
    assert service.generator is None and service.classify(HOUSE)["fused"]


def test_a_file_from_another_version_is_refused_at_load_not_at_the_first_request(models):
    """A graph and manifest that agree with each other, but not with what this code feeds (an older export)."""
    from sketchlab.runtime import load_onnx

    expected = set(json.loads((models / "generator_encoder.json").read_text())["inputs"])
    load_onnx("generator_encoder", models, expect_inputs=expected)
    with pytest.raises(ModelError, match=r"generator_encoder\.onnx takes the inputs .* another version.*re-export"):
        load_onnx("generator_encoder", models, expect_inputs=expected | {"extra"})


def test_generator_encoder_from_an_older_export_is_refused_at_start(models, caplog):
    """The encoder before it took the class label: graph and manifest agree, but `complete` feeds `label` too."""
    old_encoder(models)
    service = start(models, caplog)
    assert_says(caplog, service, "generator_encoder.onnx", "another version")
    assert service.generator is None and service.classify(HOUSE)["stroke"]


def test_finishing_a_huge_scribble_is_refused_not_computed(models):
    """Each simplified point is a decoder step: 20,000 points of noise would cost seconds of CPU per request."""
    import random

    rng = random.Random(0)
    scribble = [[[rng.uniform(0, 1000), rng.uniform(0, 1000), i] for i in range(20_000)]]
    with pytest.raises(DrawingError, match="can be finished"):
        Service.load(models).complete(scribble, 0.4, 1)


# ---------------------------------------------------------------------------------------------------------------
# The app itself, started broken


@pytest.mark.slow
def test_app_starts_broken_says_why_and_serves_the_rest(models, tmp_path):
    (models / "stroke.onnx").unlink()
    (models / "generator_decoder.onnx").unlink()
    log = tmp_path / "app.log"
    with running_app(log, "--models", str(models)) as url:
        client = Client(url, verbose=False)
        health = client.predict(api_name="/health")
        assert health["models"] == {"classifier": True, "generator": False}
        result = client.predict(json.dumps(HOUSE), api_name="/classify")
        assert result["stroke"] is None and result["fused"] == result["cnn"]
        with pytest.raises(AppError, match="generator_decoder.onnx"):
            client.predict("cat", 0.4, 1, api_name="/generate")
        with urllib.request.urlopen(url, timeout=10) as r:
            page = r.read().decode()
        assert "Some features are off" in page and "stroke.onnx" in page
        startup = log.read_text()
    for needle in ("stroke.onnx is missing", "generator_decoder.onnx is missing", "make models"):
        assert needle in startup
