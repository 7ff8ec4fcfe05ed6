"""training.evaluate reads the held-out drawings with the game's own verdict on each."""

import json
from pathlib import Path

from training.evaluate import read_split


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
