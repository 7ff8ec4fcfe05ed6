import json

import numpy as np
import pytest

from sketchlab.raster import SIDE, rasterize, rasterize_batch


def test_shape_dtype_and_background(simplified_cat):
    img = rasterize(simplified_cat)
    assert img.shape == (SIDE, SIDE) and img.dtype == np.uint8
    assert img.max() == 255 and img[0].max() == 0 and img[:, 0].max() == 0  # ink, and a blank margin


def test_empty_drawing_is_blank():
    assert rasterize([]).max() == 0


def test_drawing_is_centred():
    horizontal = [np.array([[0, 0], [255, 0]])]
    img = rasterize(horizontal).astype(float)
    rows = img.sum(axis=1)
    centre = (rows * np.arange(SIDE)).sum() / rows.sum()
    assert abs(centre - (SIDE - 1) / 2) < 0.75  # the one-row-high line is centred vertically
    cols = img.sum(axis=0)
    np.testing.assert_allclose(cols, cols[::-1], atol=30)  # and symmetric left-right


def test_dot_becomes_a_round_blob():
    img = rasterize([np.array([[128, 128]])]).astype(float)
    assert img.max() > 0
    np.testing.assert_allclose(img, img.T, atol=2)


def test_does_not_mutate_input(simplified_cat):
    before = [s.copy() for s in simplified_cat]
    rasterize(simplified_cat)
    for a, b in zip(before, simplified_cat, strict=True):
        np.testing.assert_array_equal(a, b)


def test_batch(simplified_cat):
    batch = rasterize_batch([simplified_cat, simplified_cat[:1]])
    assert batch.shape == (2, SIDE, SIDE)
    np.testing.assert_array_equal(batch[0], rasterize(simplified_cat))
    assert rasterize_batch([]).shape == (0, SIDE, SIDE)


@pytest.mark.data
def test_matches_googles_bitmaps(data_dir):
    """200 of the 3,586 official pairs (scripts/check_preprocessing.py measures all of them)."""
    from sketchlab.data import iter_drawings, read_bitmaps

    pairs = json.loads((data_dir / "full" / "numpy_bitmap_pairs.json").read_text())
    errors, corrs = [], []
    for word in ["cat", "airplane", "eye", "bicycle"]:
        bitmaps = read_bitmaps(data_dir, word)
        simplified = {r.key_id: r.drawing for r in iter_drawings(data_dir, "simplified", [word]) if r.key_id}
        for row, key_id in list(pairs[word].items())[:50]:
            google = bitmaps[int(row)].reshape(SIDE, SIDE).astype(float)
            ours = rasterize(simplified[key_id]).astype(float)
            errors.append(np.abs(google - ours).mean())
            corrs.append(np.corrcoef(google.ravel(), ours.ravel())[0, 1])
    assert np.mean(errors) <= 2.0
    assert np.mean(corrs) >= 0.995
