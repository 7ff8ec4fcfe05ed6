"""training.evaluate reads the held-out drawings with the game's own verdict on each, and scores only the held-out
split of the data the models trained on."""

import json
import shutil
from pathlib import Path

import pytest

from sketchlab.data import fingerprint
from sketchlab.runtime import Manifest
from training.evaluate import auto_split, main, read_split


def test_read_split_keeps_the_games_recognized_flag(tmp_path):
    folder = tmp_path / "full" / "simplified"
    folder.mkdir(parents=True)
    square = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]
    records = [
        {"word": "cat", "key_id": "1", "recognized": True, "drawing": square},
        {"word": "cat", "key_id": "2", "recognized": False, "drawing": square},
        {"word": "cat", "key_id": "3", "drawing": square},  # no flag: counted as recognised
        {"word": "dog", "key_id": "4", "recognized": False, "drawing": square},  # not a model class: left out
        {"word": "cat", "key_id": "5", "recognized": False, "drawing": []},  # empty: left out
    ]
    for word in ("cat", "dog"):
        lines = [json.dumps(r) for r in records if r["word"] == word]
        (folder / f"{word}.ndjson").write_text("\n".join(lines) + "\n")
    prepared, labels, recognized = read_split(Path(tmp_path), "simplified", None, {"cat": 0})
    assert len(prepared) == 3 and labels.tolist() == [0, 0, 0]
    assert recognized.tolist() == [True, False, True]


def _write_drawings(root: Path, words: list[str]) -> None:
    folder = root / "full" / "simplified"
    folder.mkdir(parents=True)
    square = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]
    for word in words:
        (folder / f"{word}.ndjson").write_text(json.dumps({"word": word, "key_id": "1", "drawing": square}) + "\n")


def test_auto_split_holds_out_the_training_data_wherever_it_lies(tmp_path):
    trained, other, models = tmp_path / "trained", tmp_path / "other", tmp_path / "models"
    _write_drawings(trained, ["cat"])
    _write_drawings(other, ["cat", "dog"])
    models.mkdir()
    manifest = Manifest("cnn", "raster_classifier", ["cat"], {}, {}, "", "", data={"fingerprint": fingerprint(trained)})
    manifest.save(models / "cnn.json")
    copy = tmp_path / "copied" / "quickdraw"
    shutil.copytree(trained, copy)
    assert auto_split(trained, models)[0] == "test"
    assert auto_split(copy, models)[0] == "test"  # another path, the same drawings: still only the held-out ones
    assert auto_split(other, models)[0] == "all"
    assert auto_split(tmp_path / "missing", models)[0] == "all"


def test_manifests_only_take_held_out_figures(tmp_path):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--json", str(tmp_path / "out.json"), "--split", "all", "--update-manifests"])
    assert not (tmp_path / "out.json").exists()
