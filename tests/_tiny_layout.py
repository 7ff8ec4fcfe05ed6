"""A tiny data folder in the official Quick, Draw! layout, for the tests of everything that reads one as a whole
(training.stream, the at-scale pipeline): three words of synthetic simplified drawings in unequal numbers, raw
canvas strokes for one of them, and the flaws real files have (a record without key_id, a malformed line).

    <root>/categories.txt
    <root>/full/simplified/{circle,square,zigzag}.ndjson     160 / 80 / 40 drawings
    <root>/full/raw/square.ndjson                            30 drawings, [[x...], [y...], [t...]] strokes
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = ("circle", "square", "zigzag")
PER_WORD = {"circle": 160, "square": 80, "zigzag": 40}  # unequal, for the class balancing
RAW_SQUARES = 30


def _drawing(word: str, i: int) -> list:
    """A simplified drawing (0..255) of `word`, varied by i."""
    r = np.random.default_rng(i)
    s = int(r.integers(40, 250))
    if word == "circle":
        a = np.linspace(0, 2 * np.pi, 9 + i % 7)
        return [[(s / 2 * (1 + np.cos(a))).astype(int).tolist(), (s / 2 * (1 + np.sin(a))).astype(int).tolist()]]
    if word == "square":
        return [[[0, s, s, 0, 0], [0, 0, s, s, 0]]]
    xs = list(range(0, 250, 10 + i % 20))
    return [[xs, [0 if k % 2 else s for k in range(len(xs))]]]


def make_layout(root: Path) -> Path:
    """categories.txt, full/simplified/<word>.ndjson (one record without key_id, one malformed line) and
    full/raw/square.ndjson (canvas strokes with times)."""
    (root / "full" / "simplified").mkdir(parents=True)
    (root / "full" / "raw").mkdir(parents=True)
    (root / "categories.txt").write_text("\n".join(WORDS) + "\n")
    for word, n in PER_WORD.items():
        lines = [json.dumps({"word": word, "key_id": f"{word}{i}", "drawing": _drawing(word, i)}) for i in range(n)]
        if word == "zigzag":
            lines += [json.dumps({"word": word, "drawing": _drawing(word, 999)}), "{not json"]
        (root / "full" / "simplified" / f"{word}.ndjson").write_text("\n".join(lines) + "\n")
    raw = []
    for i in range(RAW_SQUARES):
        s = 100 + 7 * i
        stroke = [[10, 10 + s, 10 + s, 10, 10], [20, 20, 20 + s, 20 + s, 20], [0, 50, 100, 150, 200]]
        raw.append(json.dumps({"word": "square", "key_id": f"raw{i}", "drawing": [stroke]}))
    (root / "full" / "raw" / "square.ndjson").write_text("\n".join(raw) + "\n")
    return root
