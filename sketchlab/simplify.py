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
from .strokes import MIN_EXTENT, Drawing, split_flat, validate_canvas_flat

SIMPLIFIED_SIZE = 255  # the longer side after scaling, as in the official "simplified" files
RESAMPLE_SPACING = 1.0  # pixels between resampled points
SIMPLIFY_EPSILON = 2.0  # RDP tolerance used for the official "simplified" files


def align_and_scale(drawing: Drawing, size: float = SIMPLIFIED_SIZE) -> Drawing:
    """Shift the drawing so its minimum x and y are 0 and scale it uniformly so its longer side is `size`.

    Returns new (n_i, 2) float64 arrays. A drawing whose points all coincide (a tap, or taps on one spot) has no size
    to scale: every point goes to (0, 0), a dot, as a one-point drawing sits in the simplified files after step 1.
    """
    xy = [np.asarray(s, dtype=np.float64)[:, :2] for s in drawing]
    return split_flat(_align_and_scale_flat(np.concatenate(xy), size), np.array([len(s) for s in xy]))


def _align_and_scale_flat(xy: np.ndarray, size: float = SIMPLIFIED_SIZE) -> np.ndarray:
    """`align_and_scale` on all points at once, (N, 2) -> (N, 2) float64."""
    lo = xy.min(axis=0)
    extent = float((xy.max(axis=0) - lo).max())
    if not np.isfinite(extent):
        raise DrawingError("the drawing holds coordinates that are not finite")
    if extent < MIN_EXTENT:  # a dot: scaling it to `size` would only blow up rounding noise
        return np.zeros_like(xy)
    return (xy - lo) * (size / extent)


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
    inside = (~keep).nonzero()[0]  # points of spans that may still split, sorted
    # ~15 passes of ~40 array operations each on ~2,000 points: ndarray methods and preallocated outputs instead of
    # np.diff / np.repeat / np.flatnonzero, whose Python wrappers cost as much as the arithmetic here.
    while len(inside):
        n = len(inside)
        kept = keep.nonzero()[0]
        right = kept.searchsorted(inside)  # span id: index of the span's right end in `kept`
        new_span = np.empty(n, dtype=bool)
        new_span[0] = True
        np.not_equal(right[1:], right[:-1], out=new_span[1:])
        starts = new_span.nonzero()[0]  # each span is one run of `inside`
        lengths = np.empty_like(starts)
        np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
        lengths[-1] = n - starts[-1]
        ends_right = right[starts]
        a, b = kept[ends_right - 1], kept[ends_right]  # span ends, one per span
        ax, ay = xs[a], ys[a]
        dx, dy = xs[b] - ax, ys[b] - ay
        px, py = xs[inside] - ax.repeat(lengths), ys[inside] - ay.repeat(lengths)
        # Within a span the chord length is constant, so the farthest point is the one with the largest
        # |cross product|; it splits the span when that exceeds epsilon * chord length.
        value = dx.repeat(lengths) * py
        value -= dy.repeat(lengths) * px
        np.abs(value, out=value)
        limit = np.hypot(dx, dy)
        limit *= epsilon
        closed = limit == 0
        if closed.any():  # closed chord: distance to the span's end point instead
            on_closed = closed.repeat(lengths)
            value[on_closed] = np.hypot(px[on_closed], py[on_closed])
            limit[closed] = epsilon
        span_max = np.maximum.reduceat(value, starts)
        splitting = span_max > limit
        if not splitting.any():
            break
        splits = splitting.repeat(lengths)
        farthest = ((value == span_max.repeat(lengths)) & splits).nonzero()[0]
        span_of = right[farthest]
        first_of_span = np.empty(len(farthest), dtype=bool)
        first_of_span[0] = True
        np.not_equal(span_of[1:], span_of[:-1], out=first_of_span[1:])
        first = farthest[first_of_span]  # the first farthest point of each splitting span
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
    points = np.concatenate(strokes)[:, :2].astype(np.float64)
    return split_flat(*_simplify_flat(points, sizes, epsilon))


def _simplify_flat(points: np.ndarray, sizes: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """`simplify_strokes` on strokes stored one after the other: (N, 2), (S,) -> kept points (K, 2), sizes (S,)."""
    candidates, counts = _vertex_candidates(points, sizes)
    return _rdp_many(candidates, counts, epsilon)


def simplify(strokes: object) -> Drawing:
    """Canvas input or a raw drawing -> simplified drawing: list of int32 (n_i, 2) arrays within 0..255.

    Accepts anything `validate_canvas` accepts (lists of `[x, y, t]` points, or (n_i, 2|3) arrays) and raises
    `DrawingError` for the rest. A drawing that is only a dot (one tap, or taps on one spot) is a drawing, not an
    error: it simplifies to one point per stroke at (0, 0).
    """
    raw, sizes = validate_canvas_flat(strokes, min_extent=False)
    kept, sizes = _simplify_flat(_align_and_scale_flat(raw[:, :2]), sizes, SIMPLIFY_EPSILON)
    return split_flat(np.rint(kept).astype(np.int32), sizes)
