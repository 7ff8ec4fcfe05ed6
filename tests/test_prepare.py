import numpy as np
import pytest

from sketchlab.errors import DrawingError
from sketchlab.prepare import from_canvas, from_simplified
from sketchlab.raster import rasterize
from sketchlab.simplify import simplify
from sketchlab.strokes import START_TOKEN, to_stroke3


def test_from_canvas_is_simplify_then_from_simplified(square_canvas):
    p = from_canvas(square_canvas)
    q = from_simplified(simplify(square_canvas))
    np.testing.assert_array_equal(p.raster, q.raster)
    np.testing.assert_array_equal(p.stroke3, to_stroke3(p.simplified))
    np.testing.assert_array_equal(p.raster, rasterize(p.simplified))


def test_stroke5_is_normalised(square_canvas):
    p = from_canvas(square_canvas)
    s5 = p.stroke5(scale=5.0, max_len=10)
    assert s5.shape == (11, 5)
    np.testing.assert_array_equal(s5[0], START_TOKEN)
    np.testing.assert_allclose(s5[2, :2], p.stroke3[1, :2] / 5.0)


def test_bad_canvas_raises_drawing_error():
    with pytest.raises(DrawingError):
        from_canvas([])


def test_a_dot_is_one_point_per_stroke_at_the_origin_drawn_as_a_disc():
    one = from_canvas([[[40, 40, 0], [40, 40, 30]]])  # a tap held still
    assert [s.tolist() for s in one.simplified] == [[[0, 0]]]
    np.testing.assert_array_equal(one.stroke3, [[0, 0, 1]])
    assert one.raster[13:15, 13:15].min() > 0 and one.raster.sum() < 255 * 4  # a small disc in the middle
    assert one.stroke5(scale=5.0).shape == (2, 5)
    two = from_canvas([[[40, 40, 0]], [[40, 40, 300]]])  # two taps on one spot
    assert [s.tolist() for s in two.simplified] == [[[0, 0]], [[0, 0]]]
    apart = from_canvas([[[0, 0, 0]], [[100, 40, 300]]])  # two taps apart: scaled like any drawing
    assert [s.tolist() for s in apart.simplified] == [[[0, 0]], [[255, 102]]]


def test_thousand_point_canvas(square_canvas):
    rng = np.random.default_rng(0)
    strokes = [np.column_stack([np.cumsum(rng.normal(0, 3, (125, 2)), 0), np.arange(125)]).tolist() for _ in range(8)]
    p = from_canvas(strokes)
    assert p.raster.shape == (28, 28) and len(p.simplified) == 8
