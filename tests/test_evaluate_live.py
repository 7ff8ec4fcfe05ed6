"""training.evaluate_live replays each drawing stroke by stroke through the app's canvas path and counts what the
live guesses would have shown."""

import json
from pathlib import Path

import numpy as np
from _tiny_models import WORDS, tiny_models

from sketchlab.classify import Classifier, Fusion, hold_order, save_fusion
from training.evaluate_live import (
    DOWN,
    END,
    LIVE_MS,
    SETTLE_MS,
    SETTLED,
    LiveTally,
    held,
    main,
    page_order,
    pen_down_views,
    settled_after,
)


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


def test_pen_down_views_are_what_the_page_sends_every_live_ms():
    first = np.array([[0, 0, 0], [5, 0, 100], [9, 0, 200], [12, 3, 250], [20, 8, 600]], float)
    second = np.array([[0, 50, 900], [40, 50, 1000]], float)  # 100 ms: the pen is up before the first request
    views = pen_down_views([first, second], every_ms=150)
    assert [ms for ms, _ in views] == [150, 300]  # at 450 no point has come since 300: nothing is sent
    assert [[len(s) for s in v] for _, v in views] == [[2], [4]]
    third = np.array([[0, 90, 1200], [10, 90, 1300], [20, 95, 1400]], float)
    (ms, view), *_ = pen_down_views([first, second, third], every_ms=150)[2:]
    assert ms == 1350 and [len(s) for s in view] == [5, 2, 2]  # the finished strokes, and the current one so far


def test_live_ms_is_the_pages():
    js = (Path(__file__).resolve().parent.parent / "assets" / "sketchpad.js").read_text()
    assert f"const LIVE_MS = {LIVE_MS};" in js


def test_live_tally_counts_the_guesses_while_the_pen_is_down():
    tally = LiveTally(3)
    ends = np.array([500.0, 1200.0])
    pen_down = (np.array([2, 0, 0, 1]), np.array([False, True, True, True]), np.array([150.0, 300.0, 650.0, 800.0]))
    tally.add(0, np.array([1, 0]), np.array([False, True]), ends, pen_down)  # right at 300 ms, first stroke end 1200
    tally.add(
        1, np.array([2]), np.array([False]), np.array([400.0]), (np.array([4]), np.array([False]), np.array([150.0]))
    )
    m = tally.metrics()
    assert m["pen_down"] == {"n": 5, "top1": 2 / 5, "top5": 1.0, "sure": 3 / 5, "sure_right": 2 / 3}
    assert m["guessed"]["share"] == m["guessed"]["share_any_time"] == 0.5
    assert m["guessed"]["seconds"] == 1.2 and m["guessed"]["seconds_any_time"] == 0.3


def test_live_tally_counts_how_often_the_top_guess_changes():
    tally = LiveTally(3)
    tally.add(0, np.array([0, 0]), np.array([False, False]), None, shown=np.array([2, 2, 0, 1, 0]))  # 3 changes of 4
    tally.add(1, np.array([1]), np.array([False]), None, shown=np.array([1]))  # one answer: nothing to change
    changes = tally.metrics()["top_guess_changes"]
    assert changes == {"per_drawing": 3 / 2, "share_of_answers": 3 / 4, "back_per_drawing": 1 / 2}  # 0 -> 1 -> 0
    assert tally.metrics()["guessed"]["share_steady"] == 0.0  # right once each: never two answers in a row
    tally.add(2, np.array([0]), np.array([True]), None, shown=np.array([1, 2, 2]))
    assert tally.metrics()["guessed"]["share_steady"] == 1 / 3


def test_page_order_puts_each_strokes_pen_down_requests_before_its_end_and_the_settled_one_after():
    first = np.array([[0, 0, 0], [5, 0, 100], [9, 0, 200], [12, 3, 250], [20, 8, 600]], float)
    second = np.array([[0, 50, 900], [40, 50, 1000], [60, 70, 1200]], float)
    order = page_order([first, second], timed=True)
    assert [(ms, kind, j) for ms, kind, j, _ in order] == [
        (150, DOWN, 0),
        (300, DOWN, 1),  # none at 450: no point came since 300
        (600, END, 0),  # 300 ms before the next stroke: no settled request
        (1050, DOWN, 2),
        (1200, END, 1),
        (1200 + SETTLE_MS, SETTLED, 1),  # the pen rests after the last stroke
    ]
    assert order[-1][3] is order[-2][3]  # the same drawing, asked again
    assert [(k, kind) for k, kind, *_ in page_order([first, second], timed=False)] == [
        (1, END),
        (2, END),
        (2.5, SETTLED),
    ]


def test_the_page_settles_after_the_last_stroke_and_after_long_pauses():
    a = np.array([[0, 0, 0], [9, 0, 100]], float)
    b = np.array([[0, 9, 100 + SETTLE_MS], [9, 9, 200 + SETTLE_MS]], float)  # after a pause of SETTLE_MS
    c = np.array([[5, 5, 300 + SETTLE_MS], [9, 5, 400 + SETTLE_MS]], float)  # after 100 ms
    assert settled_after([a, b, c], timed=True) == [0, 2]
    assert settled_after([a, b, c], timed=False) == [2]
    js = (Path(__file__).resolve().parent.parent / "assets" / "sketchpad.js").read_text()
    assert f"const SETTLE_MS = {SETTLE_MS};" in js


def test_live_tally_counts_the_settled_answers():
    tally = LiveTally(3)
    tally.add(0, np.array([1, 0]), np.array([False, True]), None, settled=(np.array([0, 0]), np.array([True, False])))
    tally.add(1, np.array([2]), np.array([False]), None, settled=(np.array([6]), np.array([True])))
    assert tally.metrics()["settled"] == {"n": 3, "top1": 2 / 3, "top5": 2 / 3, "sure": 2 / 3, "sure_right": 1 / 2}


def test_held_answers_keep_the_guess_shown_before_unless_beaten_by_the_hold():
    scores = np.log(
        np.array([[0.5, 0.3, 0.2], [0.38, 0.42, 0.2], [0.2, 0.7, 0.1], [0.45, 0.4, 0.15]], np.float32)
    )  # by probability: 0, 1, 1, 0
    order = held(scores, 0.2)  # 0.42 / 0.38 < e^0.2: class 0 stays; 0.7 / 0.2 beats it; 0.45 / 0.4 does not beat 1
    assert order.argmax(axis=1).tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(order[1], hold_order(scores[1:2], np.array([0]), 0.2)[0])
    np.testing.assert_allclose(order[0], scores[0])
    assert held(scores, 0.0) is scores


def _stroke(x0, y0, x1, y1, t0):
    xs, ys = np.linspace(x0, x1, 6), np.linspace(y0, y1, 6)
    return [
        xs.round().tolist(),
        ys.round().tolist(),
        (t0 + 40 * np.arange(6)).tolist(),
    ]  # 200 ms: one request while the pen is down


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
        settled = out[kind]["fused"]["settled"]  # after the last stroke only: the pauses here are short
        assert settled["n"] == settled["calibration"]["n"] == 8 and settled["top1"] == right
    assert "seconds" in out["raw"]["fused"]["guessed"] or out["raw"]["fused"]["guessed"]["share"] == 0
    assert "seconds" not in out["simplified"]["fused"]["guessed"]
    pen_down, guessed = out["raw"]["fused"]["pen_down"], out["raw"]["fused"]["guessed"]
    assert pen_down["n"] == pen_down["calibration"]["n"] == 8 * 3  # 150 ms into each 200 ms stroke
    assert guessed["share_any_time"] >= guessed["share"]
    assert "pen_down" not in out["simplified"]["fused"]
    for kind, answers in (("raw", 3 + 3), ("simplified", 3)):  # a drawing: 3 stroke ends (and 3 pen-down requests)
        changes = out[kind]["fused"]["top_guess_changes"]
        assert changes["per_drawing"] == changes["share_of_answers"] * (answers - 1)
    assert out["simplified"]["fused_rich"] == {"n": 0}  # no class here has 440 drawings
    for kind in ("raw", "simplified"):  # every figure again by key_id: here every record has one
        keyed = out[kind]["groups"]["with_key_id"]["fused"]
        assert {k: keyed[k] for k in ("n", "at_fraction", "guessed")} == {
            k: out[kind]["fused"][k] for k in ("n", "at_fraction", "guessed")
        }
        assert out[kind]["groups"]["without_key_id"]["fused"] == {"n": 0}
    assert out["hold"] == 0.0 and 0 <= guessed["share_steady"] <= guessed["share_any_time"]


def test_a_hold_steadies_the_shown_guesses_and_only_the_fused_ones(tmp_path):
    models = tiny_models(tmp_path / "models")
    _layout(tmp_path / "qd")
    args = ["--data", str(tmp_path / "qd"), "--split", "all", "--models-dir", str(models)]
    main([*args, "--json", str(tmp_path / "plain.json")])
    clf = Classifier.load(models)
    fusion = Fusion(clf.fusion.weights, {}, clf.fusion.log_prior, hold=10.0)  # nothing can beat the first guess
    save_fusion(models / "fusion.json", fusion, clf.classes, {"valid": {}})
    main([*args, "--json", str(tmp_path / "held.json")])
    plain, steady = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "held"))
    assert steady["hold"] == 10.0
    for kind in ("raw", "simplified"):
        assert steady[kind]["fused"]["top_guess_changes"]["per_drawing"] == 0.0
        for name in ("stroke", "cnn"):
            assert steady[kind][name] == plain[kind][name]
        assert steady[kind]["fused"]["calibration"] == plain[kind]["fused"]["calibration"]  # the same probabilities
