"""training.train_all.run_chains: each chain in order, the chains side by side, a failed step stops its chain."""

import sys

import pytest

from training.train_all import run_chains


def _step(recipe: str, code: str) -> list[str]:
    return [sys.executable, "-c", code, "--recipe", recipe]


def test_chains_run_in_order_side_by_side_and_log_each_step(tmp_path, capsys):
    out = tmp_path / "order.txt"
    write = f"import sys; open({str(out)!r}, 'a').write(sys.argv[2] + '\\n')"
    log: dict[str, float] = {}
    run_chains({"a": [_step("one", write), _step("two", write)], "b": [_step("three", write)]}, log, "train")
    lines = out.read_text().split()
    assert sorted(lines) == ["one", "three", "two"] and lines.index("one") < lines.index("two")
    assert set(log) == {"train_a_one", "train_a_two", "train_b_three", "train"}
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and all(line.startswith("[train_all] ") for line in printed)  # one line per step


def test_a_failed_step_stops_its_chain_and_fails_the_run(tmp_path):
    out = tmp_path / "ran.txt"
    log: dict[str, float] = {}
    after = _step("after", f"open({str(out)!r}, 'w').write('ran')")
    with pytest.raises(SystemExit, match="failed: \\['a'\\]"):
        run_chains({"a": [_step("boom", "raise SystemExit(3)"), after], "b": [_step("fine", "pass")]}, log, "train")
    assert not out.exists()
    assert "train_b_fine" in log and "train_a_boom" not in log
