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
from .strokes import Drawing, validate_canvas

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
    if not extent > 0:
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


def _chord_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point (n, 2) to the chord from a[i] to b[i]; to a[i] itself where the chord is closed."""
    ab = b - a
    norm = np.hypot(ab[:, 0], ab[:, 1])
    cross = np.abs(ab[:, 0] * (points[:, 1] - a[:, 1]) - ab[:, 1] * (points[:, 0] - a[:, 0]))
    to_a = np.hypot(points[:, 0] - a[:, 0], points[:, 1] - a[:, 1])
    return np.where(norm > 0, cross / np.where(norm > 0, norm, 1.0), to_a)


def _rdp_many(polylines: list[np.ndarray], epsilon: float) -> list[np.ndarray]:
    """Ramer-Douglas-Peucker on several polylines at once.

    The textbook recursion keeps the point of a span farthest from the span's chord (the first one on ties) when it
    is farther than `epsilon`, then recurses on both halves. Spans are independent, so here every open span of every
    polyline is handled in one vectorised pass per recursion level: ~10-20 numpy passes for a whole drawing instead
    of a few numpy calls per span (a 540-point scribble has ~1,000 spans).
    """
    sizes = [len(p) for p in polylines]
    points = np.concatenate(polylines)
    ends = np.cumsum(sizes)
    keep = np.zeros(len(points), dtype=bool)
    keep[ends - np.array(sizes)] = True  # first point of each polyline
    keep[ends - 1] = True  # last point: spans never cross from one polyline to the next
    active = ~keep  # points inside spans that may still split
    while active.any():
        kept = np.flatnonzero(keep)
        inside = np.flatnonzero(active)
        right = np.searchsorted(kept, inside)  # span id = index of its right end in `kept`
        dist = _chord_distances(points[inside], points[kept[right - 1]], points[kept[right]])
        starts = np.flatnonzero(np.diff(right, prepend=-1))  # `inside` is sorted, so each span is one run
        span_max = np.maximum.reduceat(dist, starts)
        run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(inside))))
        farthest = (dist == span_max[run]) & (span_max[run] > epsilon)
        winners = inside[farthest][np.unique(run[farthest], return_index=True)[1]]  # first farthest per span
        keep[winners] = True
        active[inside[span_max[run] <= epsilon]] = False  # spans that did not split are done
        active[winners] = False
    return np.split(points[keep], np.cumsum([int(k.sum()) for k in np.split(keep, ends[:-1])])[:-1])


def rdp(points: np.ndarray, epsilon: float = SIMPLIFY_EPSILON) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification of one polyline (n, 2) with tolerance `epsilon`."""
    if len(points) < 3:
        return np.array(points, dtype=np.float64)
    return _rdp_many([np.asarray(points, dtype=np.float64)], epsilon)[0]


def _vertex_candidates(stroke: np.ndarray) -> np.ndarray:
    """The 1-pixel resampling of one stroke (n, 2), reduced to the points RDP can ever keep (see `simplify_stroke`)."""
    if len(stroke) < 2:
        return stroke.copy()
    dist = _arc_lengths(stroke)
    total = dist[-1]
    if total == 0:
        return stroke[:1].copy()
    at = _resample_positions(total, RESAMPLE_SPACING)
    below = np.minimum(np.searchsorted(at, dist, side="right") - 1, len(at) - 1)
    candidates = np.unique(np.concatenate([below, np.minimum(below + 1, len(at) - 1)]))  # 0 and the end included
    return _points_at(stroke, dist, at[candidates])


def simplify_strokes(strokes: list[np.ndarray], epsilon: float = SIMPLIFY_EPSILON) -> list[np.ndarray]:
    """Aligned and scaled strokes -> `[rdp(resample(s)) for s in strokes]`, computed fast.

    Exactly the same points: along one segment of the original polyline the distance to any chord is a convex
    function (|linear|, or the distance to a point), so the farthest resampled point of any span always lies at one
    of the two resampled points that bracket an original vertex, or at a span end. RDP over only those candidates
    therefore keeps the same points as RDP over every resampled point: about 2 per input vertex instead of one per
    pixel of ink. `tests/test_simplify.py` checks it.
    """
    return _rdp_many([_vertex_candidates(s) for s in strokes], epsilon)


def simplify(strokes: object) -> Drawing:
    """Canvas input or a raw drawing -> simplified drawing: list of int32 (n_i, 2) arrays within 0..255.

    Accepts anything `validate_canvas` accepts (lists of `[x, y, t]` points, or (n_i, 2|3) arrays) and raises
    `DrawingError` for the rest.
    """
    raw = validate_canvas(strokes)
    return [np.rint(s).astype(np.int32) for s in simplify_strokes(align_and_scale(raw))]
