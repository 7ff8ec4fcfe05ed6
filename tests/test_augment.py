import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchlab.augment import (
    _cut_along_path,
    augment_stroke3,
    augmented_raster,
    drop_points,
    drop_strokes,
    random_prefix,
    random_rotate,
    random_scale,
)
from sketchlab.raster import rasterize
from sketchlab.simplify import simplify
from sketchlab.strokes import from_stroke3, to_stroke3


def cat_stroke3(simplified):
    return to_stroke3(simplified)


def test_pure_functions_do_not_mutate(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    before = s3.copy()
    rng = np.random.default_rng(0)
    for fn in (random_scale, random_rotate, drop_points, augment_stroke3):
        out = fn(s3, rng)
        assert out is not s3
    drop_strokes(simplified_cat, rng)
    np.testing.assert_array_equal(s3, before)


def test_scale_and_rotate_keep_pen_states(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    rng = np.random.default_rng(1)
    for out in (random_scale(s3, rng), random_rotate(s3, rng)):
        assert out.shape == s3.shape
        np.testing.assert_array_equal(out[:, 2], s3[:, 2])
    rot = random_rotate(s3, rng)
    np.testing.assert_allclose(np.hypot(rot[:, 0], rot[:, 1]), np.hypot(s3[:, 0], s3[:, 1]), rtol=1e-5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_drop_points_keeps_stroke_ends_and_shape(lengths, seed):
    rng = np.random.default_rng(seed)
    drawing = [np.cumsum(rng.integers(-5, 6, (n, 2)), axis=0) for n in lengths]
    s3 = to_stroke3(drawing)
    out = drop_points(s3, rng, prob=0.5)
    assert len(out) <= len(s3) and out[:, 2].sum() == s3[:, 2].sum()  # same strokes
    back, orig = from_stroke3(out), from_stroke3(s3)
    for a, b in zip(back, orig, strict=True):
        np.testing.assert_allclose(a[[0, -1]], b[[0, -1]], atol=1e-4)  # stroke ends stay where they were


def test_drop_strokes_keeps_at_least_one(simplified_cat):
    rng = np.random.default_rng(0)
    for _ in range(50):
        out = drop_strokes(simplified_cat, rng, prob=0.99)
        assert 1 <= len(out) <= len(simplified_cat)


def test_augmented_raster_redraws_a_changed_copy_in_the_official_frame(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    before = s3.copy()
    original = rasterize(simplified_cat)
    rasters = [augmented_raster(s3, np.random.default_rng(seed)) for seed in range(8)]
    np.testing.assert_array_equal(s3, before)
    assert all(r.shape == (28, 28) and r.dtype == np.uint8 for r in rasters)
    assert all(not np.array_equal(r, original) for r in rasters)
    np.testing.assert_array_equal(augmented_raster(s3, np.random.default_rng(3)), rasters[3])  # seeded
    # re-aligned and re-scaled like Google's simplified drawings: the ink keeps the official margins
    for r in rasters:
        rows, cols = np.flatnonzero(r.any(axis=1)), np.flatnonzero(r.any(axis=0))
        assert rows[0] >= 1 and cols[0] >= 1 and rows[-1] <= 26 and cols[-1] <= 26
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) >= 20  # the longer side fills the frame
    assert abs(np.mean(rasters) - original.mean()) < 0.35 * original.mean()  # about as much ink


def test_augmented_raster_of_a_single_point_draws_the_dot_as_the_canvas_path_does():
    dot = np.array([[100.0, 100.0, 1.0]], dtype=np.float32)  # a dot is aligned to (0, 0), as simplify puts a tap
    raster = augmented_raster(dot, np.random.default_rng(0))
    np.testing.assert_array_equal(raster, rasterize([np.array([[0, 0]])]))
    assert raster.any()


def test_random_prefix_is_the_drawing_so_far_framed_as_the_canvas_frames_it(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    n = len(simplified_cat)
    assert n >= 3
    seen = set()
    for seed in range(30):
        out = random_prefix(s3, np.random.default_rng(seed), 1.0)
        cut = from_stroke3(out)
        k = len(cut)
        assert 1 <= k < n
        np.testing.assert_array_equal(out, to_stroke3(simplify(simplified_cat[:k])))
        points = np.concatenate(cut)
        assert points.min() == 0 and points.max() == 255  # re-framed: its longer side spans 0..255 again
        seen.add(k)
    assert len(seen) > 1


def test_random_prefix_leaves_the_rest_alone(simplified_cat):
    s3 = to_stroke3(simplified_cat)
    rng, fresh = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(random_prefix(s3, rng, 0.0), s3)
    assert rng.random() == fresh.random()  # draws nothing when off: recipes without it reproduce exactly
    one = to_stroke3(simplified_cat[:1])
    np.testing.assert_array_equal(random_prefix(one, np.random.default_rng(0), 1.0), one)


def test_random_prefix_anywhere_ends_on_the_pens_path_mostly_mid_stroke():
    square = [np.array([[0, 0], [100, 0], [100, 100]], float), np.array([[0, 100], [0, 0]], float)]  # length 300
    mid_stroke = 0
    for seed in range(40):
        cut = _cut_along_path(square, np.random.default_rng(seed))
        assert 1 <= len(cut) <= 2 and all(np.array_equal(a, b) for a, b in zip(cut[:-1], square, strict=False))
        last, whole = cut[-1], square[len(cut) - 1]
        np.testing.assert_array_equal(last[:-1], whole[: len(last) - 1])  # the stroke so far, then the cut point
        x, y = last[-1]
        assert min(abs(x), abs(x - 100)) < 1e-9 or min(abs(y), abs(y - 100)) < 1e-9  # on the square's outline
        mid_stroke += not any(np.allclose(last[-1], v) for v in whole)
    assert mid_stroke > 30
    out = from_stroke3(random_prefix(to_stroke3(square), np.random.default_rng(3), 1.0, anywhere=True))
    assert np.concatenate(out).max() == 255  # framed again as the canvas frames a drawing in progress
    one = to_stroke3(square[:1])
    assert len(random_prefix(one, np.random.default_rng(1), 1.0, anywhere=True)) <= len(one) + 1  # one stroke: cut too
