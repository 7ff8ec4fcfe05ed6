"""The page in a real browser: Playwright driving Debian's Chromium (headless) against app.py on 127.0.0.1.

Skipped when Chromium is missing, except in CI (CI=true), where that is a failure: CI installs it (`make browser`).
Waits are for page states (the server's answer number in #guesses, the animation's end), never fixed sleeps.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from _app_server import running_app
from _tiny_models import models_for_tests

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

WAIT_MS = 30_000  # upper bound for any page state; a healthy app gets there in well under a second


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Chromium not found at {CHROMIUM}; run `make browser`")
        pytest.skip("Chromium not installed (`make browser`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    folder = tmp_path_factory.mktemp("app")
    models = models_for_tests(folder / "models")  # the shipped models; tiny stand-ins before training
    with running_app(folder / "app.log", "--models", str(models)) as url, sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        b.app_url = url
        b.app_log = folder / "app.log"
        yield b
        b.close()


def open_page(browser, **context):
    """A new page of the app, ready to draw on; `context`: Playwright's new_page options (viewport, color_scheme,
    has_touch, ...). Console errors are collected in `page.console_errors`."""
    page = browser.new_page(**{"viewport": {"width": 1280, "height": 1100}, **context})
    page.set_default_timeout(WAIT_MS)
    errors = page.console_errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(browser.app_url)
    page.wait_for_selector("#sketchpad canvas")
    page.wait_for_function("window.sketchlab && window.sketchlab.strokes")
    return page


@pytest.fixture
def page(browser):
    page = open_page(browser)
    yield page
    page.close()
    assert page.console_errors == [], f"console errors: {page.console_errors}"


def _box(page):
    page.locator("#sketchpad canvas").scroll_into_view_if_needed()
    return page.locator("#sketchpad canvas").bounding_box()


def _stroke(page, points, hold=None):
    """Draw one stroke with the mouse through `points` (canvas CSS pixels); `hold(page)` runs before pen-up."""
    box = _box(page)
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    if hold:
        hold(page)
    page.mouse.up()


def _seq(page) -> int:
    """The request number whose answer covers the drawing as it is now."""
    return page.evaluate("window.sketchlab.target()")


def _answered(page, seq):
    page.wait_for_function(f"Number(document.querySelector('#guesses .guesses')?.dataset.seq) >= {seq}")


def _bars(page) -> str:
    return page.inner_text("#guesses")


def _ink(page, selector) -> int:
    """Non-white pixels of a canvas (a cheap fingerprint of what is drawn)."""
    return page.evaluate(
        """(sel) => { const c = document.querySelector(sel); const d = c.getContext('2d')
              .getImageData(0, 0, c.width, c.height).data; let n = 0;
              for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++; return n; }""",
        selector,
    )


ROOF = [(60, 200), (200, 60), (340, 200)]
WALLS = [(80, 200), (80, 380), (320, 380), (320, 200)]
DOOR = [(180, 380), (180, 300), (230, 300), (230, 380)]


def test_drawing_shows_guesses_that_change_with_each_stroke(page):
    assert "Draw something" in _bars(page)
    _stroke(page, ROOF)
    _answered(page, _seq(page))
    first = page.inner_html("#guesses .bars")  # words and bar widths (0.1% steps)
    assert page.locator("#guesses .guess").count() == 5
    _stroke(page, WALLS)
    _stroke(page, DOOR)
    _answered(page, _seq(page))
    assert page.locator("#guesses .guess").count() == 5
    assert page.inner_html("#guesses .bars") != first
    page.get_by_text("What each model saw").click()
    page.wait_for_selector("#model-details img.raster", state="visible")
    assert page.locator("#model-details .guess").count() == 10


def test_guesses_update_while_the_pen_is_down(page):
    def hold(p):  # the live request goes out on a timer while the pen stays down, marked as such
        p.wait_for_function("window.sketchlab.seq() >= 1")
        _answered(p, 1)
        assert p.evaluate("window.sketchlab.penDownSent()") is True

    _stroke(page, [(50 + 10 * i, 100 + (i % 5) * 30) for i in range(25)], hold=hold)
    assert page.evaluate("window.sketchlab.strokes().length") == 1
    _answered(page, _seq(page))
    assert page.evaluate("window.sketchlab.penDownSent()") is False  # the stroke's end: the pen is up


@pytest.mark.parametrize("kind", ["pen", "touch"])
def test_pen_and_touch_pointers_draw_too(page, kind):
    box = _box(page)
    page.evaluate(
        """([kind, x, y]) => {
          const c = document.querySelector('#sketchpad canvas');
          const at = (type, dx, dy) => c.dispatchEvent(new PointerEvent(type, {pointerType: kind, pointerId: 7,
            isPrimary: true, bubbles: true, clientX: x + dx, clientY: y + dy, pressure: 0.5}));
          at('pointerdown', 40, 40);
          for (let i = 1; i <= 20; i++) at('pointermove', 40 + 10 * i, 40 + 6 * i);
          at('pointerup', 240, 160);
        }""",
        [kind, box["x"], box["y"]],
    )
    assert page.evaluate("window.sketchlab.strokes().length") == 1
    assert len(page.evaluate("window.sketchlab.strokes()[0]")) >= 20
    _answered(page, _seq(page))
    assert page.locator("#guesses .guess").count() == 5


def test_requests_say_which_guess_the_page_shows(page):
    _stroke(page, ROOF)
    _answered(page, _seq(page))
    top = page.inner_text("#guesses .top-word")
    page.click("#sketchpad .sk-undo")  # a finished change goes at once, saying what is on show
    assert page.evaluate("window.sketchlab.shownSent()") == top  # the server keeps it unless clearly beaten
    _answered(page, _seq(page))
    _stroke(page, ROOF)
    _answered(page, _seq(page))
    page.click("#sketchpad .sk-clear")  # the guesses still on show are about the cleared drawing
    assert page.evaluate("window.sketchlab.shownSent()") is None


def test_the_page_asks_once_more_when_the_pen_rests(page):
    _stroke(page, ROOF)
    after_stroke = page.evaluate("window.sketchlab.seq()")
    assert page.evaluate("window.sketchlab.settledSent()") is False
    page.wait_for_function(f"window.sketchlab.seq() > {after_stroke}")  # SETTLE_MS later, with nothing drawn
    assert page.evaluate("window.sketchlab.settledSent()") is True
    assert page.evaluate("window.sketchlab.seq()") == after_stroke + 1  # once
    _answered(page, after_stroke + 1)
    assert page.locator("#guesses .guess").count() == 5
    _stroke(page, WALLS)  # a new stroke: an ordinary request again
    assert page.evaluate("window.sketchlab.settledSent()") is False


def test_undo_and_clear(page):
    _stroke(page, ROOF)
    _stroke(page, WALLS)
    assert page.evaluate("window.sketchlab.strokes().length") == 2
    page.keyboard.press("Control+z")
    assert page.evaluate("window.sketchlab.strokes().length") == 1
    page.click("#sketchpad .sk-undo")
    assert page.evaluate("window.sketchlab.strokes().length") == 0
    _stroke(page, ROOF)
    assert _ink(page, "#sketchpad canvas") > 0
    page.click("#sketchpad .sk-clear")
    assert page.evaluate("window.sketchlab.strokes().length") == 0
    assert _ink(page, "#sketchpad canvas") == 0
    _answered(page, _seq(page))
    assert "Draw something" in _bars(page)


def test_generation_draws_over_time(page):
    page.fill("#speed input[type=number]", "0.5")  # half pace: the two samples are far apart
    page.press("#speed input[type=number]", "Enter")
    page.click("#draw-it")
    page.wait_for_selector("#generated canvas.gen-main")
    page.wait_for_function("document.querySelector('#generated [data-state]')?.dataset.state === 'drawing'")
    early = _ink(page, "#generated canvas.gen-main")
    page.wait_for_function("document.querySelector('#generated [data-state]').dataset.state === 'done'")
    late = _ink(page, "#generated canvas.gen-main")
    assert late > early  # sampled at two moments, the drawing grew
    assert page.locator("#generated canvas").count() >= 2  # variations side by side


def test_finish_my_drawing_adds_strokes_in_another_colour(page):
    _stroke(page, [(200 + 80 * math.cos(a / 5), 200 + 80 * math.sin(a / 5)) for a in range(32)])
    page.click("#sketchpad .sk-finish")
    page.wait_for_function(
        "/Finished|nothing to add/.test(document.querySelector('#sketchpad .sk-status').textContent)"
    )
    page.wait_for_function("!document.querySelector('#sketchpad canvas').dataset.animating")
    assert page.evaluate("window.sketchlab.strokes().length") > 1
    blue = page.evaluate(
        """() => { const c = document.querySelector('#sketchpad canvas'); const d = c.getContext('2d')
              .getImageData(0, 0, c.width, c.height).data; let n = 0;
              for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 150 && d[i] < 100) n++; return n; }"""
    )
    assert blue > 0


def test_export_png_and_ndjson_then_load_replays_the_drawing(page):
    _stroke(page, ROOF)
    _stroke(page, WALLS)
    with page.expect_download() as png:
        page.click("#sketchpad .sk-png")
    assert open(png.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as nd:
        page.click("#sketchpad .sk-ndjson")
    record = json.loads(open(nd.value.path()).read().splitlines()[0])
    assert len(record["drawing"]) == 2 and all(len(s) == 3 for s in record["drawing"])  # [[x...], [y...], [t...]]
    assert record["drawing"][1][2][0] >= record["drawing"][0][2][-1]  # times run on across strokes

    page.click("#sketchpad .sk-clear")
    page.set_input_files(
        "#sketchpad input[type=file]",
        files=[{"name": "house.ndjson", "mimeType": "application/x-ndjson", "buffer": json.dumps(record).encode()}],
    )
    page.wait_for_function(
        "window.sketchlab.strokes().length === 2 && !document.querySelector('#sketchpad canvas').dataset.animating"
    )
    _answered(page, _seq(page))
    assert page.locator("#guesses .guess").count() == 5
    assert _ink(page, "#sketchpad canvas") > 0


def test_a_file_that_is_not_a_drawing_leaves_the_canvas_alone(page):
    _stroke(page, ROOF)
    page.set_input_files(
        "#sketchpad input[type=file]", files=[{"name": "x.ndjson", "mimeType": "text/plain", "buffer": b"{oops"}]
    )
    page.wait_for_function("/not a drawing/.test(document.querySelector('#sketchpad .sk-status').textContent)")
    assert page.evaluate("window.sketchlab.strokes().length") == 1


def test_a_reload_while_the_pen_is_down_keeps_the_stroke_drawn_so_far(page):
    """Gradio reloads the page when it reaches the server again after losing it, whenever that is."""

    def reload(p):
        p.reload()
        p.wait_for_function("window.sketchlab && window.sketchlab.strokes")

    _stroke(page, ROOF)
    _stroke(page, WALLS, hold=reload)  # the pen comes up on the new page
    strokes = page.evaluate("window.sketchlab.strokes()")
    assert len(strokes) == 2 and len(strokes[1]) >= len(WALLS)
    _answered(page, _seq(page))  # the restored drawing is guessed, and the next stroke goes on from it
    _stroke(page, DOOR)
    assert page.evaluate("window.sketchlab.strokes().length") == 3


def test_a_failed_request_keeps_the_drawing_and_the_next_stroke_is_guessed(page):
    page.route("**/gradio_api/run/predict", lambda route: route.abort())  # the server is unreachable
    _stroke(page, ROOF)
    _stroke(page, WALLS)
    # From the first failed request on, Gradio reloads the page whenever its poll (every 2 s) reaches the server,
    # even mid-stroke: so wait for the page rather than read it at one moment, which may be mid-reload
    page.wait_for_function(
        "window.sketchlab?.strokes && window.sketchlab.strokes().length === 2"
        " && document.querySelector('#guesses')?.innerText.includes('Draw something')"  # no answer came
    )
    page.unroute("**/gradio_api/run/predict")
    # Gradio reloads the page once it reaches the server again; the drawing survives that and gets its guesses
    page.wait_for_selector("#guesses .guess")
    assert page.evaluate("window.sketchlab.strokes().length") == 2
    page.console_errors.clear()  # the aborted request was logged by the browser: expected here
    _stroke(page, DOOR)
    _answered(page, _seq(page))
    assert page.evaluate("window.sketchlab.strokes().length") == 3
    assert page.console_errors == []
