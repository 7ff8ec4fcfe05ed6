"""What the page shows and how its live requests are kept in order, without Gradio.

`guesses_html` / `details_html` turn a `Service.classify` result into the HTML of `#guesses` and the model details;
`page_seq` and `NewestOnly` handle the request numbers the canvas sends (see assets/sketchpad.js); `only_dots`,
`drawing_problem` and `clamp` put a drawing in progress, a refused drawing and out-of-range controls in the page's
own words.
"""

from __future__ import annotations

import base64
import html
import io
import math
import threading
from collections import OrderedDict

import numpy as np

from .strokes import MIN_EXTENT

MAX_SESSIONS = 10_000  # browser sessions whose newest request number is remembered (oldest forgotten first)
RASTER_ZOOM = 6  # the 28x28 raster shown 168 px wide, pixelated
# The page says "I think it is X" only when X is more likely right than wrong, else "Maybe X?". The probabilities are
# calibrated (temperatures in models/fusion.json), so a top guess shown at 50% is right about half the time.
SURE = 0.5
KEEP_DRAWING = "Keep drawing: a dot is a start, but I need a line or two to guess."
TOO_BIG = "That drawing is too big for me to guess ({reason}). Undo a few strokes or clear the canvas to go on."
CANNOT_USE = "I cannot guess from that drawing. Clear the canvas and draw it again."


# ---------------------------------------------------------------------------------------------------------------
# Page requests


def page_seq(value: object) -> int:
    """The page's request number as a non-negative int (0 for anything else a client might send)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(0, min(int(value), 2**53))


class NewestOnly:
    """The newest request number seen per browser session, so an answer overtaken by a newer request is dropped.

    The page sends a finished change (pen up, undo) at once even while a live request is still computing; the
    older answer must not overwrite the newer one when it arrives later.
    """

    def __init__(self, capacity: int = MAX_SESSIONS):
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def start(self, session: str, seq: int) -> None:
        with self._lock:
            self._newest[session] = max(seq, self._newest.get(session, 0))
            self._newest.move_to_end(session)
            while len(self._newest) > self._capacity:
                self._newest.popitem(last=False)

    def overtaken(self, session: str, seq: int) -> bool:
        with self._lock:
            return self._newest.get(session, 0) > seq


def only_dots(strokes: object) -> bool:
    """Whether a drawing sent by the page is one or more taps at a single spot: a drawing in progress, not bad input.
    "A single spot" is the preprocessing's own test (`sketchlab.strokes.MIN_EXTENT`): every point within MIN_EXTENT
    canvas pixels of the others, so whatever the preprocessing would call a dot, the page calls one too.

    Strokes are `[[[x, y, t_ms], ...], ...]`; anything else is left for the service to judge (False).
    """
    try:
        xy = [(p[0], p[1]) for s in strokes for p in s]
    except (TypeError, IndexError, KeyError):
        return False
    if not xy or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for p in xy for v in p
    ):
        return False
    xs, ys = zip(*xy, strict=True)
    return max(xs) - min(xs) < MIN_EXTENT and max(ys) - min(ys) < MIN_EXTENT


def drawing_problem(reason: str) -> str:
    """A `DrawingError` the page met -> what the user can do about it. Size limits say "at most"."""
    return TOO_BIG.format(reason=reason) if "at most" in reason else CANNOT_USE


def clamp(value: object, lo: float, hi: float, default: float) -> float:
    """A control's value kept in [lo, hi]; `default` for anything that is not a finite number (an emptied box)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return min(max(float(value), lo), hi)


# ---------------------------------------------------------------------------------------------------------------
# Page fragments (HTML the app puts in `#guesses` and the model details)

EMPTY_GUESSES = (
    '<div class="guesses empty" data-seq="{seq}"><p class="hint">Draw something on the canvas: '
    "I will guess what it is while you draw.</p></div>"
)


def guesses_html(result: dict | None, seq: int = 0, message: str | None = None, note: str | None = None) -> str:
    """The fused top-5 with confidence bars; the empty state without a result; `message` (a problem) or `note` (a
    drawing in progress) instead when set.

    The headline names the first guess of `result["fused"]`, which the server may hold there while a close rival
    overtakes it (`Fusion.hold`) so it does not flicker; the bars are always in the order of their probabilities.
    `data-sure` says whether the page named the drawing ("I think it is"), which the ndjson export records.
    """
    seq = page_seq(seq)
    if message:
        return f'<div class="guesses problem" data-seq="{seq}"><p class="hint">{html.escape(message)}</p></div>'
    if note:
        return f'<div class="guesses note" data-seq="{seq}"><p class="hint">{html.escape(note)}</p></div>'
    if not result:
        return EMPTY_GUESSES.format(seq=seq)
    head, sure, first = "", False, None
    if result["fused"]:
        first = result["fused"][0]["word"]
        top = f'<b class="top-word">{html.escape(first)}</b>'
        sure = result["fused"][0]["prob"] >= SURE
        head = f'<p class="lead">{f"I think it is {top}" if sure else f"Not sure yet. Maybe {top}?"}</p>'
    ranked = sorted(result["fused"], key=lambda g: -g["prob"])  # stable: ties keep the server's order
    return f'<div class="guesses" data-seq="{seq}" data-sure="{str(sure).lower()}">{head}{_bars(ranked, first)}</div>'


def details_html(result: dict | None) -> str:
    """Each model's own top-5 and the 28x28 raster the CNN saw."""
    if not result:
        return '<p class="hint">Each model\'s own guesses appear here once you draw.</p>'
    cols = []
    for key, title in (("stroke", "Stroke model (Conv1D + LSTM)"), ("cnn", "Image model (28×28 CNN)")):
        body = _bars(result[key]) if result.get(key) else '<p class="hint">not loaded</p>'
        cols.append(f'<div class="model-col"><h4>{title}</h4>{body}</div>')
    raster = result.get("raster")
    if raster is not None:
        cols.append(
            f'<div class="model-col"><h4>What the CNN saw</h4><img class="raster" alt="28x28 raster" '
            f'src="{raster_data_uri(raster)}"></div>'
        )
    return f'<div class="model-details">{"".join(cols)}</div>'


def _bars(guesses: list[dict], headline: str | None = None) -> str:
    rows = []
    for g in guesses:
        pct = max(0.0, min(100.0, 100.0 * g["prob"]))
        mark = " data-headline" if g["word"] == headline else ""  # the guess the headline names
        rows.append(
            f'<li class="guess"{mark}><span class="word">{html.escape(g["word"])}</span>'
            f'<span class="bar" aria-hidden="true"><span class="fill" style="width:{pct:.1f}%"></span></span>'
            f'<span class="pct">{pct:.0f}%</span></li>'
        )
    return f'<ol class="bars">{"".join(rows)}</ol>'


def raster_data_uri(raster: np.ndarray) -> str:
    """(28, 28) uint8, 0 = background -> a PNG data URI, ink dark on white like the canvas."""
    from PIL import Image

    img = Image.fromarray(255 - np.asarray(raster, dtype=np.uint8), mode="L")
    img = img.resize((img.width * RASTER_ZOOM, img.height * RASTER_ZOOM), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
