import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchlab.errors import DrawingError
from sketchlab.strokes import (
    MAX_POINTS,
    PAD_ROW,
    START_TOKEN,
    denormalize,
    from_ndjson_strokes,
    from_stroke3,
    from_stroke5,
    normalize,
    scale_factor,
    to_ndjson_strokes,
    to_stroke3,
    to_stroke5,
    validate_canvas,
)

coords = st.integers(min_value=0, max_value=255)
strokes_st = st.lists(st.lists(st.tuples(coords, coords), min_size=1, max_size=30), min_size=1, max_size=8)


def as_drawing(strokes):
    return [np.array(s, dtype=np.float64) for s in strokes]


@settings(max_examples=200, deadline=None)
@given(strokes_st)
def test_stroke3_round_trip(strokes):
    drawing = as_drawing(strokes)
    back = from_stroke3(to_stroke3(drawing))
    assert len(back) == len(drawing)
    for a, b in zip(drawing, back, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


@settings(max_examples=200, deadline=None)
@given(strokes_st, st.integers(min_value=1, max_value=300))
def test_stroke5_round_trip_and_layout(strokes, max_len):
    s3 = to_stroke3(as_drawing(strokes))
    s5 = to_stroke5(s3, max_len)
    assert s5.shape == (max_len + 1, 5) and s5.dtype == np.float32
    np.testing.assert_array_equal(s5[0], START_TOKEN)
    assert np.all(s5[1:, 2:].sum(axis=1) == 1)  # one-hot pen state on every row
    n = min(len(s3), max_len)
    np.testing.assert_array_equal(s5[n + 1 :], np.tile(PAD_ROW, (max_len - n, 1)))
    back = from_stroke5(s5)
    np.testing.assert_allclose(back[:, :2], s3[:n, :2])
    if n == len(s3):
        np.testing.assert_array_equal(back[:, 2], s3[:, 2])
    assert back[-1, 2] == 1  # a cut drawing ends with a pen lift


def test_stroke5_without_max_len_has_no_padding(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    s5 = to_stroke5(s3)
    assert s5.shape == (len(s3) + 1, 5) and s5[-1, 3] == 1


def test_stroke3_format(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    assert s3.shape == (8, 3)
    np.testing.assert_array_equal(s3[0], [0, 40, 0])  # first row: first point's offset from the origin
    np.testing.assert_array_equal(s3[:, 2], [0, 0, 0, 1, 0, 0, 1, 1])


def test_functions_do_not_mutate_their_input(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    before = s3.copy()
    normalize(s3, 3.0)
    to_stroke5(s3, 10)
    from_stroke3(s3)
    np.testing.assert_array_equal(s3, before)


@settings(max_examples=100, deadline=None)
@given(strokes_st, st.floats(min_value=0.1, max_value=100))
def test_normalize_inverse(strokes, scale):
    s3 = to_stroke3(as_drawing(strokes))
    np.testing.assert_allclose(denormalize(normalize(s3, scale), scale), s3, rtol=1e-5, atol=1e-3)


def test_scale_factor_is_offset_std():
    a = np.array([[0, 0, 0], [3, 4, 0], [-3, -4, 1]], dtype=np.float32)
    assert math.isclose(scale_factor([a]), float(np.std([3, 4, -3, -4])), rel_tol=1e-6)
    with pytest.raises(DrawingError):
        scale_factor([a[:1]])


def test_ndjson_round_trip(simplified_cat):
    nested = to_ndjson_strokes(simplified_cat)
    assert nested[0] == [[0, 60, 120, 255], [40, 0, 40, 60]]
    back = from_ndjson_strokes(nested)
    for a, b in zip(simplified_cat, back, strict=True):
        np.testing.assert_array_equal(a, b)


def test_validate_canvas_accepts_canvas_and_xy(square_canvas):
    out = validate_canvas(square_canvas)
    assert [s.shape for s in out] == [(5, 3), (101, 3)]
    xy = validate_canvas([[[0, 0], [10, 5]]])
    np.testing.assert_array_equal(xy[0], [[0, 0, 0], [10, 5, 0]])
    arrays = validate_canvas([np.array([[0.5, 1, 2], [3, 4, 5]])])
    assert arrays[0].dtype == np.float64


BAD_INPUTS = {
    "none": None,
    "string": "[[1,2,3]]",
    "dict": {"strokes": []},
    "number": 3,
    "no strokes": [],
    "empty stroke": [[]],
    "single point": [[[5, 5, 0]]],
    "same point twice": [[[5, 5, 0], [5, 5, 10]]],
    "denormal extent": [[[0, 0, 0], [0, 2.2e-313, 10]]],
    "nan": [[[0, 0, 0], [float("nan"), 1, 2]]],
    "inf": [[[0, 0, 0], [1, float("inf"), 2]]],
    "huge": [[[0, 0, 0], [1e12, 1, 2]]],
    "huge negative": [[[0, 0, 0], [-1e12, 1, 2]]],
    "too many points": [[[i % 500, i // 500, i] for i in range(100_000)]],
    "too many strokes": [[[0, 0, 0], [1, 1, 1]]] * 5_000,
    "flat stroke": [[1, 2, 3]],
    "too deep": [[[[1, 2, 3]]]],
    "four numbers": [[[1, 2, 3, 4], [5, 6, 7, 8]]],
    "one number": [[[1], [2]]],
    "string coordinate": [[[0, 0, 0], ["1", 2, 3]]],
    "none coordinate": [[[0, 0, 0], [None, 2, 3]]],
    "ragged": [[[0, 0, 0], [1, 2]], [[3, 4, 5, 6]]],
    "object": [[object()]],
}


@pytest.mark.parametrize("bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_validate_canvas_rejects_bad_input_with_drawing_error(bad):
    with pytest.raises(DrawingError) as info:
        validate_canvas(bad)
    assert isinstance(info.value, ValueError) and str(info.value)


def test_booleans_are_numbers_in_both_paths():
    fast = validate_canvas([[[0, 0, 0], [True, 2, 3]]])  # well-formed: one numpy conversion
    slow = validate_canvas([[[0, 0, 0], [True, 2]]])  # mixed point lengths: checked point by point
    np.testing.assert_array_equal(fast[0][1], [1, 2, 3])
    np.testing.assert_array_equal(slow[0][1], [1, 2, 0])


def test_max_points_is_enforced_exactly():
    ok = [[[i % 100, i // 100, i] for i in range(MAX_POINTS)]]
    assert sum(map(len, validate_canvas(ok))) == MAX_POINTS
    with pytest.raises(DrawingError, match="points"):
        validate_canvas([*ok, [[0, 0, 0]]])


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
        lambda children: st.lists(children, max_size=5),
        max_leaves=40,
    )
)
def test_validate_canvas_never_raises_anything_else(payload):
    try:
        out = validate_canvas(payload)
    except DrawingError:
        return
    assert all(s.ndim == 2 and s.shape[1] == 3 and np.all(np.isfinite(s)) for s in out)


@pytest.mark.parametrize(
    "bad", [None, [], [[[1, 2], [3]]], [[[1, 2], [3, "x"]]], [[[float("nan")], [1]]], [[[], []]], "x"]
)
def test_from_ndjson_strokes_rejects_bad_nesting(bad):
    with pytest.raises(DrawingError):
        from_ndjson_strokes(bad)


def test_arrays_take_the_same_checks_as_lists(square_canvas):
    arrays = validate_canvas(square_canvas)
    again = validate_canvas(arrays)  # already validated: one concatenate, same result
    for a, b in zip(arrays, again, strict=True):
        np.testing.assert_array_equal(a, b)
    mixed = validate_canvas([np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[1.0, 1.0, 5.0]])])  # (n, 2) and (n, 3)
    np.testing.assert_array_equal(mixed[0], [[0, 0, 0], [3, 4, 0]])
    for bad in ([np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 2.0]])], [np.array([[0.0, 0.0, 0.0], [1e12, 1.0, 2.0]])]):
        with pytest.raises(DrawingError):
            validate_canvas(bad)
