"""What a new user meets in the page, in a real browser: the phone layout, dark mode, guesses that follow the canvas,
errors in plain words, the keyboard, screen readers, the bars' order, redo, the export, a one-tap dot.

Same set-up as test_browser.py (its fixtures: one app per module, Debian's Chromium, skipped without it outside CI).
Waits are for page states, never fixed sleeps.
"""

from __future__ import annotations

import json

import pytest
import test_browser
from test_browser import DOOR, ROOF, WALLS, _answered, _seq, _stroke, open_page

pytestmark = pytest.mark.browser
browser = test_browser.browser  # the fixtures: one app for this module, a fresh desktop page per test
page = test_browser.page

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
AA_TEXT = 4.5  # WCAG 2.1 AA contrast for normal text
AA_GRAPHICS = 3.0  # WCAG 2.1 AA contrast for parts of graphics (a bar against its track)
IDLE = "!document.querySelector('#sketchpad canvas').dataset.animating"
STATUS = "document.querySelector('#sketchpad .sk-status').textContent"


def _record(word: str = "house", strokes: int = 4, points: int = 40, step_ms: int = 40) -> dict:
    """A Quick, Draw! raw record whose replay lasts about strokes * points * step_ms (zig-zags across the frame)."""
    drawing, t = [], 0
    for k in range(strokes):
        xs = [10 + (230 * i) // points for i in range(points)]
        ys = [20 + 50 * k + (30 if i % 2 else 0) for i in range(points)]
        ts = [t + step_ms * i for i in range(points)]
        t = ts[-1] + 200
        drawing.append([xs, ys, ts])
    return {"word": word, "drawing": drawing}


def _load(page, text: str) -> int:
    """Load `text` as a file would be, returning how many bars are on show right after (the same task)."""
    return page.evaluate(
        "(text) => { window.sketchlab.load(text); return document.querySelectorAll('#guesses .guess').length; }",
        text,
    )


def _in_view(page, selector: str) -> bool:
    return page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
              return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }""",
        selector,
    )


# The WCAG contrast of each visible text of `selectors` against the first opaque background behind it
CONTRASTS = """(selectors) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92
    : ((v + 0.055) / 1.055) ** 2.4; }).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const sel of selectors) for (const el of document.querySelectorAll(sel)) {
    if (!el.textContent.trim() || !el.getClientRects().length) continue;
    out.push([sel, el.textContent.trim().slice(0, 30), ratio(rgb(getComputedStyle(el).color), background(el))]);
  }
  return out;
}"""
TEXTS = [
    "#guesses .lead",
    "#guesses .word",
    "#guesses .pct",
    "#guesses .hint",
    "#sketchpad .sk-status",
    "#sketchpad .sk-toolbar button",
    "#draw-it",
    "#generated .gen-caption",
    "#status-line p",
    "#finish-as .info-text",
    "#category .info-text",
    "#seed .info-text",
    "#seed [data-testid=block-info]",
]


def test_phone_shows_the_headline_and_top_bars_with_the_canvas_in_view(browser):
    page = open_page(browser, **PHONE)
    try:
        _load(page, json.dumps(_record(step_ms=5)))
        page.wait_for_function(IDLE)
        _answered(page, _seq(page))
        width = page.evaluate("document.querySelector('#sketchpad canvas').getBoundingClientRect().width")
        assert width >= 0.9 * 390  # as wide as the screen allows
        for at in ("the page's top", "the canvas at the bottom of the screen"):
            if at != "the page's top":
                page.evaluate("document.querySelector('#sketchpad canvas').scrollIntoView({block: 'end'})")
            assert _in_view(page, "#sketchpad canvas"), at
            assert _in_view(page, "#guesses .lead"), at
            assert _in_view(page, "#guesses .guess:first-child"), at
        # scrolled on, half the canvas above the screen (on the way to the tools below it): the strip stays on top
        page.evaluate(
            """(() => { const r = document.querySelector('#sketchpad canvas').getBoundingClientRect();
                      window.scrollBy(0, r.top + r.height / 2); })()"""
        )
        page.wait_for_function("document.querySelector('#sketchpad canvas').getBoundingClientRect().top < 0")
        assert _in_view(page, "#guesses .lead")
        assert _in_view(page, "#guesses .guess:first-child")
        # the category box shows its whole label ("cat · recognised 89%"), none of it under the arrow
        box = page.evaluate(
            "(() => { const i = document.querySelector('#category input'); return [i.scrollWidth, i.clientWidth]; })()"
        )
        assert box[0] <= box[1] + 1
    finally:
        page.close()
    assert page.console_errors == []


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_every_text_and_bar_is_readable(browser, scheme):
    page = open_page(browser, color_scheme=scheme, **DESKTOP)
    try:
        if scheme == "dark":
            assert page.evaluate("document.body.classList.contains('dark')")  # Gradio follows the system
        empty = page.evaluate(CONTRASTS, ["#guesses .hint"])
        assert empty and all(r >= AA_TEXT for *_, r in empty), empty
        page.click("#sketchpad .sk-finish")  # a status line, on an empty canvas
        _stroke(page, ROOF)
        _stroke(page, WALLS)
        _answered(page, _seq(page))
        page.evaluate("document.querySelector('#sketchpad .sk-status').textContent = 'a status line'")
        found = page.evaluate(CONTRASTS, TEXTS)
        assert {sel for sel, *_ in found} >= set(TEXTS) - {"#guesses .hint"}, found
        low = [f for f in found if f[2] < AA_TEXT]
        assert low == [], low
        bars = page.evaluate(
            """() => [...document.querySelectorAll('#guesses .bar')].map((b) =>
                 [getComputedStyle(b).backgroundColor, getComputedStyle(b.firstChild).backgroundColor])"""
        )
        for track, fill in bars:
            assert _contrast(track, fill) >= AA_GRAPHICS
        if scheme == "dark":  # the bar tracks are dark too, not bright stripes
            assert all(_luminance(track) < 0.1 for track, _ in bars)
        sliders = page.evaluate(
            """() => [...document.querySelectorAll('input[type=range]')].map((r) => {
                 const probe = document.createElement('span');
                 probe.style.color = getComputedStyle(r).getPropertyValue('--neutral-200');
                 r.parentNode.appendChild(probe);
                 const c = getComputedStyle(probe).color; probe.remove(); return c; })"""
        )
        assert sliders, "the page has sliders"
        assert all((_luminance(t) < 0.1) == (scheme == "dark") for t in sliders), sliders  # the empty slider track
    finally:
        page.close()
    assert page.console_errors == []


def _luminance(css: str) -> float:
    rgb = [float(v) / 255 for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_guesses_reset_on_load_and_follow_the_replay(page):
    _stroke(page, ROOF)
    _stroke(page, WALLS)
    _answered(page, _seq(page))
    assert page.locator("#guesses .guess").count() == 5
    assert _load(page, json.dumps(_record(step_ms=60))) == 0  # at once: no guesses about the drawing that is gone
    assert "Draw something" in page.inner_text("#guesses")
    # while the drawing replays (about 10 s), guesses about what is drawn so far come
    page.wait_for_function(
        "document.querySelector('#sketchpad canvas').dataset.animating === '1'"
        " && document.querySelectorAll('#guesses .guess').length === 5"
    )
    page.wait_for_function(IDLE)
    _answered(page, _seq(page))
    assert page.locator("#guesses .guess").count() == 5
    assert (
        page.evaluate(  # clearing takes the guesses away at once too
            "() => { document.querySelector('#sketchpad .sk-clear').click();"
            " return document.querySelectorAll('#guesses .guess').length; }"
        )
        == 0
    )
    _answered(page, _seq(page))
    assert "Draw something" in page.inner_text("#guesses")


def test_old_status_lines_go_away_once_drawing_starts(page):
    page.click("#sketchpad .sk-finish")
    assert "Draw something first" in page.evaluate(STATUS)
    _stroke(page, ROOF)
    assert page.evaluate(STATUS) == ""


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
BAD_FILES = {
    "not json": b"{oops",
    "html": b"<html><body>hello</body></html>",
    "png": PNG,
    "text coordinates": json.dumps({"word": "cat", "drawing": [[["a", "b"], ["c", "d"], [0, 1]]]}).encode(),
    "no drawing": json.dumps({"word": "cat"}).encode(),
    "too many strokes": json.dumps({"word": "x", "drawing": [[[0, 1], [0, 1]]] * 1001}).encode(),
}
MACHINE_WORDS = ("JSON", "token", "Unexpected", "NoneType", "holds", "Error", "undefined", "position")


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_file_gets_a_message_in_plain_words(page, name):
    _stroke(page, ROOF)
    page.set_input_files(
        "#sketchpad input[type=file]", files=[{"name": "x.ndjson", "mimeType": "text/plain", "buffer": BAD_FILES[name]}]
    )
    page.wait_for_function(f"{STATUS}.length > 0")
    message = page.evaluate(STATUS)
    assert not [w for w in MACHINE_WORDS if w in message], message
    assert "Load" in message or "at most" in message  # says what to do, or the limit
    assert page.evaluate("window.sketchlab.strokes().length") == 1  # the drawing stays
    _answered(page, _seq(page))
    assert page.locator("#guesses .problem").count() == 0


def test_tab_reaches_every_control(page):
    wanted = {
        "undo": ".sk-undo",
        "redo": ".sk-redo",
        "clear": ".sk-clear",
        "finish": ".sk-finish",
        "png": ".sk-png",
        "ndjson": ".sk-ndjson",
        "load": ".sk-load",
        "finish-as": "#finish-as input",
        "details": "#details-box button",
        "category": "#category input",
        "temperature": "#temperature input",
        "seed": "#seed input",
        "guidance": "#guidance input",
        "speed": "#speed input",
        "draw": "#draw-it",
    }
    page.locator("body").focus()
    reached = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached |= set(
            page.evaluate(
                """(wanted) => Object.entries(wanted).filter(([, sel]) =>
                     [...document.querySelectorAll(sel)].includes(document.activeElement)).map(([k]) => k)""",
                wanted,
            )
        )
        if reached == set(wanted):
            break
    assert set(wanted) - reached == set()
    page.keyboard.press("Escape")


def test_screen_readers_hear_the_headline_once_not_every_answer(page):
    said = "#guesses-said"
    assert page.get_attribute(said, "aria-live") == "polite"
    assert page.get_attribute("#guesses", "aria-live") is None  # the bars are not read out at every answer
    assert page.text_content(said).startswith("Draw something")
    _stroke(page, ROOF)
    _answered(page, _seq(page))
    lead = page.text_content("#guesses .lead").strip()
    assert page.text_content(said) == lead
    page.evaluate(
        """() => { window.__said = 0;
                   new MutationObserver(() => window.__said++).observe(
                     document.querySelector('#guesses-said'), {childList: true, characterData: true, subtree: true}); }"""
    )
    page.evaluate("() => { const g = document.querySelector('#guesses .guesses'); g.replaceWith(g.cloneNode(true)); }")
    page.wait_for_timeout(100)
    assert page.evaluate("window.__said") == 0  # the same headline again: nothing new to announce
    assert page.get_attribute("#sketchpad .sk-status", "aria-live") == "polite"


BAR_WIDTHS = "[...document.querySelectorAll('#guesses .fill')].map((f) => parseFloat(f.style.width))"


def test_bars_are_in_the_order_of_their_probabilities(page):
    for stroke in (ROOF, WALLS, DOOR):
        _stroke(page, stroke)
        _answered(page, _seq(page))
        widths = page.evaluate(BAR_WIDTHS)
        assert len(widths) == 5 and widths == sorted(widths, reverse=True)
        assert page.locator("#guesses .guess[data-headline]").count() == 1  # the headline's guess is marked


def test_redo_beside_undo(page):
    _stroke(page, ROOF)
    _stroke(page, WALLS)
    count = "window.sketchlab.strokes().length"
    for redo in ("button", "Control+Shift+z", "Control+y"):
        page.keyboard.press("Control+z")
        assert page.evaluate(count) == 1
        page.click("#sketchpad .sk-redo") if redo == "button" else page.keyboard.press(redo)
        assert page.evaluate(count) == 2
    page.keyboard.press("Control+z")
    _stroke(page, DOOR)  # a new stroke: nothing left to redo
    page.click("#sketchpad .sk-redo")
    assert page.evaluate(count) == 2


def test_exported_word_is_the_top_guess_or_the_chosen_word(page):
    _stroke(page, ROOF)
    _stroke(page, WALLS)
    _answered(page, _seq(page))
    top = page.inner_text("#guesses .top-word")
    sure = page.get_attribute("#guesses .guesses", "data-sure") == "true"
    record = page.evaluate("window.sketchlab.record()")
    assert record["word"] == top and record["recognized"] is sure
    page.click("#finish-as input")  # say what it is: the first category (after "the drawing decides", "my top guess")
    option = page.get_by_role("option").nth(2)
    word = option.inner_text().split(" · ")[0].strip()  # a label may carry the category's measured quality
    option.click()
    record = page.evaluate("window.sketchlab.record()")
    assert record["word"] == word
    assert record["recognized"] is (sure and top == word)


def test_a_one_tap_dot_is_a_drawing_in_progress(page):
    _stroke(page, [(200, 200)])  # pen down and up at one spot
    assert page.evaluate("window.sketchlab.strokes().length") == 1
    _answered(page, _seq(page))
    text = page.inner_text("#guesses")
    assert "Keep drawing" in text and page.locator("#guesses .problem").count() == 0
    page.click("#sketchpad .sk-finish")
    assert "Keep drawing" in page.evaluate(STATUS)
    _stroke(page, ROOF)  # and the next stroke is guessed as usual
    _answered(page, _seq(page))
    assert page.locator("#guesses .guess").count() == 5


def test_out_of_range_seed_is_kept_in_range_without_an_error(browser, page):
    page.fill("#seed input", "-5")
    page.click("#draw-it")
    page.wait_for_function("document.querySelector('#generated [data-state]')?.dataset.state === 'done'")
    assert page.input_value("#seed input") == "0"
    assert page.locator(".toast-body").count() == 0
    assert "Traceback" not in browser.app_log.read_text()


def test_plain_words_for_the_controls(page):
    for control in ("#temperature", "#seed", "#guidance"):
        assert page.locator(f"{control} .info-text").inner_text().strip()  # one line saying what it does
    assert "strokes" in page.inner_text("#sketchpad .sk-ndjson").lower()
    # the runtime line is a small footer, below the controls, not the line under the title
    footer, button = (page.locator(s).bounding_box() for s in ("#status-line", "#draw-it"))
    assert footer["y"] > button["y"]
