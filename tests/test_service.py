"""sketchlab.service: request checking, answers shaped for the page and the API, and the page fragments.

Most tests use small stand-ins with the `Classifier` / `Generator` interfaces, so they need no model files; the
last ones load the shipped models from models/.
"""

from __future__ import annotations

import json
from collections import namedtuple

import numpy as np
import pytest
from _tiny_models import models_for_tests, shipped_models_present

from sketchlab.errors import DrawingError, ModelError
from sketchlab.prepare import from_canvas
from sketchlab.service import (
    DEFAULT_GUIDANCE,
    MAX_PAYLOAD_CHARS,
    MAX_SEED,
    MAX_VARIATIONS,
    Service,
    check_guidance,
    check_seed,
    check_temperature,
    parse_strokes,
)
from sketchlab.strokes import MAX_POINTS, MAX_STROKES

Guess = namedtuple("Guess", "word prob")
Guesses = namedtuple("Guesses", "fused stroke cnn raster")
WORDS = ["cat", "dog", "house", "tree", "sun", "car", "fish"]
SQUARE = [[[10, 10, 0], [90, 10, 100], [90, 90, 200], [10, 90, 300], [10, 10, 400]]]


class FakeClassifier:
    """Guesses rotate with the number of strokes, so a new stroke changes them."""

    classes = WORDS
    provider = "CPUExecutionProvider"
    problems: list[str] = []

    def __init__(self):
        self.calls = []

    def classify(self, strokes, top_k=5, pen_down=False, shown=None, settled=False):
        if shown is not None and shown not in WORDS:
            raise DrawingError(f"shown must be one of the classes or none, got {shown!r}")
        if pen_down and settled:
            raise DrawingError("a request is either pen_down (a stroke still being drawn) or settled, not both")
        self.calls.append((strokes, pen_down, shown, settled))
        k = len(strokes) % len(WORDS)
        words = (WORDS[k:] + WORDS[:k])[:top_k]
        probs = np.linspace(0.6, 0.02, len(words))
        fused = [Guess(w, float(p)) for w, p in zip(words, probs, strict=True)]
        return Guesses(fused, fused[::-1], fused, from_canvas(strokes).raster)

    def warmup(self):
        pass


class FakeGenerator:
    classes = WORDS[:4]
    provider = "CPUExecutionProvider"
    quality = {"cat": {"n": 100, "top1": 0.75, "top3": 0.9}, "dog": {"top3": 0.5}, "house": {"top1": float("nan")}}

    def __init__(self):
        self.completed_as = self.guidance = None

    def generate(self, word, temperature=0.5, seed=0, max_len=250, guidance=1.0):
        self.guidance = guidance
        rng = np.random.default_rng(seed)
        return [np.column_stack([rng.uniform(0, 255, (6, 2)), np.arange(6) * 16.0]) for _ in range(2)]

    def variations(self, word, n, temperature, seed, guidance=1.0):
        return [self.generate(word, temperature, seed + i, guidance=guidance) for i in range(n)]

    def complete(self, strokes, temperature, seed, word=None, max_len=250, guidance=None):
        self.completed_as, self.guidance = word, guidance
        x, y = strokes[-1][-1][:2]
        return [[[x, y, 0.0], [x + 10.123, y + 5.0, 30.0]]]


@pytest.fixture
def service():
    return Service(FakeClassifier(), FakeGenerator(), [])


# ---------------------------------------------------------------------------------------------------------------
# Request checking


def test_parse_strokes_accepts_json_lists_and_the_event_form():
    assert parse_strokes(json.dumps(SQUARE)) == [[[float(v) for v in p] for p in SQUARE[0]]]
    assert parse_strokes(SQUARE) == parse_strokes({"strokes": SQUARE}) == parse_strokes(json.dumps(SQUARE).encode())
    assert parse_strokes([[[0, 0], [5, 5]]]) == [[[0.0, 0.0, 0.0], [5.0, 5.0, 0.0]]]  # time is optional


@pytest.mark.parametrize("empty", ["[]", "", "   ", [], {"strokes": []}])
def test_parse_strokes_returns_empty_drawings_as_empty(empty):
    assert parse_strokes(empty) == []


@pytest.mark.parametrize(
    "bad",
    [
        "[[[1, 2",  # malformed JSON
        "[" * 100_000,  # nesting beyond the JSON parser's recursion limit
        "[[[NaN, 1, 2], [3, 4, 5]]]",  # JSON allows NaN; drawings do not
        "[[[1e400, 1, 0], [2, 2, 0]]]",  # inf
        "[[[" + "9" * 400 + ", 1, 0], [2, 2, 0]]]",  # an integer too large for a float
        '[[["a", 1, 0], [2, 2, 0]]]',
        "[[[1, 2, 3, 4], [2, 2, 0]]]",
        '{"strokes": 5}',
        "{}",
        "42",
        None,
        [[]],
    ],
)
def test_parse_strokes_refuses_bad_input_with_drawing_error(bad):
    with pytest.raises(DrawingError):
        parse_strokes(bad)


def test_parse_strokes_limits_payload_points_and_strokes():
    with pytest.raises(DrawingError, match="characters"):
        parse_strokes(" " * (MAX_PAYLOAD_CHARS + 1))
    with pytest.raises(DrawingError, match="points"):
        parse_strokes([[[i % 100, i // 100, i] for i in range(MAX_POINTS + 1)]])
    with pytest.raises(DrawingError, match="strokes"):
        parse_strokes([[[i, 0, 0], [i, 1, 1]] for i in range(MAX_STROKES + 1)])


def test_temperature_and_seed_checks():
    assert check_temperature("0.5") == 0.5
    assert check_seed(None) == 0 and check_seed(7.0) == 7 and check_seed(MAX_SEED) == MAX_SEED
    for bad in (0, -1, 3, float("nan"), "hot", None):
        with pytest.raises(DrawingError, match="temperature"):
            check_temperature(bad)
    for bad in (-1, 1.5, MAX_SEED + 1, float("inf"), "x", [1]):
        with pytest.raises(DrawingError, match="seed"):
            check_seed(bad)
    assert check_guidance("0") == 0.0 and check_guidance(2.5) == 2.5
    for bad in (-0.1, 3.5, float("nan"), "strong", None):
        with pytest.raises(DrawingError, match="guidance"):
            check_guidance(bad)


def test_the_services_default_guidance_is_the_generators():
    from sketchlab.generate import DEFAULT_GUIDANCE as GENERATOR_DEFAULT

    assert DEFAULT_GUIDANCE == GENERATOR_DEFAULT


# ---------------------------------------------------------------------------------------------------------------
# The service with stand-in models


def test_classify_returns_top5_of_each_model_and_the_raster(service):
    result = service.classify(json.dumps(SQUARE))
    assert [g["word"] for g in result["fused"]] == WORDS[1:6]
    assert len(result["stroke"]) == len(result["cnn"]) == 5
    assert all(0 <= g["prob"] <= 1 for g in result["fused"])
    assert result["raster"].shape == (28, 28) and result["raster"].dtype == np.uint8 and result["raster"].any()


def test_classify_passes_on_whether_the_pen_is_down(service):
    service.classify(SQUARE, pen_down=True)
    service.classify(SQUARE)
    assert [pen_down for _, pen_down, *_ in service.classifier.calls[-2:]] == [True, False]
    with pytest.raises(DrawingError, match="pen_down must be true or false"):
        service.classify(SQUARE, pen_down="yes")


def test_classify_passes_on_the_guess_the_page_shows(service):
    service.classify(SQUARE, shown=WORDS[2])
    service.classify(SQUARE)
    assert [shown for _, _, shown, _ in service.classifier.calls[-2:]] == [WORDS[2], None]
    with pytest.raises(DrawingError, match="shown must be one of"):
        service.classify(SQUARE, shown="no such class")


def test_classify_passes_on_whether_the_pen_has_rested(service):
    service.classify(SQUARE, settled=True)
    service.classify(SQUARE)
    assert [settled for *_, settled in service.classifier.calls[-2:]] == [True, False]
    with pytest.raises(DrawingError, match="settled must be true or false"):
        service.classify(SQUARE, settled=1)
    with pytest.raises(DrawingError, match="either pen_down"):
        service.classify(SQUARE, pen_down=True, settled=True)


@pytest.mark.parametrize(
    "dots",
    [
        [[[5, 5, 0]]],
        [[[5, 5, 0], [5, 5, 10]]],
        [[[5, 5, 0]], [[60, 40, 300]]],
        [[[5, 5, 0]], [[10, 10, 300], [90, 9, 400]]],
    ],
    ids=["one tap", "a held tap", "two taps", "a dot and a line"],
)
def test_a_dot_is_a_drawing_in_progress_not_bad_input(service, dots):
    assert parse_strokes(json.dumps(dots)) == [[[float(v) for v in p] for p in s] for s in dots]
    assert len(service.classify(json.dumps(dots))["fused"]) == 5


def test_classify_needs_a_drawing_and_a_classifier(service):
    with pytest.raises(DrawingError, match="no strokes"):
        service.classify("[]")
    missing = Service(None, FakeGenerator(), ["classifier: model file models/stroke.onnx is missing"])
    with pytest.raises(ModelError, match="stroke.onnx is missing"):
        missing.classify(SQUARE)


def test_generate_returns_plain_lists_in_drawing_order(service):
    (one,) = service.generate("cat", 0.4, 3)
    assert isinstance(one, list) and isinstance(one[0][0][0], float)
    assert [p[2] for p in one[0]] == sorted(p[2] for p in one[0])
    assert len(service.generate("cat", 0.4, 3, n=MAX_VARIATIONS)) == MAX_VARIATIONS
    assert service.generate("cat", 0.4, 3) == service.generate("cat", 0.4, 3)  # the seed decides
    assert service.generator.guidance == DEFAULT_GUIDANCE
    service.generate("cat", 0.4, 3, n=2, guidance=0)
    assert service.generator.guidance == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"word": "ca"}, "did you mean cat"),
        ({"word": "zebra"}, "unknown category"),
        ({"word": 5}, "unknown category"),
        ({"word": "cat", "temperature": 0}, "temperature"),
        ({"word": "cat", "seed": -2}, "seed"),
        ({"word": "cat", "guidance": -1}, "guidance"),
        ({"word": "cat", "n": MAX_VARIATIONS + 1}, "number of drawings"),
        ({"word": "cat", "n": 0}, "number of drawings"),
    ],
)
def test_generate_refuses_bad_requests(service, kwargs, match):
    with pytest.raises(DrawingError, match=match):
        service.generate(**kwargs)


def test_generate_without_a_generator_names_the_problem():
    service = Service(FakeClassifier(), None, ["generator: model file models/generator.onnx is missing"])
    with pytest.raises(ModelError, match="generator.onnx is missing"):
        service.generate("cat")
    assert service.categories() == []
    assert service.classify(SQUARE)["fused"]  # the classifier still works


def test_complete_returns_only_new_strokes_and_passes_the_word(service):
    done = service.complete(json.dumps(SQUARE), 0.4, 1)
    assert done["word"] is None is service.generator.completed_as  # the generator follows the drawing itself
    assert done["strokes"] == [[[10.0, 10.0, 0.0], [20.1, 15.0, 30.0]]]  # only new strokes, rounded
    assert service.complete(SQUARE, 0.4, 1, word="tree")["word"] == "tree" == service.generator.completed_as
    assert service.generator.guidance == DEFAULT_GUIDANCE  # a named category is guided
    with pytest.raises(DrawingError, match="nothing to finish"):
        service.complete("[]")
    with pytest.raises(DrawingError, match="unknown category"):
        service.complete(SQUARE, word="zebra")


def test_a_model_that_fails_inside_gives_model_error(service):
    def broken(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT")

    service.classifier.classify = broken
    service.generator.generate = service.generator.complete = broken
    for call in (lambda: service.classify(SQUARE), lambda: service.generate("cat"), lambda: service.complete(SQUARE)):
        with pytest.raises(ModelError, match="failed .RuntimeError: .ONNXRuntimeError"):
            call()


def test_health_and_categories(service):
    health = service.health()
    assert health["models"] == {"classifier": True, "generator": True}
    assert health["provider"] == "CPUExecutionProvider" and health["problems"] == [] and health["version"]
    labels = dict((w, label) for label, w in service.categories())
    assert labels["cat"] == "cat · recognised 75%" and labels["dog"] == "dog · top-3 50%"
    assert labels["house"] == "house" and labels["tree"] == "tree"  # no usable figure


def test_load_from_an_empty_folder_keeps_serving_and_says_why(tmp_path):
    service = Service.load(tmp_path)
    assert service.classifier is None and service.generator is None
    assert len(service.problems) >= 2
    assert any(p.startswith("classifier") for p in service.problems)
    assert any(p.startswith("generator") for p in service.problems)
    assert service.health()["models"] == {"classifier": False, "generator": False}
    with pytest.raises(ModelError, match="classifier is not available"):
        service.classify(SQUARE)


# ---------------------------------------------------------------------------------------------------------------
# The shipped models


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped models (tiny stand-ins with the same inputs and manifests on a fresh clone before training)."""
    return Service.load(models_for_tests(tmp_path_factory.mktemp("models")))


def test_shipped_models_load_without_problems(shipped):
    assert shipped.health()["models"] == {"classifier": True, "generator": True}, shipped.problems
    assert shipped.problems == []
    if shipped_models_present():
        assert shipped.health()["classes"] == 345


def test_shipped_models_classify_generate_and_complete(shipped):
    result = shipped.classify(SQUARE)
    for key in ("fused", "stroke", "cnn"):
        probs = [g["prob"] for g in result[key]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    word = shipped.categories()[0][1]
    (drawing,) = shipped.generate(word, 0.4, 1)
    assert drawing and all(len(p) == 3 for s in drawing for p in s)
    new = shipped.complete(SQUARE, 0.4, 1)["strokes"]
    assert isinstance(new, list)


def test_complete_as_the_top_guess(service):
    """TOP_GUESS finishes the drawing as the classifier's best guess that the generator knows."""
    from sketchlab.service import TOP_GUESS

    done = service.complete(SQUARE, 0.4, 1, word=TOP_GUESS)
    fused = service.classify(SQUARE)["fused"]
    expected = next(g["word"] for g in fused if g["word"] in service.generator.classes)
    assert done["word"] == expected == service.generator.completed_as
    assert service.generator.guidance == 0.0  # a guess may be wrong: not guided towards it
    service.classifier = None  # no classifier: the drawing decides
    assert service.complete(SQUARE, 0.4, 1, word=TOP_GUESS)["word"] is None
