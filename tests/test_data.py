import json
import pickle
import types

import numpy as np
import pytest

from sketchlab.data import (
    Record,
    count_lines,
    fingerprint,
    iter_drawings,
    parse_ndjson_line,
    read_bin,
    read_bitmaps,
    read_categories,
    read_ndjson,
    read_npz,
    rich_words,
    write_bin,
    write_npz,
)
from sketchlab.errors import DrawingError
from sketchlab.split import Split
from training.evaluate import RICH_FIRST_RELEASE


def write_layout(root, records_by_kind):
    for kind, records in records_by_kind.items():
        folder = root / "full" / kind
        folder.mkdir(parents=True, exist_ok=True)
        for word, lines in records.items():
            (folder / f"{word}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in lines))


def simplified_record(i, word="cat", **extra):
    return {
        "word": word,
        "key_id": str(1000 + i),
        "countrycode": "FR",
        "recognized": True,
        "timestamp": "2017-03-01 10:00:00 UTC",
        "drawing": [[[0, 10 + i, 255], [0, 40, 90]]],
        **extra,
    }


@pytest.fixture
def layout(tmp_path):
    cats = [simplified_record(i) for i in range(40)]
    no_key = {"word": "cat", "drawing": [[[1, 2, 3], [4, 5, 6]]], "recognized": False}  # missing optional fields
    write_layout(
        tmp_path,
        {
            "simplified": {"cat": [*cats, no_key], "dog": [simplified_record(i, "dog") for i in range(5)]},
            "raw": {
                "cat": [{"word": "cat", "key_id": "1000", "drawing": [[[10, 50, 300], [20, 60, 90], [0, 16, 40]]]}]
            },
        },
    )
    return tmp_path


def test_iter_drawings_streams_records_with_optional_fields(layout):
    records = iter_drawings(layout, "simplified")
    assert isinstance(records, types.GeneratorType)  # streaming, not a list
    records = list(records)
    assert len(records) == 46 and {r.word for r in records} == {"cat", "dog"}
    bare = [r for r in records if r.key_id is None][0]
    assert bare.timestamp is None and bare.countrycode is None and bare.recognized is False
    assert bare.drawing[0].shape == (3, 2)
    raw = next(iter_drawings(layout, "raw"))
    assert raw.drawing[0].shape == (3, 3)


def test_iter_drawings_filters(layout):
    assert len(list(iter_drawings(layout, words=["dog"]))) == 5
    assert len(list(iter_drawings(layout, words=["cat"], limit_per_word=3))) == 3
    per_split = {s: len(list(iter_drawings(layout, split=s))) for s in Split}
    assert sum(per_split.values()) == 46 and per_split[Split.TRAIN] > per_split[Split.TEST]
    with pytest.raises(ValueError):
        list(iter_drawings(layout, kind="bitmap"))


def test_read_ndjson_skips_or_raises_on_bad_lines(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_text(json.dumps(simplified_record(1)) + "\n{not json\n\n" + '{"word": "x"}\n')
    assert len(list(read_ndjson(path))) == 1
    with pytest.raises(DrawingError):
        list(read_ndjson(path, skip_bad=False))


def test_parse_ndjson_line_rejects_bad_drawings():
    with pytest.raises(DrawingError):
        parse_ndjson_line(json.dumps({"word": "cat", "drawing": [[[1, 2], [3]]]}))


def test_read_categories(layout):
    assert read_categories(layout) == ["cat", "dog"]
    (layout / "categories.txt").write_text("dog\ncat\n\n")
    assert read_categories(layout) == ["dog", "cat"]


def test_rich_words_count_at_most_the_threshold(layout, monkeypatch):
    assert count_lines(layout / "full" / "simplified" / "cat.ndjson") == 41
    assert count_lines(layout / "full" / "simplified" / "cat.ndjson", at_most=7) == 7
    assert count_lines(layout / "full" / "simplified" / "nothing.ndjson") == 0
    monkeypatch.setattr("sketchlab.data.RICH_MIN", 6)
    assert rich_words(layout) == ["cat"]  # 41 and 5 drawings
    assert rich_words(layout, ["dog", "cat", "owl"]) == ["cat"]
    monkeypatch.setattr("sketchlab.data.RICH_MIN", 5)
    assert rich_words(layout, ["dog", "cat"]) == ["dog", "cat"]


def test_bitmaps_are_memory_mapped_and_checked(tmp_path):
    folder = tmp_path / "full" / "numpy_bitmap"
    folder.mkdir(parents=True)
    np.save(folder / "cat.npy", np.zeros((3, 784), np.uint8))
    np.save(folder / "bad.npy", np.zeros((3, 28, 28), np.uint8))
    array = read_bitmaps(tmp_path, "cat")
    assert isinstance(array, np.memmap) and array.shape == (3, 784)
    with pytest.raises(DrawingError):
        read_bitmaps(tmp_path, "bad")


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    drawings = [np.column_stack([rng.integers(-20, 20, (n, 2)), np.arange(n) % 4 == 3]) for n in (5, 9, 12)]
    write_npz(tmp_path / "cat.npz", train=drawings[:2], valid=drawings[2:], test=[])
    out = read_npz(tmp_path / "cat.npz")
    assert set(out) == {"train", "valid", "test"} and len(out["train"]) == 2 and out["test"] == []
    np.testing.assert_array_equal(out["valid"][0], drawings[2])


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_npz_refuses_pickles_of_anything_but_arrays(tmp_path):
    array = np.empty(1, dtype=object)
    array[0] = _Evil()
    np.savez(tmp_path / "evil.npz", train=array)
    with pytest.raises(DrawingError, match="refusing"):
        read_npz(tmp_path / "evil.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DrawingError):
        read_npz(tmp_path / "junk.npz")
    assert pickle  # the module really is the attack surface being tested


def test_bin_round_trip_and_truncation(tmp_path):
    records = [
        Record("cat", [np.array([[0, 0], [255, 10]]), np.array([[5, 6]])], "123456789", "DE", True, "1490000000"),
        Record("cat", [np.array([[1, 2], [3, 4], [5, 6]])], "42", None, False, None),
    ]
    path = tmp_path / "cat.bin"
    write_bin(path, records)
    back = list(read_bin(path))
    assert [r.key_id for r in back] == ["123456789", "42"]
    assert back[0].countrycode == "DE" and back[0].recognized and back[0].timestamp == "1490000000"
    for a, b in zip(records, back, strict=True):
        for s, t in zip(a.drawing, b.drawing, strict=True):
            np.testing.assert_array_equal(s, t)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DrawingError, match="truncated"):
        list(read_bin(path))


@pytest.mark.data
def test_real_data_layout(data_dir):
    words = read_categories(data_dir)
    assert len(words) == 345
    first = next(iter_drawings(data_dir, "simplified", ["cat"]))
    assert first.word == "cat" and np.concatenate(first.drawing).max() <= 255
    raw = next(iter_drawings(data_dir, "raw", ["cat"]))
    assert raw.drawing[0].shape[1] == 3
    assert read_bitmaps(data_dir, "cat").shape[1] == 784
    # the sample only grows (lines are appended): the first release's rich classes stay rich (53 in the second)
    assert set(RICH_FIRST_RELEASE) <= set(rich_words(data_dir))
    # records without key_id exist (README) and are read
    assert any(r.key_id is None for r in iter_drawings(data_dir, "simplified", ["cake", "snowman", "teapot"]))


def test_bitmap_splits_follow_the_paired_drawing(tmp_path):
    from sketchlab.data import bitmap_splits, read_bitmap_pairs
    from sketchlab.split import split_of

    assert read_bitmap_pairs(tmp_path) == {}  # a full official download has no pairs file
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "numpy_bitmap_pairs.json").write_text(json.dumps({"cat": {"1": "5152802093400064"}}))
    pairs = read_bitmap_pairs(tmp_path)
    splits = bitmap_splits("cat", 3, pairs)
    assert splits[1] == split_of("5152802093400064")  # the drawing's split: its bitmap never trains when it is held out
    assert splits[0] == split_of("bitmap:cat:0") and splits == bitmap_splits("cat", 3, pairs)


def test_fingerprint_knows_the_same_data_anywhere(layout, tmp_path_factory):
    import shutil

    copy = tmp_path_factory.mktemp("elsewhere") / "quickdraw"
    shutil.copytree(layout, copy)
    assert fingerprint(layout) == fingerprint(copy) is not None
    with open(copy / "full" / "simplified" / "dog.ndjson", "a") as f:
        f.write(json.dumps(simplified_record(99, "dog")) + "\n")  # one more drawing: other data
    assert fingerprint(copy) != fingerprint(layout)
    assert fingerprint(tmp_path_factory.mktemp("empty")) is None
