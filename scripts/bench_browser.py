"""Latency of the page as a user feels it, in headless Chromium against app.py on 127.0.0.1 (not a test).

    .venv/bin/python -m scripts.bench_browser                 # >= 50 strokes of real drawings, prints p50/p95
    .venv/bin/python -m scripts.bench_browser --drawings 20 --json out.json

Measures:
- app start to serving: from launching `python app.py` to the first 200 answer on `/`;
- first guess after page load: a fresh page, one stroke, pointer-up -> #guesses shows the answer to that stroke;
- pointer-up -> updated guesses over real Quick, Draw! raw drawings (test split) replayed with the mouse at their
  original timing (long pauses between strokes capped), live requests while the pen is down included.
Times are taken inside the page (performance.now() at pointer-up, a MutationObserver on #guesses), so the
Playwright round trips do not count.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from scripts.app_server import running_app
from scripts.chromium import CHROMIUM, CHROMIUM_ARGS
from sketchlab.data import default_data_dir, iter_drawings
from sketchlab.split import Split

WORDS = [
    "cat",
    "house",
    "bicycle",
    "smiley face",
    "snowman",
    "teapot",
    "guitar",
    "eye",
    "camera",
    "airplane",
    "television",
    "cake",
]  # well-covered classes, several strokes each
MAX_GAP_S = 1.5  # pauses between strokes longer than this are cut (the latency does not depend on them)
FIRST_GUESS_PAGES = 5  # fresh page loads for the first-guess figure

# Records pointer-up times and when #guesses shows the answer to that request (the page echoes its number).
PROBE_JS = """() => {
  const canvas = document.querySelector('#sketchpad canvas');
  const probe = window.__probe = {ups: [], done: []};
  canvas.addEventListener('pointerup', () => probe.ups.push({seq: window.sketchlab.target(), t: performance.now()}));
  const seen = () => Number(document.querySelector('#guesses .guesses')?.dataset.seq || 0);
  new MutationObserver(() => {
    const s = seen();
    for (const u of probe.ups) if (u.answered === undefined && s >= u.seq) u.answered = performance.now() - u.t;
  }).observe(document.querySelector('#guesses'), {subtree: true, childList: true, attributes: true});
}"""


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def real_drawings(n: int) -> list:
    root = default_data_dir()
    if root is None:
        raise SystemExit("needs the Quick, Draw! data (../shared/quickdraw or $SKETCHLAB_DATA)")
    per_word = max(1, -(-n // len(WORDS)))
    records = list(iter_drawings(root, kind="raw", words=WORDS, split=Split.TEST, limit_per_word=per_word))
    records = [r for r in records if len(r.drawing) >= 2][:n]
    return records


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(url)
    page.wait_for_function("window.sketchlab && window.sketchlab.strokes")
    page.locator("#sketchpad canvas").scroll_into_view_if_needed()
    page.evaluate(PROBE_JS)
    return page


def wait_answers(page, count: int, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        ups = page.evaluate("window.__probe.ups")
        if sum("answered" in u for u in ups) >= count or time.monotonic() > deadline:
            return ups
        time.sleep(0.05)


def replay(page, drawing, box) -> None:
    """Draw one raw drawing (list of (n, 3) [x, y, t] arrays) with the mouse, at its own pace."""
    xy = np.concatenate([s[:, :2] for s in drawing])
    lo, extent = xy.min(axis=0), max(float((xy.max(axis=0) - xy.min(axis=0)).max()), 1.0)
    scale = (box["width"] - 40) / extent
    t_first = float(drawing[0][0, 2])
    start = time.perf_counter()
    shift = 0.0  # seconds cut from long pauses so far
    prev_end = t_first
    for stroke in drawing:
        gap = (float(stroke[0, 2]) - prev_end) / 1000
        shift += max(0.0, gap - MAX_GAP_S)
        for i, (x, y, t) in enumerate(stroke):
            due = (float(t) - t_first) / 1000 - shift
            wait = due - (time.perf_counter() - start)
            if wait > 0:
                time.sleep(wait)
            page.mouse.move(box["x"] + 20 + (x - lo[0]) * scale, box["y"] + 20 + (y - lo[1]) * scale)
            if i == 0:
                page.mouse.down()
        page.mouse.up()
        prev_end = float(stroke[-1, 2])


# Click "Draw it" and resolve with the ms until the new drawing's first ink shows on its canvas.
FIRST_INK_JS = """() => new Promise((resolve) => {
  const old = document.querySelector('#generated canvas.gen-main');
  const inked = (c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 200) return true; return false; };
  const t = performance.now();
  document.querySelector('#draw-it').click();
  const tick = () => { const c = document.querySelector('#generated canvas.gen-main');
    if (c && c !== old && inked(c)) resolve(performance.now() - t); else requestAnimationFrame(tick); };
  tick();
})"""
GENERATIONS = 5  # "Draw it" clicks timed (a new seed each)


def generation_first_ink(browser, url) -> list[float]:
    page = open_page(browser, url)
    out = []
    for seed in range(GENERATIONS):
        page.fill("#seed input", str(seed + 1))
        page.press("#seed input", "Enter")
        out.append(page.evaluate(FIRST_INK_JS))
        page.wait_for_function("document.querySelector('#generated [data-state]').dataset.state === 'done'")
    page.close()
    return out


def first_guess(browser, url) -> list[float]:
    out = []
    for _ in range(FIRST_GUESS_PAGES):
        page = open_page(browser, url)
        box = page.locator("#sketchpad canvas").bounding_box()
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + 300, box["y"] + 250, steps=5)
        page.mouse.up()
        out.append(wait_answers(page, 1)[0].get("answered", float("nan")))
        page.close()
    return out


def screenshots(browser, url, folder: Path, word: str = "cat") -> None:
    """docs/img/drawing.png (a real drawing with its guesses) and generating.png (a generation in progress)."""
    folder.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, url)
    (record,) = list(iter_drawings(default_data_dir(), kind="raw", words=[word], split=Split.TEST, limit_per_word=1))
    box = page.locator("#sketchpad canvas").bounding_box()
    replay(page, record.drawing, box)
    wait_answers(page, len(record.drawing))
    page.get_by_text("What each model saw").click()
    page.wait_for_selector("#model-details img.raster", state="visible")
    page.screenshot(path=str(folder / "drawing.png"), full_page=False)
    page.locator("#draw-it").scroll_into_view_if_needed()
    page.click("#draw-it")
    page.wait_for_selector("#generated canvas.gen-main")
    time.sleep(1.2)  # mid-drawing
    page.locator("#generated").screenshot(path=str(folder / "generating.png"))
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drawings", type=int, default=15, help="real drawings to replay (>= 50 strokes in all)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--models", type=Path, help="models folder for the app (default: models/)")
    parser.add_argument("--screenshots", type=Path, help="save the README screenshots in this folder and stop")
    parser.add_argument("--verbose", action="store_true", help="print each drawing's latencies")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    log = Path("/tmp/sketchlab_bench_app.log")
    t0 = time.perf_counter()
    app_args = ("--models", str(args.models)) if args.models else ()
    with running_app(log, *app_args) as (url, _), sync_playwright() as p:
        start_s = time.perf_counter() - t0
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if args.screenshots:
            screenshots(browser, url, args.screenshots)
            return
        firsts = first_guess(browser, url)
        inks = generation_first_ink(browser, url)

        page = open_page(browser, url)
        box = page.locator("#sketchpad canvas").bounding_box()
        latencies, strokes = [], 0
        for record in real_drawings(args.drawings):
            page.evaluate("window.sketchlab.clear(); window.__probe.ups = []")
            replay(page, record.drawing, box)
            ups = wait_answers(page, len(record.drawing))
            latencies += [u["answered"] for u in ups if "answered" in u]
            if args.verbose:
                print(record.word, [round(u.get("answered", -1)) for u in ups], flush=True)
            strokes += len(record.drawing)
        page.close()
        browser.close()
    figures = {
        "app_start_to_serving_s": round(start_s, 2),
        "first_guess_ms": [round(v, 1) for v in firsts],
        "first_guess_ms_median": round(percentile(firsts, 50), 1),
        "draw_it_to_first_ink_ms": [round(v, 1) for v in inks],
        "strokes": strokes,
        "answered": len(latencies),
        "pointer_up_to_guesses_ms_p50": round(percentile(latencies, 50), 1),
        "pointer_up_to_guesses_ms_p95": round(percentile(latencies, 95), 1),
        "pointer_up_to_guesses_ms_max": round(max(latencies, default=float("nan")), 1),
    }
    print(f"app start to serving      {figures['app_start_to_serving_s']:.2f} s")
    print(
        f"first guess after load    median {figures['first_guess_ms_median']:.0f} ms over {len(firsts)} pages "
        f"({', '.join(f'{v:.0f}' for v in firsts)})"
    )
    print(f"'Draw it' -> first ink    median {percentile(inks, 50):.0f} ms over {len(inks)} clicks")
    print(
        f"pointer-up -> guesses     p50 {figures['pointer_up_to_guesses_ms_p50']:.1f} ms, "
        f"p95 {figures['pointer_up_to_guesses_ms_p95']:.1f} ms over {len(latencies)} of {strokes} strokes"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
