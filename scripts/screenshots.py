"""Screenshots of the page for the docs: desktop, phone and dark mode, each with a drawing on the canvas and its guesses.

    python -m scripts.screenshots                    # docs/img/desktop.png, phone.png, dark.png
    python -m scripts.screenshots --word house --out /tmp/shots

Starts `app.py` on a free loopback port with the shipped models, replays a held-out drawing (the first of the word's
raw drawings in the test split that the game recognised; a built-in house without the data) in headless Chromium and
saves what the viewport shows once the replay is over and its guesses are shown.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.app_server import ROOT, running_app
from scripts.chromium import CHROMIUM, CHROMIUM_ARGS
from sketchlab.data import default_data_dir
from sketchlab.split import Split, split_of

OUT = ROOT / "docs" / "img"
WAIT_MS = 120_000  # upper bound for any page state; the machine may be busy
MAX_LINES = 5_000  # raw drawings read from the word's file while looking for a held-out one
# A house in Quick, Draw! raw format (x, y, t_ms per stroke), for a checkout without the data
HOUSE = {
    "word": "house",
    "drawing": [
        [[40, 128, 216], [120, 40, 120], [0, 300, 600]],
        [[60, 60, 196, 196], [120, 230, 230, 120], [900, 1200, 1500, 1800]],
        [[110, 110, 146, 146], [230, 170, 170, 230], [2100, 2300, 2500, 2700]],
    ],
}


@dataclass(frozen=True)
class Shot:
    name: str  # docs/img/<name>.png
    width: int  # CSS pixels
    height: int
    dark: bool = False  # prefers-color-scheme: dark
    phone: bool = False  # touch, mobile viewport, 3x pixels as a phone has


SHOTS = (
    Shot("desktop", 1366, 768),
    Shot("phone", 390, 844, phone=True),
    Shot("dark", 1366, 768, dark=True),
)


def held_out_drawing(word: str) -> dict:
    """The first recognised raw drawing of `word` in the test split, as one ndjson record; HOUSE without the data."""
    root = default_data_dir()
    path = root / "full" / "raw" / f"{word}.ndjson" if root else None
    if path is None or not path.exists():
        return HOUSE
    with open(path) as f:
        for _, line in zip(range(MAX_LINES), f, strict=False):
            rec = json.loads(line)
            if rec.get("recognized") and split_of(rec.get("key_id"), rec.get("drawing")) == Split.TEST:
                return {"word": rec["word"], "drawing": rec["drawing"]}
    return HOUSE


def take(browser, url: str, shot: Shot, record: dict, out: Path) -> Path:
    page = browser.new_page(
        viewport={"width": shot.width, "height": shot.height},
        color_scheme="dark" if shot.dark else "light",
        has_touch=shot.phone,
        is_mobile=shot.phone,
        device_scale_factor=2 if shot.phone else 1,
    )
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.wait_for_function("window.sketchlab && window.sketchlab.strokes")
    page.evaluate("(text) => window.sketchlab.load(text)", json.dumps(record))
    page.wait_for_function("!document.querySelector('#sketchpad canvas').dataset.animating")
    page.wait_for_function(
        "Number(document.querySelector('#guesses .guesses')?.dataset.seq) >= window.sketchlab.target()"
        " && document.querySelector('#guesses .guess')"
    )
    page.evaluate("window.scrollTo(0, 0)")
    path = out / f"{shot.name}.png"
    page.screenshot(path=str(path))
    page.close()
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--word", default="cat", help="category of the held-out drawing to replay")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    record = held_out_drawing(args.word)
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp) / "app.log") as (url, _):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for shot in SHOTS:
                print(take(browser, url, shot, record, args.out))
            browser.close()


if __name__ == "__main__":
    main()
