"""training.bitmap_rows: a drawing's rendering takes the drawing's split; misfiled rows take their real class."""

import hashlib
import json

import numpy as np
import pytest

from sketchlab.data import bitmap_splits, read_bitmap_pairs, read_bitmaps
from sketchlab.prepare import from_simplified
from sketchlab.split import Split, split_of
from training import bitmap_rows
from training.bitmap_rows import Misfiled, nearest, rendering_splits, row_labels


def _drawing(k: int) -> list[list[list[int]]]:
    """A made-up simplified drawing, different for every k: a polyline with k-dependent corners."""
    rng = np.random.default_rng(k)
    pts = rng.integers(0, 256, size=(6, 2))
    return [[pts[:, 0].tolist(), pts[:, 1].tolist()]]


def _folder(tmp_path, n_drawings=40, extra_rows=5):
    """A folder with `n_drawings` cat drawings and cat.npy = their renderings, then `extra_rows` unrelated bitmaps."""
    (tmp_path / "full" / "simplified").mkdir(parents=True)
    (tmp_path / "full" / "numpy_bitmap").mkdir(parents=True)
    lines, rasters = [], []
    for k in range(n_drawings):
        drawing = _drawing(k)
        lines.append(json.dumps({"word": "cat", "key_id": str(1000 + k), "drawing": drawing}))
        strokes = [np.column_stack(s) for s in drawing]
        rasters.append(from_simplified(strokes).raster.reshape(-1))
    (tmp_path / "full" / "simplified" / "cat.ndjson").write_text("\n".join(lines) + "\n")
    noise = np.random.default_rng(99).integers(0, 2, size=(extra_rows, 784)).astype(np.uint8) * 255
    np.save(tmp_path / "full" / "numpy_bitmap" / "cat.npy", np.concatenate([np.stack(rasters), noise]))
    return tmp_path


def test_a_rendering_takes_its_drawings_split_and_the_rest_their_own(tmp_path):
    root = _folder(tmp_path)
    cache = tmp_path / "cache"
    splits = rendering_splits(root, cache_dir=cache)["cat"]
    assert splits[:40] == [split_of(str(1000 + k)) for k in range(40)]
    assert splits[40:] == bitmap_splits("cat", 45, {})[40:]  # unmatched rows: their (word, row) identity
    assert len(list(cache.glob("bitmap_rows-*.json"))) == 1
    assert rendering_splits(root, cache_dir=cache)["cat"] == splits  # read back from the cache


def test_a_folder_too_large_to_match_keeps_the_pairs_files_splits(tmp_path, monkeypatch):
    root = _folder(tmp_path, n_drawings=5)
    monkeypatch.setattr(bitmap_rows, "MATCH_LIMIT", 10)
    with pytest.warns(UserWarning, match="too many to match"):
        assert rendering_splits(root, cache_dir=tmp_path / "cache") == {}
        files = list(bitmap_rows.bitmap_files(root))
    assert files[0].splits == bitmap_splits("cat", 10, {})


def test_misfiled_rows_are_relabelled_only_where_their_bytes_match():
    bitmaps = np.arange(6 * 784, dtype=np.int64).astype(np.uint8).reshape(6, 784)
    sha1 = hashlib.sha1(np.ascontiguousarray(bitmaps[0:2]).tobytes()).hexdigest()
    fix = (Misfiled("clock", 0, 2, "alarm clock", sha1),)
    assert row_labels("clock", bitmaps, fix) == ["alarm clock"] * 2 + ["clock"] * 4
    other = bitmaps.copy()
    other[0, 0] ^= 1  # another copy of the file (a full download): left as it is
    assert row_labels("clock", other, fix) == ["clock"] * 6
    assert row_labels("cat", bitmaps, fix) == ["cat"] * 6
    assert row_labels("clock", bitmaps[:1], fix) == ["clock"]  # a shorter file cannot hold the block


def test_nearest_finds_the_best_reference_row_across_chunks():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 8)).astype(np.float32)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    best, arg = nearest(ref[[3, 41]], ref, chunk=7)
    assert arg.tolist() == [3, 41] and np.allclose(best, 1.0, atol=1e-5)


@pytest.mark.data
def test_the_shared_samples_misfiled_alarm_clocks_and_renderings(data_dir):
    labels = row_labels("clock", read_bitmaps(data_dir, "clock"))
    assert labels[:3606] == ["alarm clock"] * 3606 and set(labels[3606:]) == {"clock"}
    splits = {f.word: f.splits for f in bitmap_rows.bitmap_files(data_dir, {"cat"})}["cat"]
    pairs = read_bitmap_pairs(data_dir)["cat"]
    row, key = next(iter(pairs.items()))
    assert splits[int(row)] == split_of(key)  # a listed pair is a rendering: the matching agrees with the file
    assert Split.TEST in splits
