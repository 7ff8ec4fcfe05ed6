"""app.py through its Gradio API, as `gradio_client` users see it: one app server on 127.0.0.1 for the module."""

from __future__ import annotations

import json
import math
import os

import pytest
from _app_server import running_app
from _tiny_models import models_for_tests, shipped_models_present
from gradio_client import Client
from gradio_client.exceptions import AppError

from sketchlab.strokes import MAX_POINTS

CIRCLE = [[[100 + 80 * math.cos(a / 10), 100 + 80 * math.sin(a / 10), 20 * a] for a in range(64)]]
HOUSE = [
    [[50, 150, 0], [50, 300, 100], [250, 300, 200], [250, 150, 300], [50, 150, 400]],
    [[50, 150, 700], [150, 50, 800], [250, 150, 900]],
    [[130, 300, 1200], [130, 220, 1300], [170, 220, 1400], [170, 300, 1500]],
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The app serving the shipped models (tiny stand-ins on a fresh clone before training)."""
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder / "app.log", "--models", str(models_for_tests(folder / "models"))) as url:
        yield Client(url, verbose=False)


def test_defaults_loopback_port_flag_and_env(monkeypatch):
    import app

    for var in ("PORT", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var, raising=False)
    args = app.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    assert app.parse_args([]).port == 8123
    monkeypatch.setenv("PORT", "8124")
    assert app.parse_args([]).port == 8124
    assert app.parse_args(["--port", "9000", "--host", "0.0.0.0"]).port == 9000
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"  # set by app.py before gradio is imported


def test_api_lists_the_four_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/classify", "/generate", "/complete", "/health"} <= set(endpoints)


def test_health_reports_version_provider_and_models(client):
    health = client.predict(api_name="/health")
    assert health["version"] and health["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert health["models"] == {"classifier": True, "generator": True}, health["problems"]
    assert health["classes"] == 345 if shipped_models_present() else health["classes"] > 0


def test_classify_returns_top5_of_each_model(client):
    result = client.predict(json.dumps(HOUSE), api_name="/classify")
    assert set(result) == {"fused", "stroke", "cnn"}
    for guesses in result.values():
        assert len(guesses) == 5
        assert all(isinstance(g["word"], str) and 0 <= g["prob"] <= 1 for g in guesses)
        assert [g["prob"] for g in guesses] == sorted((g["prob"] for g in guesses), reverse=True)
    again = client.predict(json.dumps(HOUSE), api_name="/classify")
    assert again == result  # deterministic
    live = client.predict(json.dumps(HOUSE), True, api_name="/classify")  # the last stroke still being drawn
    assert [g["word"] for g in live["cnn"]] == [g["word"] for g in result["cnn"]]  # a temperature keeps the order
    second = result["fused"][1]["word"]  # a live display showing the second guess first: held, or clearly beaten
    held = client.predict(json.dumps(HOUSE), False, second, api_name="/classify")
    assert held["fused"][0]["word"] in (second, result["fused"][0]["word"])
    assert {g["word"]: g["prob"] for g in held["fused"]} == {g["word"]: g["prob"] for g in result["fused"]}
    rested = client.predict(json.dumps(HOUSE), False, "", True, api_name="/classify")  # the pen has rested
    assert [g["word"] for g in rested["fused"]] == [g["word"] for g in result["fused"]]  # the same order


DOTS = {
    "one tap": [[[120, 80, 0]]],
    "taps on one spot": [[[120, 80, 0]], [[120, 80, 400]]],
    "taps apart": [[[120, 80, 0]], [[40, 200, 400]], [[220, 150, 800]]],
    "a dot and a line": [[[120, 80, 0]], [[50, 150, 500], [250, 160, 600]]],
}


@pytest.mark.parametrize("drawing", DOTS.values(), ids=DOTS.keys())
def test_classify_answers_a_dot_with_guesses(client, drawing):
    """A tap is a drawing in progress: real (if unsure) guesses, never an error."""
    for args in ((), (True,), (False, "", True)):  # as drawn, pen down, pen rested
        result = client.predict(json.dumps(drawing), *args, api_name="/classify")
        assert all(len(result[k]) == 5 and 0 <= result[k][0]["prob"] <= 1 for k in ("fused", "stroke", "cnn"))


def test_generate_returns_a_stroke_list_decided_by_the_seed(client):
    drawing = client.predict("cat", 0.4, 7, api_name="/generate")
    assert drawing and all(len(p) == 3 for s in drawing for p in s)
    assert all(math.isfinite(v) for s in drawing for p in s for v in p)
    times = [p[2] for s in drawing for p in s]
    assert times == sorted(times)  # in drawing order
    assert client.predict("cat", 0.4, 7, api_name="/generate") == drawing
    assert client.predict("cat", 0.4, 7, 0.0, api_name="/generate") != drawing  # without guidance: another drawing


def test_complete_returns_new_strokes(client):
    new = client.predict(json.dumps(CIRCLE), 0.4, 1, api_name="/complete")
    assert isinstance(new, list)
    assert all(len(p) == 3 for s in new for p in s)


@pytest.mark.parametrize(
    ("endpoint", "args", "message"),
    [
        ("/classify", ("[[[1, 2",), "not valid JSON"),
        ("/classify", ("[]",), "no strokes"),
        ("/classify", ('[[["x", 1, 0], [2, 2, 1]]]',), "must be numbers"),
        ("/classify", (json.dumps([[[i % 50, i // 50, i] for i in range(MAX_POINTS + 1)]]),), "at most"),
        ("/classify", (json.dumps(HOUSE), False, "no such class"), "shown must be one of"),
        ("/classify", (json.dumps(HOUSE), True, "", True), "either pen_down"),
        ("/generate", ("not a category", 0.4, 1), "unknown category"),
        ("/generate", ("cat", 99, 1), "temperature"),
        ("/generate", ("cat", 0.4, 1, 9), "guidance"),
        ("/complete", ("[]", 0.4, 1), "nothing to finish"),
        ("/complete", ("[[[5, 5, 0]]]", 0.4, 1), "single point"),
    ],
)
def test_bad_requests_get_a_clear_error_and_the_app_keeps_serving(client, endpoint, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=endpoint)
    assert client.predict(api_name="/health")["models"]["classifier"]
