"""sketchlab.page: the HTML of the guesses and model details, and the order of the page's live requests."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from sketchlab.page import (
    KEEP_DRAWING,
    NewestOnly,
    clamp,
    details_html,
    drawing_problem,
    guesses_html,
    only_dots,
    page_seq,
    raster_data_uri,
)

RESULT = {
    "fused": [
        {"word": w, "prob": p} for w, p in (("dog", 0.6), ("house", 0.2), ("tree", 0.1), ("sun", 0.05), ("car", 0.01))
    ],
    "stroke": [{"word": "cat", "prob": 0.5}] * 5,
    "cnn": [{"word": "<img>", "prob": 0.5}] * 5,
    "raster": np.eye(28, dtype=np.uint8) * 255,
}


def test_page_seq_accepts_only_plain_numbers():
    assert page_seq(7) == 7 and page_seq(7.9) == 7
    for bad in (None, "7", True, float("nan"), float("inf"), -3, [1]):
        assert page_seq(bad) == 0


def test_newest_only_drops_answers_overtaken_in_the_same_session():
    newest = NewestOnly(capacity=2)
    newest.start("a", 5)
    assert not newest.overtaken("a", 5)
    newest.start("a", 6)  # a pen-up sent while 5 was computing
    assert newest.overtaken("a", 5) and not newest.overtaken("a", 6)
    newest.start("a", 4)  # a late request never lowers the mark
    assert newest.overtaken("a", 4) and not newest.overtaken("b", 5)  # sessions are separate
    newest.start("b", 1)
    newest.start("c", 1)  # over capacity: the least recently seen session ("a") is forgotten
    assert not newest.overtaken("a", 5)


def test_guesses_html_empty_state_result_and_message():
    assert "Draw something" in guesses_html(None) and 'data-seq="0"' in guesses_html(None)
    page = guesses_html(RESULT, seq=7)
    assert 'data-seq="7"' in page and page.count('class="guess"') == 5 and "dog" in page
    assert "I think it is" in page  # dog at 60%
    unsure = guesses_html({**RESULT, "fused": [{"word": "dog", "prob": 0.3}, *RESULT["fused"][1:]]})
    assert "Not sure yet. Maybe <b" in unsure and "I think" not in unsure
    assert "&lt;b&gt;" in guesses_html(None, 1, message="<b>broken</b>")
    assert 'data-seq="0"' in guesses_html(None, float("nan"))


def test_details_html_shows_each_model_and_the_raster():
    page = details_html(RESULT)
    assert "Stroke model" in page and "CNN" in page and "data:image/png;base64," in page
    assert "&lt;img&gt;" in page and "<img>" not in page  # class names are escaped
    assert "not loaded" in details_html({"fused": [], "stroke": None, "cnn": [], "raster": None})


def test_raster_data_uri_is_a_pixelated_png_of_the_raster():
    raster = np.zeros((28, 28), np.uint8)
    raster[3, 5] = 255
    uri = raster_data_uri(raster)
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert img.shape == (168, 168)
    assert img[3 * 6 + 2, 5 * 6 + 2] == 0 and img[0, 0] == 255  # ink dark on white


def test_bars_follow_the_probabilities_while_the_headline_keeps_the_held_guess():
    held = [{"word": "cat", "prob": 0.16}, {"word": "dog", "prob": 0.21}, {"word": "sun", "prob": 0.05}]
    page = guesses_html({**RESULT, "fused": held})
    assert 'Maybe <b class="top-word">cat</b>?' in page and 'data-sure="false"' in page
    assert page.index(">dog<") < page.index(">cat<", page.index("<ol")) < page.index(">sun<")
    assert page.count("data-headline") == 1 and '<li class="guess" data-headline><span class="word">cat' in page
    assert 'data-sure="true"' in guesses_html(RESULT)


def test_a_dot_is_a_drawing_in_progress_and_problems_say_what_to_do():
    assert only_dots([[[5, 5, 0]]]) and only_dots([[[5, 5, 0], [5, 5, 40]], [[5, 5, 90]]])
    assert only_dots([[[5, 5, 0], [5.0004, 5, 9]]])  # within MIN_EXTENT: the preprocessing calls it a dot too
    for not_dots in (
        [[[5, 5, 0], [6, 5, 9]]],
        [],
        "[[[5, 5, 0]]]",
        [[["a", "b"]]],
        None,
        [[[float("nan"), 1]]],
        [[[True, 1, 0]]],
    ):
        assert not only_dots(not_dots)
    assert "Keep drawing" in guesses_html(None, 3, note=KEEP_DRAWING) and "problem" not in guesses_html(None, note="x")
    assert "Undo" in drawing_problem("the drawing has 1001 strokes; at most 1000 are allowed")
    assert "NoneType" not in drawing_problem("point 0 of stroke 0 holds NoneType None")


def test_clamp_keeps_controls_in_range():
    assert clamp(-5, 0, 10, 3) == 0 and clamp(50, 0, 10, 3) == 10 and clamp(4.5, 0, 10, 3) == 4.5
    for bad in (None, "7", True, float("nan"), float("inf")):
        assert clamp(bad, 0, 10, 3) == 3
