"""Stroke formats and the conversions between them, in pure numpy.

The formats, from the canvas to the models (N = points in the drawing, S = strokes):

- canvas input: `list[list[[x, y, t_ms]]]`, one list of points per stroke, in canvas pixels of any canvas size,
  `t_ms` in milliseconds (any origin). `[x, y]` points (no time) are accepted too. Checked by `validate_canvas`.
- raw drawing: `list[np.ndarray]`, one float64 array of shape (n_i, 3) `[x, y, t]` per stroke. What `validate_canvas`
  returns and what the official `raw/*.ndjson` files hold (after `from_ndjson_strokes`).
- simplified drawing: `list[np.ndarray]`, one array of shape (n_i, 2) `[x, y]` per stroke, aligned to the top-left
  and scaled into 0..255, as in the official `simplified/*.ndjson` files (`sketchlab.simplify` makes it).
- stroke-3: `np.ndarray` (N, 3) float32 rows `[dx, dy, pen_lifted]` (magenta sketch_rnn `utils.py`): offsets from the
  previous point, the first row being the first point's offset from the origin; `pen_lifted` is 1 on the last
  point of each stroke.
- stroke-5: `np.ndarray` (max_len + 1, 5) float32 rows `[dx, dy, p1, p2, p3]` (Ha & Eck 2017, section 3.1): one-hot pen
  state p1 = pen stays down, p2 = pen lifted after this point, p3 = drawing ended. Row 0 is the start token
  `[0, 0, 1, 0, 0]`; rows after the drawing are padding `[0, 0, 0, 0, 1]`.

All functions return new arrays and never modify their input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import DrawingError

MAX_STROKES = 1_000  # more strokes than any real drawing (the official raw data tops out near 60)
MAX_POINTS = 20_000  # 17x the longest raw drawing in the shared data (1,170 points); bounds work per request
MAX_ABS_COORD = 1e6  # canvas pixels; beyond this a coordinate is a bug or an attack, not a drawing
MIN_EXTENT = 1e-3  # canvas pixels; a drawing smaller than this is a dot (scaling it to 255 would blow up noise)
START_TOKEN = np.array([0, 0, 1, 0, 0], dtype=np.float32)  # Ha & Eck's S0
PAD_ROW = np.array([0, 0, 0, 0, 1], dtype=np.float32)  # "drawing ended", repeated to the padded length

Drawing = list  # list[np.ndarray], see the module docstring for the array shapes


# ---------------------------------------------------------------------------------------------------------------
# Canvas input


def _is_list(obj: object) -> bool:
    """A list, tuple or array of at least one dimension: what a drawing, stroke or point may be (0-d arrays have no
    len(), and str/bytes are sequences of characters, not of numbers)."""
    if isinstance(obj, np.ndarray):
        return obj.ndim > 0
    return isinstance(obj, Sequence) and not isinstance(obj, (str, bytes, bytearray, memoryview))


def _as_point(point: object, where: str) -> tuple[float, float, float]:
    if not _is_list(point):
        raise DrawingError(f"{where} must be a list [x, y, t_ms] or [x, y], got {type(point).__name__}")
    if len(point) not in (2, 3):
        raise DrawingError(f"{where} must have 2 or 3 numbers [x, y, t_ms], got {len(point)}")
    values = []
    for v in point:
        if not isinstance(v, int | float | np.integer | np.floating):  # bool is an int, as in numpy: 0 / 1
            raise DrawingError(f"{where} holds {type(v).__name__} {v!r:.40}; coordinates must be numbers")
        try:
            f = float(v)
        except OverflowError as e:  # a Python int beyond float range, e.g. a 400-digit number in the request
            raise DrawingError(
                f"{where} holds a number too large; coordinates must be within +-{MAX_ABS_COORD:g}"
            ) from e
        if not math.isfinite(f):
            raise DrawingError(f"{where} holds {v!r}; coordinates must be finite")
        if abs(f) > MAX_ABS_COORD:
            raise DrawingError(f"{where} holds {v!r}; coordinates must be within +-{MAX_ABS_COORD:g}")
        values.append(f)
    return values[0], values[1], values[2] if len(values) == 3 else 0.0


def _as_stroke(stroke: object, i: int) -> np.ndarray:
    """One stroke -> float64 (n, 3). Fast path: a well-formed numeric list or array converts in one numpy call;
    anything else goes point by point so the error names the first bad point."""
    try:
        arr = np.asarray(stroke)
    except (ValueError, TypeError):  # ragged nesting
        arr = None
    if arr is not None and arr.dtype.kind in "iuf" and arr.ndim == 2 and arr.shape[1] in (2, 3) and len(arr):
        arr = arr.astype(np.float64)
        if np.all(np.isfinite(arr)) and np.all(np.abs(arr) <= MAX_ABS_COORD):
            return arr if arr.shape[1] == 3 else np.column_stack([arr, np.zeros(len(arr))])
    if not _is_list(stroke):
        raise DrawingError(f"stroke {i} must be a list of points, got {type(stroke).__name__}")
    if len(stroke) == 0:
        raise DrawingError(f"stroke {i} has no points")
    return np.array([_as_point(p, f"point {j} of stroke {i}") for j, p in enumerate(stroke)], np.float64)


def _as_flat_fast(strokes: Sequence) -> tuple[np.ndarray, np.ndarray] | None:
    """Well-formed input in one numpy conversion: all strokes non-empty lists of [x, y, t] (or all [x, y]) numbers,
    finite and bounded -> (all points (N, 3) float64, stroke sizes (S,)). Returns None when anything differs, and the
    careful path finds and names the problem."""
    try:
        sizes = [len(s) for s in strokes]
        if not all(sizes) or sum(sizes) > MAX_POINTS:
            return None
        if all(isinstance(s, np.ndarray) and s.ndim == 2 for s in strokes):  # e.g. a drawing validated before
            flat = np.concatenate(strokes) if len({s.shape[1] for s in strokes}) == 1 else None
        else:
            flat = np.asarray([p for s in strokes for p in s])
    except (TypeError, ValueError):
        return None
    if flat is None:
        return None
    if flat.dtype.kind not in "iuf" or flat.ndim != 2 or flat.shape[1] not in (2, 3):
        return None
    flat = flat.astype(np.float64)
    if not (np.all(np.isfinite(flat)) and np.all(np.abs(flat) <= MAX_ABS_COORD)):
        return None
    if flat.shape[1] == 2:
        flat = np.column_stack([flat, np.zeros(len(flat))])
    return flat, np.array(sizes)


def split_flat(points: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """Strokes stored one after the other in `points` (N, ...) with lengths `sizes` (S,) -> list of S views."""
    bounds = np.cumsum(sizes).tolist()
    return [points[b - n : b] for b, n in zip(bounds, sizes.tolist(), strict=True)]


def validate_canvas(strokes: object, *, min_extent: bool = True) -> Drawing:
    """Check canvas input and return it as a raw drawing: a list of float64 arrays (n_i, 3) `[x, y, t_ms]`.

    Raises `DrawingError` for anything but a non-empty list of non-empty strokes of finite, bounded numbers
    within `MAX_STROKES` / `MAX_POINTS`; with `min_extent`, also for a drawing whose points all coincide
    (it has no size to scale to 0..255). Booleans count as the numbers 0 and 1, as they do in Python and numpy.
    """
    return split_flat(*validate_canvas_flat(strokes, min_extent=min_extent))


def validate_canvas_flat(strokes: object, *, min_extent: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`validate_canvas`, returning the points of all strokes one after the other, (N, 3) float64 `[x, y, t_ms]`,
    and the stroke sizes (S,) int, instead of a list (the preprocessing works on this layout)."""
    if not _is_list(strokes):
        raise DrawingError(f"a drawing must be a list of strokes, got {type(strokes).__name__}")
    if len(strokes) == 0:
        raise DrawingError("the drawing has no strokes")
    if len(strokes) > MAX_STROKES:
        raise DrawingError(f"the drawing has {len(strokes)} strokes; at most {MAX_STROKES} are allowed")
    fast = _as_flat_fast(strokes)
    if fast is not None:
        flat, sizes = fast
    else:  # something is off: go stroke by stroke, point by point, to say exactly what
        total = 0
        out = []
        for i, stroke in enumerate(strokes):
            if _is_list(stroke):
                total += len(stroke)
                if total > MAX_POINTS:
                    raise DrawingError(
                        f"the drawing has more than {MAX_POINTS} points; at most {MAX_POINTS} are allowed"
                    )
            out.append(_as_stroke(stroke, i))
        flat, sizes = np.concatenate(out), np.array([len(s) for s in out])
    if min_extent:
        xy = flat[:, :2]
        if np.all(xy.max(axis=0) - xy.min(axis=0) < MIN_EXTENT):
            raise DrawingError("the drawing is a single point; draw a line or a shape")
    return flat, sizes


def from_ndjson_strokes(drawing: object) -> Drawing:
    """Official ndjson `drawing` (`[[x...], [y...]]` or `[[x...], [y...], [t...]]` per stroke) -> list of (n_i, 2|3).

    Raises `DrawingError` when the nesting is wrong (axes of different lengths, no strokes, non-numbers).
    """
    if not isinstance(drawing, list) or not drawing:
        raise DrawingError("an ndjson drawing must be a non-empty list of strokes [[x...], [y...](, [t...])]")
    out = []
    for i, stroke in enumerate(drawing):
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            raise DrawingError(f"stroke {i} must be [[x...], [y...]] or [[x...], [y...], [t...]]")
        if len({len(axis) if isinstance(axis, list) else -1 for axis in stroke}) != 1 or not stroke[0]:
            raise DrawingError(f"stroke {i} has axes of different lengths or no points")
        try:
            arr = np.array(stroke, dtype=np.float64).T
        except (TypeError, ValueError) as e:
            raise DrawingError(f"stroke {i} holds something that is not a number") from e
        if not np.all(np.isfinite(arr)):
            raise DrawingError(f"stroke {i} holds NaN or inf")
        out.append(arr)
    return out


def to_ndjson_strokes(drawing: Drawing, decimals: int | None = 0) -> list:
    """List of (n_i, 2|3) arrays -> official ndjson nesting `[[x...], [y...](, [t...])]` of plain Python numbers."""
    out = []
    for s in drawing:
        s = np.asarray(s)
        if decimals == 0:
            out.append(np.rint(s).astype(np.int64).T.tolist())
        else:
            out.append((s if decimals is None else np.round(s, decimals)).T.tolist())
    return out


# ---------------------------------------------------------------------------------------------------------------
# stroke-3


def to_stroke3(drawing: Drawing) -> np.ndarray:
    """Simplified (or any absolute) drawing -> stroke-3 (N, 3) float32 `[dx, dy, pen_lifted]`.

    The first row is the first point's offset from the origin, as in magenta's `lines_to_strokes`, so
    `from_stroke3(to_stroke3(d))` gives `d` back exactly.
    """
    if not drawing:
        raise DrawingError("the drawing has no strokes")
    points = np.concatenate([np.asarray(s, dtype=np.float64)[:, :2] for s in drawing])  # (N, 2)
    lifted = np.concatenate([np.arange(len(s)) == len(s) - 1 for s in drawing])  # (N,)
    out = np.empty((len(points), 3), dtype=np.float32)
    out[:, :2] = np.diff(points, axis=0, prepend=np.zeros((1, 2)))
    out[:, 2] = lifted
    return out


def from_stroke3(stroke3: np.ndarray) -> Drawing:
    """stroke-3 (N, 3) -> list of absolute (n_i, 2) float arrays, starting from the origin.

    A final stroke without a pen lift is kept (generated drawings can end mid-stroke).
    """
    stroke3 = np.asarray(stroke3, dtype=np.float64)
    if stroke3.ndim != 2 or stroke3.shape[1] < 3:
        raise DrawingError(f"stroke-3 must have shape (N, 3), got {stroke3.shape}")
    points = np.cumsum(stroke3[:, :2], axis=0)
    ends = np.flatnonzero(stroke3[:, 2] > 0.5) + 1
    return [p for p in np.split(points, ends) if len(p)]


# ---------------------------------------------------------------------------------------------------------------
# stroke-5


def to_stroke5(stroke3: np.ndarray, max_len: int | None = None) -> np.ndarray:
    """stroke-3 (N, 3) -> stroke-5 (max_len + 1, 5) with the start token in row 0 and padding after the drawing.

    `max_len` defaults to N (no padding); a longer drawing is cut to its first `max_len` points, the last kept
    point marked as a pen lift.
    """
    stroke3 = np.asarray(stroke3, dtype=np.float32)
    n = len(stroke3) if max_len is None else min(len(stroke3), max_len)
    length = n if max_len is None else max_len
    out = np.tile(PAD_ROW, (length + 1, 1))
    out[0] = START_TOKEN
    out[1 : n + 1, :2] = stroke3[:n, :2]
    lifted = stroke3[:n, 2] > 0.5
    if n:
        lifted[-1] = True
    out[1 : n + 1, 2] = ~lifted
    out[1 : n + 1, 3] = lifted
    out[1 : n + 1, 4] = 0
    return out


def from_stroke5(stroke5: np.ndarray) -> np.ndarray:
    """stroke-5 (T, 5), with or without the start token -> stroke-3 (N, 3), stopping at the first p3 row."""
    stroke5 = np.asarray(stroke5, dtype=np.float32)
    if stroke5.ndim != 2 or stroke5.shape[1] != 5:
        raise DrawingError(f"stroke-5 must have shape (T, 5), got {stroke5.shape}")
    rows = stroke5[1:] if len(stroke5) and np.array_equal(stroke5[0], START_TOKEN) else stroke5
    ended = np.flatnonzero(rows[:, 4] > 0.5)
    rows = rows[: ended[0]] if len(ended) else rows
    out = np.empty((len(rows), 3), dtype=np.float32)
    out[:, :2] = rows[:, :2]
    out[:, 2] = rows[:, 3] > 0.5
    return out


# ---------------------------------------------------------------------------------------------------------------
# Normalisation (magenta `calculate_normalizing_scale_factor` / `normalize`, without mutation)


def scale_factor(stroke3s: Sequence[np.ndarray]) -> float:
    """Standard deviation of all (dx, dy) offsets of a training set: divide offsets by it to get unit variance.

    The first row of each drawing (the offset from the origin) is left out, so where a drawing starts does not
    change the scale.
    """
    deltas = [np.asarray(s, np.float64)[1:, :2].ravel() for s in stroke3s if len(s) > 1]
    if not deltas:
        raise DrawingError("cannot compute a scale factor from drawings of fewer than 2 points")
    std = float(np.concatenate(deltas).std())
    if not std > 0:
        raise DrawingError("cannot compute a scale factor: all offsets are zero")
    return std


def normalize(stroke3: np.ndarray, scale: float) -> np.ndarray:
    """Divide the (dx, dy) offsets of a stroke-3 or stroke-5 array by `scale`; pen columns are unchanged."""
    out = np.array(stroke3, dtype=np.float32)
    out[:, :2] /= scale
    return out


def denormalize(stroke3: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of `normalize`."""
    out = np.array(stroke3, dtype=np.float32)
    out[:, :2] *= scale
    return out


def bounds(drawing: Drawing) -> tuple[float, float, float, float]:
    """(min_x, min_y, max_x, max_y) of an absolute drawing."""
    xy = np.concatenate([np.asarray(s)[:, :2] for s in drawing])
    return (*xy.min(axis=0).tolist(), *xy.max(axis=0).tolist())
