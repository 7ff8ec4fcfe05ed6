import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchlab.errors import DrawingError
from sketchlab.simplify import SIMPLIFY_EPSILON, align_and_scale, rdp, resample, simplify, simplify_strokes
from sketchlab.strokes import MIN_EXTENT


def textbook_rdp(points: np.ndarray, epsilon: float = SIMPLIFY_EPSILON) -> np.ndarray:
    """The recursive Ramer-Douglas-Peucker as usually written, to check the vectorised one against."""
    if len(points) < 3:
        return points
    a, b = points[0], points[-1]
    ab = b - a
    norm = np.hypot(*ab)
    inner = points[1:-1]
    if norm > 0:
        dist = np.abs(ab[0] * (inner[:, 1] - a[1]) - ab[1] * (inner[:, 0] - a[0])) / norm
    else:
        dist = np.hypot(inner[:, 0] - a[0], inner[:, 1] - a[1])
    i = int(np.argmax(dist)) + 1
    if dist[i - 1] <= epsilon:
        return points[[0, -1]]
    return np.concatenate([textbook_rdp(points[: i + 1], epsilon)[:-1], textbook_rdp(points[i:], epsilon)])


walks = st.lists(
    st.lists(
        st.tuples(st.floats(-50, 50, allow_nan=False), st.floats(-50, 50, allow_nan=False)), min_size=1, max_size=40
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(walks)
def test_fast_simplify_equals_rdp_of_full_resampling(steps):
    strokes = [np.cumsum(np.array(s, dtype=np.float64), axis=0) for s in steps]
    if np.ptp(np.concatenate(strokes), axis=0).max() < MIN_EXTENT:  # a single point: refused, tested elsewhere
        return
    scaled = align_and_scale(strokes)
    fast = simplify_strokes(scaled)
    for stroke, got in zip(scaled, fast, strict=True):
        want = textbook_rdp(resample(stroke))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-6)  # same points; the fast path's arc offsets cost ~1e-12
        np.testing.assert_array_equal(rdp(resample(stroke)), want)


def test_rdp_keeps_corners_and_drops_collinear_points():
    line = np.column_stack([np.arange(0, 101.0), np.zeros(101)])
    np.testing.assert_array_equal(rdp(line), [[0, 0], [100, 0]])
    corner = np.array([[0, 0], [50, 0], [100, 0], [100, 50], [100, 100]], dtype=float)
    np.testing.assert_array_equal(rdp(corner), [[0, 0], [100, 0], [100, 100]])
    bump = np.array([[0, 0], [50, 1.9], [100, 0]])  # within epsilon 2.0
    assert len(rdp(bump)) == 2


def test_resample_spacing():
    pts = resample(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 5.5]]))
    steps = np.hypot(*np.diff(pts, axis=0).T)
    np.testing.assert_allclose(steps[:-1], 1.0)
    assert steps[-1] <= 1.0
    np.testing.assert_array_equal(pts[-1], [10, 5.5])


def test_simplify_output_format(square_canvas):
    out = simplify(square_canvas)
    allxy = np.concatenate(out)
    assert all(s.dtype == np.int32 and s.ndim == 2 and s.shape[1] == 2 for s in out)
    assert allxy.min() == 0 and allxy.max() == 255  # aligned top-left, longer side scaled to 255
    np.testing.assert_array_equal(out[0], [[0, 0], [255, 0], [255, 255], [0, 255], [0, 0]])
    np.testing.assert_array_equal(out[1], [[0, 0], [255, 255]])  # 101 collinear points -> 2


def test_simplify_is_translation_and_scale_invariant(square_canvas):
    moved = [[[3 * x - 700, 3 * y + 40, t] for x, y, t in s] for s in square_canvas]
    for a, b in zip(simplify(square_canvas), simplify(moved), strict=True):
        np.testing.assert_array_equal(a, b)


def test_simplify_keeps_dots_and_uses_the_longer_side():
    out = simplify([[[0, 0, 0], [100, 50, 10]], [[30, 30, 20]]])
    np.testing.assert_allclose(out[0], [[0, 0], [255, 127.5]], atol=0.5)  # 50 * 255 / 100, rounded
    np.testing.assert_array_equal(out[1], [[76, 76]])


def test_simplify_turns_a_dot_into_one_point_at_the_origin():
    assert [s.tolist() for s in simplify([[[1, 1, 0]]])] == [[[0, 0]]]
    nearly_one_spot = [[[1, 1, 0], [1, 1 + MIN_EXTENT / 2, 9]], [[1, 1, 20]]]
    assert [s.tolist() for s in simplify(nearly_one_spot)] == [[[0, 0]], [[0, 0]]]


def test_simplify_rejects_bad_input():
    for bad in ([], [[]], [[[float("nan"), 1, 0]]], [[["1", 1, 0]]]):
        with pytest.raises(DrawingError):
            simplify(bad)


@settings(max_examples=200, deadline=None)
@given(walks)
def test_simplify_never_crashes_and_stays_in_frame(steps):
    strokes = [np.cumsum(np.array(s, dtype=np.float64), axis=0).tolist() for s in steps]
    try:
        out = simplify(strokes)
    except DrawingError:
        return
    allxy = np.concatenate(out)
    assert allxy.min() >= 0 and allxy.max() <= 255 and len(out) == len(strokes)


@pytest.mark.data
def test_simplify_matches_google_on_real_pairs(data_dir):
    """A sample of the raw/simplified pairs (scripts/check_preprocessing.py measures all of them)."""
    from sketchlab.data import iter_drawings
    from sketchlab.raster import rasterize

    words = ["cat", "airplane", "snowman", "eye", "hexagon", "elephant"]
    google = {r.key_id: r.drawing for r in iter_drawings(data_dir, "simplified", words) if r.key_id}
    errors, within = [], []
    for record in iter_drawings(data_dir, "raw", words):
        if record.key_id not in google:
            continue
        ours = simplify(record.drawing)
        errors.append(np.abs(rasterize(ours).astype(float) - rasterize(google[record.key_id])).mean())
        ratio = sum(map(len, ours)) / sum(map(len, google[record.key_id]))
        within.append(abs(ratio - 1) <= 0.1)
    assert len(errors) >= 50
    assert np.mean(errors) <= 2.0 and np.mean(within) >= 0.95
