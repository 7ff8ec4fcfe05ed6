"""Fuzzing every entry point that takes a user's drawing or request (issue 6, item 2).

Random and adversarial payloads (hypothesis strategies, plus the generator of `scripts/fuzz.py`) go to
`prepare.from_canvas` and the service's `parse_strokes`, `classify`, `generate` and `complete`, with the shipped
models when they are in models/ and tiny stand-ins otherwise. The contract: a call returns normally or raises
`DrawingError` / `ModelError`, nothing else; well-formed drawings are always classified; the process stays healthy
(the same answer for a canary drawing before and after, bounded memory). The long run (`python -m scripts.fuzz
--cases 100000`) is recorded in docs/reliability.md; this file keeps CI to about a minute.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
from _tiny_models import models_for_tests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.fuzz import CANARY, NUMBERS, STRINGS, real_drawings, rss_mb, run_fuzz
from sketchlab.errors import DrawingError, ModelError
from sketchlab.prepare import from_canvas
from sketchlab.service import MAX_PAYLOAD_CHARS, MAX_SEED, Service, parse_strokes
from sketchlab.strokes import MAX_ABS_COORD, MAX_POINTS, MAX_STROKES

DOCUMENTED = (DrawingError, ModelError)
FUZZ = settings(
    max_examples=250,
    deadline=None,  # a 20,000-point drawing may take a second on a busy 2-core machine; the long run reports times
    derandomize=True,  # CI runs the same cases every time; scripts/fuzz.py explores new ones
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RSS_GROWTH_MB = 200  # payload pools (100k-point drawings) and ONNX Runtime arenas grow once; a leak would grow on


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return Service.load(models_for_tests(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module", autouse=True)
def stays_healthy(service):
    """Around the whole module: the canary's answer, the thread count and memory come back as they were."""
    before, threads, rss = service.classify(CANARY)["fused"], threading.active_count(), rss_mb()
    yield
    assert service.classify(CANARY)["fused"] == before
    assert threading.active_count() <= threads
    assert rss_mb() - rss < RSS_GROWTH_MB


# ---------------------------------------------------------------------------------------------------------------
# Strategies

scalars = st.one_of(
    st.sampled_from(NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from(STRINGS),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=40,
)
coordinate = st.floats(min_value=-2000, max_value=2000, allow_nan=False)
good_point = st.tuples(coordinate, coordinate, st.floats(0, 1e6)).map(list)
odd_point = st.one_of(st.lists(scalars, max_size=4), json_values, good_point.map(lambda p: p[:2]))
point = st.one_of(good_point, good_point, odd_point)
drawing = st.lists(st.lists(point, max_size=30), max_size=8)
good_drawing = st.lists(st.lists(good_point, min_size=1, max_size=60), min_size=1, max_size=6)


@st.composite
def as_sent(draw, values=drawing | json_values):
    """A payload as the page events (objects) or the API (JSON text, possibly damaged, or bytes) deliver it."""
    value = draw(values)
    form = draw(st.sampled_from(["object", "json", "damaged", "bytes", "wrapped"]))
    if form == "object":
        return value
    if form == "wrapped":
        return {draw(st.sampled_from(["strokes", "drawing"])): value}
    text = json.dumps(value)
    if form == "damaged" and text:
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(["", "[", "]", ",", '"', "\\", "NaN", "1e999", "\x00", "💥"]))
    return text.encode("utf-8", errors="surrogatepass") if form == "bytes" else text


payloads = st.one_of(as_sent(), st.text(max_size=60), st.binary(max_size=60))


def documented_only(call, *args, **kwargs):
    """Run `call`; a documented error is a fine answer, anything else fails the test (pytest shows it)."""
    try:
        return call(*args, **kwargs)
    except DOCUMENTED:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Properties


@FUZZ
@given(payload=payloads)
def test_from_canvas_raises_only_drawing_error(payload):
    try:
        prepared = from_canvas(payload)
    except DrawingError:
        return
    assert prepared.raster.shape == (28, 28) and np.isfinite(prepared.stroke3).all()


@FUZZ
@given(payload=payloads)
def test_parse_strokes_raises_only_drawing_error(payload):
    try:
        strokes = parse_strokes(payload)
    except DrawingError:
        return
    assert isinstance(strokes, list)
    assert all(math.isfinite(v) and abs(v) <= MAX_ABS_COORD for s in strokes for p in s for v in p)


@FUZZ
@given(payload=payloads)
def test_classify_raises_only_documented_errors(service, payload):
    result = documented_only(service.classify, payload)
    assert result is None or len(result["fused"]) == min(5, len(service.classifier.classes))


@settings(FUZZ, max_examples=100)
@given(strokes=good_drawing)
def test_well_formed_drawings_are_always_classified(service, strokes):
    result = service.classify(json.dumps(strokes))  # dots included: a drawing in progress
    probs = [g["prob"] for g in result["fused"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)


@settings(FUZZ, max_examples=60)
@given(payload=payloads, temperature=scalars | st.floats(0.01, 2.0), seed=scalars | st.integers(0, MAX_SEED))
def test_complete_raises_only_documented_errors(service, payload, temperature, seed):
    done = documented_only(service.complete, payload, temperature, seed)
    assert done is None or all(len(p) == 3 and all(map(math.isfinite, p)) for s in done["strokes"] for p in s)


@settings(FUZZ, max_examples=80)
@given(
    word=json_values | st.sampled_from(["cat", "house", "sun"]),
    temperature=scalars | st.floats(0.01, 2.0),
    seed=scalars,
    n=scalars | st.integers(-2, 8),
)
def test_generate_raises_only_documented_errors(service, word, temperature, seed, n):
    drawings = documented_only(service.generate, word, temperature, seed, n)
    assert drawings is None or all(len(p) == 3 for d in drawings for s in d for p in s)


# ---------------------------------------------------------------------------------------------------------------
# The adversarial corners, named (some were bugs: see the commit history of sketchlab/strokes.py)


def _deep_list(depth: int) -> list:
    value: list = [[1, 2, 3], [4, 5, 6]]
    for _ in range(depth):
        value = [value]
    return value


CORNERS = {
    "400-digit integer": [[[10**400, 1, 0], [2, 2, 1]]],
    "5000-digit integer in JSON": "[[[" + "9" * 5000 + ", 1, 0], [2, 2, 1]]]",
    "0-d array": np.array(5.0),
    "0-d array point": [[np.array(5.0), [1, 2, 3]]],
    "NaN string": [[["NaN", 1, 0], [2, 2, 1]]],
    "NaN in JSON": "[[[NaN, 1, 0], [2, 2, 1]]]",
    "Infinity in JSON": "[[[Infinity, 1, 0], [2, 2, 1]]]",
    "beyond the coordinate limit": [[[MAX_ABS_COORD * 2, 1, 0], [2, 2, 1]]],
    "unicode": [[["猫", "💥", "\u202e"], [2, 2, 1]]],
    "lone surrogate in JSON": '[[["\\ud800", 1, 0], [2, 2, 1]]]',
    "deep list": _deep_list(5_000),
    "deep JSON": "[" * 200_000 + "]" * 200_000,
    "deep dict JSON": '{"strokes":' * 50_000 + "[]" + "}" * 50_000,
    "100k points": [[[i % 500, (i * 7) % 500, i] for i in range(100_000)]],
    "too many strokes": [[[i, 0, i], [i, 5, i]] for i in range(MAX_STROKES + 1)],
    "payload over the limit": " " * MAX_PAYLOAD_CHARS + "[[[1, 2, 3], [4, 5, 6]]]",
    "bytes not utf-8": b"\xff\xfe[[[1, 2, 3], [4, 5, 6]]]",
    "numbers as strings": [[["1", "2", "3"], ["4", "5", "6"]]],
    "object array": np.array([[[1, 2, 3], [4, None, 6]]], dtype=object),
    "complex numbers": np.array([[[1j, 2, 3], [4, 5, 6]]]),
}


@pytest.mark.parametrize("name", list(CORNERS))
def test_adversarial_corners_get_a_drawing_error_everywhere(service, name):
    payload = CORNERS[name]
    for call in (from_canvas, parse_strokes, service.classify, lambda p: service.complete(p, 0.4, 1)):
        with pytest.raises(DrawingError):
            call(payload)


def test_limits_hold_at_the_boundary(service):
    """MAX_POINTS points pass; one more is refused with a message saying the limit."""
    at_limit = [[[i % 500, (i * 7) % 500, i] for i in range(MAX_POINTS)]]
    assert len(service.classify(at_limit)["fused"]) == 5
    with pytest.raises(DrawingError, match=f"at most {MAX_POINTS}"):
        service.classify([at_limit[0] + [[1, 1, MAX_POINTS]]])


# ---------------------------------------------------------------------------------------------------------------
# The long run's generator, briefly


def test_fuzz_run_payloads_raise_only_documented_errors(service):
    report = run_fuzz(service, cases=400, seed=6, drawings=real_drawings(60), log=lambda *_: None)
    assert report["undocumented"] == [] and report["healthy"]
    assert sum(s["cases"] for s in report["per_entry_point"].values()) == 400
    assert all(s["cases"] > 0 for s in report["per_entry_point"].values())


@pytest.mark.slow
def test_page_events_and_api_over_http_answer_every_payload(tmp_path):
    """The app itself: its page events (as the page sends them) and API endpoints get fuzzed payloads over HTTP;
    every answer is data or a message (never an unhandled exception), and /health answers the same after."""
    from _tiny_models import tiny_models

    from scripts.fuzz_http import run_http
    from scripts.load_test import started_app

    with started_app(tiny_models(tmp_path / "models"), tmp_path / "app.log") as (url, _):
        report = run_http(url, cases=150, seed=3, drawings=real_drawings(40), log=lambda *_: None)
    assert report["undocumented"] == [] and report["healthy"]
    assert report["cases"] == 150 and len(report["per_event"]) == 6
