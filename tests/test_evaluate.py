"""training.evaluate reads the held-out drawings with the game's own verdict on each, and scores only the held-out
split of the data the models trained on."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sketchlab.data import fingerprint
from sketchlab.runtime import Manifest
from training.evaluate import Reliability, Tally, auto_split, bitmap_class_hits, main, ranking_metrics, read_split


def test_read_split_groups_by_the_games_recognized_flag_and_key_id(tmp_path):
    folder = tmp_path / "full" / "simplified"
    folder.mkdir(parents=True)
    square = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]
    records = [
        {"word": "cat", "key_id": "1", "recognized": True, "drawing": square},
        {"word": "cat", "key_id": "2", "recognized": False, "drawing": square},
        {"word": "cat", "key_id": "3", "drawing": square},  # no flag: counted as recognised
        {"word": "dog", "key_id": "4", "recognized": False, "drawing": square},  # not a model class: left out
        {"word": "cat", "key_id": "5", "recognized": False, "drawing": []},  # empty: left out
        {"word": "cat", "drawing": square},  # no key_id (the points-only source)
    ]
    for word in ("cat", "dog"):
        lines = [json.dumps(r) for r in records if r["word"] == word]
        (folder / f"{word}.ndjson").write_text("\n".join(lines) + "\n")
    prepared, labels, groups = read_split(Path(tmp_path), "simplified", None, {"cat": 0})
    assert len(prepared) == 4 and labels.tolist() == [0, 0, 0, 0]
    assert groups["recognized"].tolist() == [True, False, True, True]
    assert (groups["unrecognized"] == ~groups["recognized"]).all()
    assert groups["with_key_id"].tolist() == [True, True, True, False]
    assert (groups["without_key_id"] == ~groups["with_key_id"]).all()


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


def test_bitmap_class_hits_separate_the_prior_from_the_ranking():
    # classes 0 and 1 have bitmaps; class 2 has none. Item 0: right; item 1: class 2 on top, but 1 beats 0.
    log_probs = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    assert bitmap_class_hits(log_probs, np.array([0, 1]), have=np.array([0, 1])) == (2, 1)


def test_tally_adds_up_batches_to_the_metrics_of_all_at_once():
    rng = np.random.default_rng(0)
    log_probs, labels = rng.normal(size=(300, 12)), rng.integers(0, 10, 300)  # classes 10, 11 have no items
    classes = [f"c{i}" for i in range(12)]
    tally = Tally(12)
    for i in range(0, 300, 64):
        tally.add(log_probs[i : i + 64], labels[i : i + 64])
    assert tally.metrics(classes) == ranking_metrics(log_probs, labels, classes)
    whole = ranking_metrics(log_probs, labels, classes)
    top1 = (log_probs.argmax(axis=1) == labels).mean()
    assert whole["top1"] == top1 and set(whole["per_class"]) == {f"c{i}" for i in range(10)}
    keep = np.arange(12) < 3
    part = ranking_metrics(log_probs[labels < 3], labels[labels < 3], classes)
    assert tally.subset(keep) == {k: part[k] for k in ("n", "top1", "top3", "top5", "macro_top1", "macro_top5")}
    assert Tally(12).metrics(classes)["n"] == 0 and Tally(12).subset(keep) == {"n": 0}


def test_reliability_adds_up_batches_and_measures_the_confidence_gap():
    rng = np.random.default_rng(0)
    log_probs = np.log(rng.dirichlet(np.ones(6), size=200))
    labels = rng.integers(0, 6, 200)
    whole = Reliability(6).add(log_probs, labels).metrics()
    parts = Reliability(6).add(log_probs[:77], labels[:77]).add(log_probs[77:], labels[77:]).metrics()
    assert parts == pytest.approx(whole)
    assert whole["top1"] == (log_probs.argmax(axis=1) == labels).mean()
    assert whole["nll"] == pytest.approx(-log_probs[np.arange(200), labels].mean())
    sure_and_right = np.log(np.eye(6)[labels] * (1 - 6e-9) + 1e-9)
    assert Reliability(6).add(sure_and_right, labels).metrics()["ece"] < 1e-6
    half = np.log(np.full((4, 2), 0.5))  # 50% sure, right 1 time in 4: a gap of 0.25
    assert Reliability(2).add(half, np.array([0, 1, 1, 1])).metrics()["ece"] == pytest.approx(0.25)
    assert Reliability(6).metrics() == {"n": 0}


def test_reliability_per_class_weighs_every_class_the_same():
    # class 0: three drawings guessed right at 90%; class 1: one drawing guessed wrong (as class 0) at 90%
    log_probs = np.log(np.array([[0.9, 0.1]] * 4))
    m = Reliability(2).add(log_probs, np.array([0, 0, 0, 1])).metrics()
    assert m["ece"] == pytest.approx((3.6 - 3) / 4)  # one bin: 3.6 expected right, 3 were
    assert m["ece_classes"] == pytest.approx(abs((2.7 - 3) / 3 + (0.9 - 0) / 1) / 2)
    assert m["nll_classes"] == pytest.approx((-np.log(0.9) - np.log(0.1)) / 2)
