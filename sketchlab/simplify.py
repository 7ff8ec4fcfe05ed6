"""Quick, Draw! preprocessing: raw strokes -> the official "simplified" format.

As the dataset's README documents it (github.com/googlecreativelab/quickdraw-dataset, "Preprocessed dataset"):
  1. align the drawing to the top-left corner, to have minimum values of 0;
  2. uniformly scale the drawing, to have a maximum value of 255;
  3. resample all strokes with a 1 pixel spacing;
  4. simplify all strokes using the Ramer-Douglas-Peucker algorithm with an epsilon value of 2.0.
Coordinates are then rounded to integers, as stored in the files. `scripts/check_preprocessing.py` measures this
against Google's own simplified version of the same drawings.

Canvas input goes through exactly this function at serving time, and raw training data at training time.
"""

from __future__ import annotations

import numpy as np

from .errors import DrawingError
from .strokes import MIN_EXTENT, Drawing, validate_canvas

SIMPLIFIED_SIZE = 255  # the longer side after scaling, as in the official "simplified" files
RESAMPLE_SPACING = 1.0  # pixels between resampled points
SIMPLIFY_EPSILON = 2.0  # RDP tolerance used for the official "simplified" files


def align_and_scale(drawing: Drawing, size: float = SIMPLIFIED_SIZE) -> Drawing:
    """Shift the drawing so its minimum x and y are 0 and scale it uniformly so its longer side is `size`.

    Returns new (n_i, 2) float64 arrays. Raises `DrawingError` if all points coincide.
    """
    xy = [np.asarray(s, dtype=np.float64)[:, :2] for s in drawing]
    allxy = np.concatenate(xy)
    lo = allxy.min(axis=0)
    extent = float((allxy.max(axis=0) - lo).max())
    if not extent >= MIN_EXTENT:
        raise DrawingError("the drawing is a single point; draw a line or a shape")
    scale = size / extent
    return [(s - lo) * scale for s in xy]


def _arc_lengths(stroke: np.ndarray) -> np.ndarray:
    """Distance along the polyline (n, 2) from its first point to each vertex: (n,)."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stroke, axis=0).T))])


def _points_at(stroke: np.ndarray, dist: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Points of the polyline at arc lengths `at`: (len(at), 2)."""
    return np.stack([np.interp(at, dist, stroke[:, 0]), np.interp(at, dist, stroke[:, 1])], axis=1)


def _resample_positions(total: float, spacing: float) -> np.ndarray:
    """Arc lengths 0, spacing, 2*spacing, ... below `total`, then `total` itself."""
    at = np.arange(0.0, total, spacing)
    return np.append(at, total) if total - at[-1] > 1e-9 else at


def resample(stroke: np.ndarray, spacing: float = RESAMPLE_SPACING) -> np.ndarray:
    """Points every `spacing` pixels along the polyline (n, 2), from its first point, plus its last point."""
    if len(stroke) < 2:
        return stroke.copy()
    dist = _arc_lengths(stroke)
    if dist[-1] == 0:
        return stroke[:1].copy()
    return _points_at(stroke, dist, _resample_positions(dist[-1], spacing))


def _rdp_many(points: np.ndarray, sizes: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Ramer-Douglas-Peucker on several polylines at once: `points` (n, 2) holds them one after the other, `sizes`
    their lengths. Returns the kept points and the new sizes.

    The textbook recursion keeps the point of a span farthest from the span's chord (the first one on ties; the
    distance to the span's end point when the chord is closed) if it is farther than `epsilon`, then recurses on both
    halves. Spans are independent, so here every open span of every polyline is handled in one vectorised pass per
    recursion level: ~10-15 passes for a whole drawing instead of a few numpy calls per span (a 540-point scribble
    has ~1,000 spans).
    """
    xs, ys = np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1])
    ends = np.cumsum(sizes)
    keep = np.zeros(len(points), dtype=bool)
    keep[ends - sizes] = True  # first point of each polyline
    keep[ends - 1] = True  # and its last: no span crosses from one polyline to the next
    inside = np.flatnonzero(~keep)  # points of spans that may still split, sorted
    while len(inside):
        kept = np.flatnonzero(keep)
        right = np.searchsorted(kept, inside)  # span id: index of the span's right end in `kept`
        starts = np.flatnonzero(np.diff(right, prepend=-1))  # each span is one run of `inside`
        lengths = np.diff(starts, append=len(inside))
        a, b = kept[right[starts] - 1], kept[right[starts]]  # span ends, one per span
        ax, ay = xs[a], ys[a]
        dx, dy = xs[b] - ax, ys[b] - ay
        px, py = xs[inside] - np.repeat(ax, lengths), ys[inside] - np.repeat(ay, lengths)
        # Within a span the chord length is constant, so the farthest point is the one with the largest
        # |cross product|; it splits the span when that exceeds epsilon * chord length.
        value = np.abs(np.repeat(dx, lengths) * py - np.repeat(dy, lengths) * px)
        limit = epsilon * np.hypot(dx, dy)
        closed = limit == 0
        if closed.any():  # closed chord: distance to the span's end point instead
            on_closed = np.repeat(closed, lengths)
            value[on_closed] = np.hypot(px[on_closed], py[on_closed])
            limit[closed] = epsilon
        span_max = np.maximum.reduceat(value, starts)
        splits = np.repeat(span_max > limit, lengths)
        farthest = np.flatnonzero(splits & (value == np.repeat(span_max, lengths)))
        first = farthest[np.diff(right[farthest], prepend=-1) != 0]  # first farthest point of each splitting span
        keep[inside[first]] = True
        splits[first] = False
        inside = inside[splits]  # drop finished spans and the new kept points
    return points[keep], np.add.reduceat(keep, ends - sizes)


def rdp(points: np.ndarray, epsilon: float = SIMPLIFY_EPSILON) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification of one polyline (n, 2) with tolerance `epsilon`."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 3:
        return points.copy()
    return _rdp_many(points, np.array([len(points)]), epsilon)[0]


def _vertex_candidates(points: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 1-pixel resampling of each stroke, reduced to the points RDP can ever keep (see `simplify_strokes`).

    `points` (n, 2) holds the strokes one after the other, `sizes` their lengths; returns the same layout.
    Resampled positions along a stroke of length L are the arc lengths 0, 1, 2, ... < L, then L (`resample`).
    """
    stroke = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.cumsum(sizes) - sizes
    step = np.hypot(*np.diff(points, axis=0, prepend=points[:1]).T)
    step[starts] = 0.0  # no step from one stroke's end to the next stroke's start
    cum = np.cumsum(step)
    arc = cum - cum[starts][stroke]  # distance along its own stroke, (n,)
    total = arc[starts + sizes - 1]  # length of each stroke
    last = np.ceil(total) - 1  # last integer position below the length
    last = np.where(total - last > 1e-9, total, last)  # ... then the end itself, as `_resample_positions` does
    last = np.maximum(last, 0.0)
    below = np.floor(arc)
    values = np.minimum(np.concatenate([below, below + 1]), np.tile(last[stroke], 2))  # bracketing positions
    # Separate strokes along one axis (each spans [offset, offset + total]) so one sort and one interp do them all.
    offset = np.cumsum(total + 2.0) - (total + 2.0)
    key = np.unique(values + np.tile(offset[stroke], 2))
    along = arc + offset[stroke]
    candidates = np.stack([np.interp(key, along, points[:, 0]), np.interp(key, along, points[:, 1])], axis=1)
    counts = np.bincount(np.searchsorted(offset, key, side="right") - 1, minlength=len(sizes))
    return candidates, counts


def simplify_strokes(strokes: list[np.ndarray], epsilon: float = SIMPLIFY_EPSILON) -> list[np.ndarray]:
    """Aligned and scaled strokes -> `[rdp(resample(s)) for s in strokes]`, computed fast.

    Exactly the same points: along one segment of the original polyline the distance to any chord is a convex
    function (|linear|, or the distance to a point), so the farthest resampled point of any span always lies at one
    of the two resampled points that bracket an original vertex, or at a span end. RDP over only those candidates
    therefore keeps the same points as RDP over every resampled point: about 2 per input vertex instead of one per
    pixel of ink. `tests/test_simplify.py` checks it against the textbook recursion.
    """
    sizes = np.array([len(s) for s in strokes])
    candidates, counts = _vertex_candidates(np.concatenate(strokes)[:, :2].astype(np.float64), sizes)
    kept, counts = _rdp_many(candidates, counts, epsilon)
    return np.split(kept, np.cumsum(counts)[:-1])


def simplify(strokes: object) -> Drawing:
    """Canvas input or a raw drawing -> simplified drawing: list of int32 (n_i, 2) arrays within 0..255.

    Accepts anything `validate_canvas` accepts (lists of `[x, y, t]` points, or (n_i, 2|3) arrays) and raises
    `DrawingError` for the rest.
    """
    raw = validate_canvas(strokes)
    return [np.rint(s).astype(np.int32) for s in simplify_strokes(align_and_scale(raw))]
