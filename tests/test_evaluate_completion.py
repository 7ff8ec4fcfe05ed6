"""training.evaluate_completion on the stand-in models (tests/_tiny_models.py) and a tiny data folder."""

from __future__ import annotations

import json
from pathlib import Path

from _tiny_models import WORDS, tiny_models

from sketchlab.split import Split
from training import evaluate_completion as ec


def _data(root: Path, per_word: int = 40) -> Path:
    """The official layout: full/simplified/<word>.ndjson, drawings of 1 to 4 strokes in the 0..255 frame."""
    folder = root / "full" / "simplified"
    folder.mkdir(parents=True)
    for w, word in enumerate(WORDS):
        lines = []
        for i in range(per_word):
            strokes = [
                [[10 + 40 * s, 60 + 40 * s + i % 7, 200], [20 + 5 * w, 90 + 3 * s, 250]] for s in range(1 + i % 4)
            ]
            lines.append(json.dumps({"word": word, "key_id": f"{word}{i}", "drawing": strokes}))
        (folder / f"{word}.ndjson").write_text("\n".join(lines) + "\n")
    return root


def test_cases_are_test_split_drawings_cut_after_half_their_strokes(tmp_path):
    from sketchlab.data import iter_drawings

    root = _data(tmp_path / "qd")
    cases = ec.held_out_cases(root, WORDS[:2], per_class=3)
    test_keys = {r.key_id for r in iter_drawings(root, "simplified", WORDS[:2], Split.TEST)}
    assert 0 < len(cases) <= 6 and cases == ec.held_out_cases(root, WORDS[:2], per_class=3)
    for case in cases:
        n = len(case.whole)
        assert n >= 2 and len(case.half) == n // 2 and case.missing == n - n // 2
        assert case.half == case.whole[: n // 2]
        times = [p[2] for s in case.whole for p in s]
        assert times == sorted(times) and len(set(times)) == len(times)  # canvas points with increasing t (ms)
    assert len(test_keys) >= len(cases)


def test_count_strokes_tells_dots_from_lines():
    line, dot, tap = [[0, 0, 0], [10, 0, 16]], [[5, 5, 0], [6, 5, 16]], [[1, 1, 0]]
    assert ec.count_strokes([line, dot, tap]) == (3, 2)
    assert ec.count_strokes([]) == (0, 0)


def test_main_reports_both_modes_for_each_group_and_draws_the_grid(tmp_path):
    root = _data(tmp_path / "qd")
    models = tiny_models(tmp_path / "models")
    out, png = tmp_path / "completion.json", tmp_path / "grid.png"
    ec.main(
        ["--data", str(root), "--models-dir", str(models), "--per-class", "2", "--json", str(out), "--grid", str(png)]
    )
    result = json.loads(out.read_text())
    everything = result["groups"]["all"]
    assert everything["n"] > 0 and result["split"] == "test" and "floor" in result["cut"]
    assert set(everything["modes"]) == set(ec.MODES)
    for row in everything["modes"].values():
        assert row["median_strokes_added"] >= 1  # never nothing: at least one line in either mode
        assert 0 <= row["top1_completed_macro"] <= 1 and 0 <= row["dot_share"] <= 1
        assert "second_press_median_strokes_added" in row
    assert set(result["groups"]) == {"all", "rich", "rich in the first release"}
    assert png.stat().st_size > 1000


def test_the_generator_evaluation_reports_its_completion_keys_from_the_same_cases(tmp_path):
    from sketchlab.classify import Classifier
    from sketchlab.generate import Generator
    from training import evaluate_generator as eg

    root = _data(tmp_path / "qd")
    models = tiny_models(tmp_path / "models")
    gen, clf = Generator.load(models), Classifier.load(models, threads=1, parallel=False)
    result = eg.completion(root, gen, clf, WORDS[:2], temperature=0.5, seed=0)
    keys = ("top1_half", "top1_completed_no_word", "top1_completed_with_word", "top1_completed_with_guess")
    assert result["n"] > 0 and result["split"] == "test"
    assert all(0 <= result[k] <= 1 for k in keys)
    cases = ec.run_cases(ec.held_out_cases(root, WORDS[:2], eg.COMPLETION_PER_CLASS), gen.complete, clf, 0.5, 0,
                         second_press=False, modes=(ec.GUESS,))  # fmt: skip
    assert len(cases) == result["n"] and set(cases[0].added) == {ec.GUESS}
