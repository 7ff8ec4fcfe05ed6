"""training.evaluate_live replays each drawing stroke by stroke through the app's canvas path and counts what the
live guesses would have shown."""

import json
from pathlib import Path

import numpy as np
from _tiny_models import WORDS, tiny_models

from sketchlab.classify import Classifier
from training.evaluate_live import LiveTally, main


def test_live_tally_reads_the_guesses_at_each_fraction_and_the_first_right_one():
    tally = LiveTally(3)
    ends = np.array([500.0, 1200.0, 2000.0, 2600.0])
    tally.add(0, np.array([3, 0, 1, 0]), np.array([False, True, True, True]), ends)  # right after stroke 2
    tally.add(1, np.array([2, 2]), np.array([False, True]), np.array([100.0, 900.0]))  # never right
    m = tally.metrics()
    assert m["n"] == 2
    at = m["at_fraction"]
    assert at["0.25"]["top1"] == 0.0 and at["0.25"]["top5"] == 1.0  # stroke 1 of 4 (rank 3) and of 2 (rank 2)
    assert at["0.5"]["top1"] == 0.5  # stroke 2 of 4 (rank 0) and stroke 1 of 2 (rank 2)
    assert at["0.75"]["top1"] == 0.0 and at["0.75"]["top3"] == 1.0  # stroke 3 of 4 (rank 1), stroke 2 of 2
    assert at["1.0"]["top1"] == 0.5
    assert m["guessed"] == {"share": 0.5, "macro_share": 0.5, "stroke_fraction": 0.5, "seconds": 1.2}
    assert m["headline"] == {"sure": 4 / 6, "sure_right": 2 / 4}  # sure at 4 of 6 stroke ends, right at 2 of them
    only = tally.metrics(np.array([False, True, False]))
    assert only["n"] == 1 and only["guessed"] == {"share": 0.0, "macro_share": 0.0}


def _stroke(x0, y0, x1, y1, t0):
    xs, ys = np.linspace(x0, x1, 6), np.linspace(y0, y1, 6)
    return [xs.round().tolist(), ys.round().tolist(), (t0 + 20 * np.arange(6)).tolist()]


def _layout(root: Path) -> list:
    """Two words of three-stroke drawings, raw (with times) and simplified (without), every drawing in every split."""
    drawings = []
    for kind in ("raw", "simplified"):
        folder = root / "full" / kind
        folder.mkdir(parents=True)
        for w, word in enumerate(WORDS[:2]):
            lines = []
            for i in range(4):
                s = 40 + 30 * i + 50 * w
                strokes = [_stroke(0, 0, s, 0, 0), _stroke(s, 0, s, s, 300), _stroke(0, s, s / 2, s / 3, 700)]
                if kind == "simplified":
                    strokes = [st[:2] for st in strokes]
                lines.append(json.dumps({"word": word, "key_id": f"{kind}{word}{i}", "drawing": strokes}))
                drawings.append((kind, word, strokes))
            (folder / f"{word}.ndjson").write_text("\n".join(lines) + "\n")
    return drawings


def test_the_finished_drawing_scores_as_the_app_classifies_it(tmp_path):
    models = tiny_models(tmp_path / "models")
    drawings = _layout(tmp_path / "qd")
    out_path = tmp_path / "live.json"
    main(["--data", str(tmp_path / "qd"), "--json", str(out_path), "--split", "all", "--models-dir", str(models)])
    out = json.loads(out_path.read_text())
    clf = Classifier.load(models)
    for kind in ("raw", "simplified"):
        mine = [(w, s) for k, w, s in drawings if k == kind]
        right = np.mean([clf.classify([np.array(st).T for st in s]).fused[0].word == w for w, s in mine])
        assert out[kind]["fused"]["n"] == len(mine) == 8
        assert out[kind]["fused"]["at_fraction"]["1.0"]["top1"] == right
        assert set(out[kind]) >= {"stroke", "cnn", "fused"}
        assert out[kind]["fused"]["calibration"]["n"] == 8 * 3  # every stroke end of every drawing
    assert "seconds" in out["raw"]["fused"]["guessed"] or out["raw"]["fused"]["guessed"]["share"] == 0
    assert "seconds" not in out["simplified"]["fused"]["guessed"]
    assert out["simplified"]["fused_rich"] == {"n": 0}  # no class here has 440 drawings
