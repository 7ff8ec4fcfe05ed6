"""Training-time augmentation of drawings, as pure functions of (input, numpy Generator).

Each function returns a new array and leaves its input untouched (magenta's `augment_strokes` / `random_scale`,
without the in-place edits). Formats as in `sketchlab.strokes`: stroke-3 is (N, 3) `[dx, dy, pen_lifted]`;
an absolute drawing is a list of (n_i, 2) arrays.
"""

from __future__ import annotations

import numpy as np

from .errors import DrawingError
from .raster import rasterize
from .simplify import align_and_scale, simplify
from .strokes import Drawing, from_stroke3, to_stroke3

SCALE_RANGE = 0.15  # sketch-rnn's random_scale_factor: x and y each scaled by 1 +- 0.15
ROTATION_DEGREES = 15.0  # players draw with small tilts; more would turn a "6" into a "9"
POINT_DROP = 0.10  # sketch-rnn's augment_stroke_prob: chance of dropping an interior point of a straight-ish run
STROKE_DROP = 0.05  # chance of dropping a whole stroke (never the last one left)


def random_scale(stroke3: np.ndarray, rng: np.random.Generator, amount: float = SCALE_RANGE) -> np.ndarray:
    """Stretch x and y independently by factors in [1 - amount, 1 + amount] (stroke-3 in, stroke-3 out)."""
    out = np.array(stroke3, dtype=np.float32)
    out[:, 0] *= rng.uniform(1 - amount, 1 + amount)
    out[:, 1] *= rng.uniform(1 - amount, 1 + amount)
    return out


def random_rotate(stroke3: np.ndarray, rng: np.random.Generator, degrees: float = ROTATION_DEGREES) -> np.ndarray:
    """Rotate the offsets by an angle uniform in [-degrees, degrees]."""
    a = np.deg2rad(rng.uniform(-degrees, degrees))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], dtype=np.float32)
    out = np.array(stroke3, dtype=np.float32)
    out[:, :2] = out[:, :2] @ rot.T
    return out


def drop_points(stroke3: np.ndarray, rng: np.random.Generator, prob: float = POINT_DROP) -> np.ndarray:
    """Drop interior points of strokes with probability `prob`, merging their offset into the next point, so the
    drawing keeps its shape with fewer points (sketch-rnn's `augment_strokes`). Stroke ends are never dropped."""
    s = np.asarray(stroke3, dtype=np.float32)
    if len(s) < 3:
        return s.copy()
    lifted = s[:, 2] > 0.5
    starts = np.concatenate([[True], lifted[:-1]])  # first point of a stroke
    droppable = ~lifted & ~starts
    drop = droppable & (rng.random(len(s)) < prob)
    drop[1:] &= ~drop[:-1]  # never two in a row, so no merged offset grows too long
    keep = ~drop  # the last row is a pen lift, so always kept
    target = int(keep.sum()) - np.cumsum(keep[::-1])[::-1]  # index of the kept row at or after each row
    out = np.zeros((int(keep.sum()), 3), dtype=np.float32)
    np.add.at(out[:, :2], target, s[:, :2])  # a dropped row's offset moves into the next kept row
    out[:, 2] = s[keep, 2]
    return out


def drop_strokes(drawing: Drawing, rng: np.random.Generator, prob: float = STROKE_DROP) -> Drawing:
    """Drop whole strokes of an absolute drawing with probability `prob`, keeping at least one."""
    if len(drawing) < 2:
        return [np.array(s) for s in drawing]
    keep = rng.random(len(drawing)) >= prob
    if not keep.any():
        keep[rng.integers(len(drawing))] = True
    return [np.array(s) for s, k in zip(drawing, keep, strict=True) if k]


def random_mirror(stroke3: np.ndarray, rng: np.random.Generator, prob: float = 0.5) -> np.ndarray:
    """Mirror left-right (dx -> -dx) with probability `prob`: a cat facing left is still a cat."""
    out = np.array(stroke3, dtype=np.float64)
    if rng.random() < prob:
        out[:, 0] = -out[:, 0]
    return out


def random_prefix(stroke3: np.ndarray, rng: np.random.Generator, prob: float, anywhere: bool = False) -> np.ndarray:
    """With probability `prob`, the drawing as it stood after its first k strokes (k uniform in 1..n-1), framed again
    as the app frames a drawing in progress (`sketchlab.simplify`: aligned to the top-left, scaled so its longer side
    spans 0..255, simplified): the live guesses see such prefixes at every stroke, never the finished drawing until
    the player stops. `anywhere`: the cut falls at a uniform point of the pen's path instead (by length along it,
    so mostly inside a stroke), the last stroke ending there: what the page sends while the pen is down. Otherwise,
    or for a drawing with nothing to cut (one stroke, without `anywhere`), or a prefix too small to frame, the
    drawing as it is. Stroke-3 in simplified pixels, in and out. Draws no random number when `prob` is 0, so
    recipes without it reproduce exactly."""
    out = np.array(stroke3, dtype=np.float32)
    if prob <= 0:
        return out
    drawing = from_stroke3(out)
    if (len(drawing) < 2 and not anywhere) or rng.random() >= prob:
        return out
    prefix = _cut_along_path(drawing, rng) if anywhere else drawing[: int(rng.integers(1, len(drawing)))]
    try:
        return to_stroke3(simplify(prefix))
    except DrawingError:  # a prefix of coinciding points: nothing the canvas would frame either
        return out


def _cut_along_path(drawing: Drawing, rng: np.random.Generator) -> Drawing:
    """The drawing up to a uniform point along its strokes' total length: the strokes before that point, and the one
    it falls in up to it (a point between two of its vertices)."""
    lengths = [np.linalg.norm(np.diff(np.asarray(s, np.float64), axis=0), axis=1) for s in drawing]  # per segment
    at = rng.random() * sum(float(seg.sum()) for seg in lengths)
    j = 0  # the stroke the cut falls in
    while j < len(drawing) - 1 and at > lengths[j].sum():
        at -= lengths[j].sum()
        j += 1
    stroke, seg = np.asarray(drawing[j], np.float64), lengths[j]
    if seg.sum() == 0:  # a dot
        return list(drawing[: j + 1])
    i = min(int(np.searchsorted(np.cumsum(seg), at)), len(seg) - 1)  # the segment it falls in
    t = float(np.clip((at - seg[:i].sum()) / seg[i], 0.0, 1.0)) if seg[i] > 0 else 1.0
    return [*drawing[:j], np.vstack([stroke[: i + 1], stroke[i] + t * (stroke[i + 1] - stroke[i])])]


def augment_stroke3(stroke3: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The usual chain for stroke-3 training data: drop points, rotate, scale."""
    return random_scale(random_rotate(drop_points(stroke3, rng), rng), rng)


def augmented_raster(stroke3: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A simplified drawing's stroke-3 (simplified pixels) -> a (28, 28) uint8 raster of an augmented copy: points
    dropped, rotated, stretched (`augment_stroke3`), whole strokes dropped, then put back into the 0..255 frame the
    way Google aligned and scaled its simplified drawings (integer coordinates) and rasterized like the official
    bitmaps. Unlike a warp of the finished raster it changes the drawing itself (a missing stroke, a different
    aspect ratio) while the line width and the margins stay those of real data. A copy that collapses to a single
    point is a dot, aligned to (0, 0) as `sketchlab.simplify` frames a tap; one the framing refuses is drawn
    unaugmented."""
    drawing = drop_strokes(from_stroke3(augment_stroke3(stroke3, rng)), rng)
    try:
        return rasterize([np.round(s) for s in align_and_scale(drawing)])
    except DrawingError:
        return rasterize(from_stroke3(stroke3))
