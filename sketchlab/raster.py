"""Simplified drawing -> 28x28 uint8 bitmap, the way the official `numpy_bitmap/*.npy` files were made.

Google's renderer (the `vector_to_raster` recipe given by the dataset's maintainers, quickdraw-dataset issue #19)
draws the simplified strokes, which live in a 256x256 frame, centred in that frame, with 16-unit-wide round-capped,
round-joined anti-aliased lines (cairo), on a (256 + 2*16 + 16)-unit square mapped to 28x28 pixels; 0 is background
and 255 full ink.

We draw the same geometry straight onto the 28x28 grid with Anti-Grain Geometry, the scanline renderer inside
matplotlib (its `RendererAgg`, used without any figure or pyplot), which, like cairo, gives each pixel the exact
area of the stroke that covers it. All strokes go into one path, so the cost barely depends on the number of points
(about 0.2 ms for a drawing). A stroke whose points all coincide is a dot: a filled disc of the line's width.
`scripts/check_preprocessing.py` measures the result against Google's own bitmaps.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.path import Path
from matplotlib.transforms import IdentityTransform

from .strokes import Drawing

SIDE = 28  # output bitmap side, as in numpy_bitmap
FRAME = 256.0  # simplified coordinates live in 0..255
LINE_DIAMETER = 16.0  # stroke width in frame units
PADDING = 16.0  # blank margin on each side, in frame units
TOTAL = FRAME + 2 * PADDING + LINE_DIAMETER  # 304 frame units map onto SIDE pixels
_DPI = 72.0  # at 72 dpi matplotlib's line width unit (the point) is one pixel
_IDENTITY = IdentityTransform()
_INK = (1.0, 1.0, 1.0, 1.0)  # read back from the alpha channel: coverage 0..1 -> 0..255


def rasterize(drawing: Drawing, side: int = SIDE) -> np.ndarray:
    """Simplified drawing (list of (n_i, 2) arrays in 0..255) -> (side, side) uint8 bitmap, 0 = background.

    The drawing is centred in the 256 frame by its maximum x and y, as Google's renderer does (simplified drawings
    start at 0). Strokes of one point, or of points that all coincide, become dots.
    """
    renderer = RendererAgg(side, side, _DPI)
    strokes = [np.asarray(s, dtype=np.float64)[:, :2] for s in drawing if len(s)]
    if strokes:
        _draw(renderer, np.concatenate(strokes), np.array([len(s) for s in strokes]), side)
    return np.asarray(renderer.buffer_rgba())[:, :, 3].copy()


def _draw(renderer: RendererAgg, points: np.ndarray, sizes: np.ndarray, side: int) -> None:
    """Draw strokes stored one after the other (`points` (N, 2) in the 256 frame, `sizes` (S,)) as one path."""
    px = side / TOTAL
    shift = (FRAME - points.max(axis=0)) / 2 + TOTAL / 2 - FRAME / 2  # centre in the frame, then skip the margin
    # Agg's y axis points up: y_pixel -> side - y_pixel. Measured on the official pairs, no half-pixel offset
    # matches Google's bitmaps best.
    pixel = (points + shift) * (px, -px) + (0.0, side)
    starts = np.cumsum(sizes) - sizes
    has_length = (np.maximum.reduceat(pixel, starts) > np.minimum.reduceat(pixel, starts)).any(axis=1)  # (S,)
    gc = renderer.new_gc()
    gc.set_foreground(_INK)
    gc.set_antialiased(True)
    gc.set_snap(False)  # matplotlib would otherwise snap all-horizontal/vertical paths to pixel centres
    gc.set_capstyle("round")
    gc.set_joinstyle("round")
    gc.set_linewidth(LINE_DIAMETER * px)
    if has_length.any():
        on_line = has_length.repeat(sizes)
        codes = np.full(len(points), Path.LINETO, dtype=Path.code_type)
        codes[starts] = Path.MOVETO
        renderer.draw_path(gc, Path(pixel[on_line], codes[on_line]), _IDENTITY)
    if not has_length.all():  # dots: filled discs of the line's width
        gc.set_linewidth(0.0)
        for x, y in pixel[starts[~has_length]].tolist():
            renderer.draw_path(gc, Path.circle((x, y), LINE_DIAMETER * px / 2), _IDENTITY, _INK)
    gc.restore()


def rasterize_batch(drawings: list[Drawing], side: int = SIDE) -> np.ndarray:
    """Several simplified drawings -> (B, side, side) uint8."""
    return np.stack([rasterize(d, side) for d in drawings]) if drawings else np.zeros((0, side, side), np.uint8)
