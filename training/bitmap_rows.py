"""Each row of Google's numpy_bitmap files: which class it shows and which split it belongs to.

    python -m training.bitmap_rows --data ../shared/quickdraw      # audit: matches and misfiled rows, per file

Two facts of the shared sample that `numpy_bitmap_pairs.json` alone does not cover (measured 2026-12-07 on its
second release, 88,195 bitmaps in 48 files):

1. **Renderings of drawings here.** Many bitmaps are Google's renderings of simplified drawings in the folder, far
   more than the pairs file lists: 7,252 against its 4,938 (apple: 649 of 2,703 bitmaps, 23 listed; airplane: 938,
   448 listed). Split by its own (word, row) identity, such a bitmap can train the CNN while its drawing is held out. So every bitmap is matched
   against sketchlab's raster of every simplified drawing; at a centred normalized correlation of at least
   `RENDERING_MATCH` it is that drawing's rendering and takes that drawing's split. The scores are bimodal: a
   rendering scores 0.98 to 1.0, the closest other drawing at most 0.88.
2. **Misfiled rows.** `clock.npy` begins with 3,606 renderings of alarm clocks (bells, legs; 650 of them are
   renderings of alarm clock drawings here, none of a clock drawing), then 1,351 clocks. `MISFILED` lists such
   blocks with the sha1 of their bytes, so a fix applies to exactly those rows and never to another copy of the file
   (a full download's clock.npy holds clocks).

Matching costs about 2 minutes on 2 cores for the sample (rasters of every drawing, then rows x drawings x 784
multiply-adds); its result is cached in runs/cache under the folder's fingerprint. A folder larger than
`MATCH_LIMIT` pairs (a full download) is not matched: its bitmaps keep the pairs file's splits and their
(word, row) identity (`sketchlab.data.bitmap_splits`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sketchlab import data as qd
from sketchlab.errors import DrawingError
from sketchlab.prepare import from_simplified
from sketchlab.split import Split

CACHE_DIR = Path(__file__).resolve().parent.parent / "runs" / "cache"  # gitignored
RENDERING_MATCH = 0.95  # correlation at which a bitmap is a drawing's rendering (renderings >= 0.98, others <= 0.88)
MATCH_LIMIT = 2e10  # bitmaps x drawings beyond which a folder is not matched (the sample: 88,195 x 77,933 = 6.9e9)
SPLIT_LETTER = {Split.TRAIN: "r", Split.VALID: "v", Split.TEST: "t"}  # one letter a row in the cache file
LETTER_SPLIT = {v: k for k, v in SPLIT_LETTER.items()}


@dataclass(frozen=True)
class Misfiled:
    """Rows [start, stop) of `<word>.npy` show `actual`, not `word`; applies only where their bytes hash to sha1."""

    word: str
    start: int
    stop: int
    actual: str
    sha1: str


MISFILED = (Misfiled("clock", 0, 3606, "alarm clock", "3298fe57ded96a02467cfdd5c6c74a8cc881226d"),)


@dataclass
class BitmapFile:
    """One .npy file's rows: bitmaps (M, 784) uint8 (memory-mapped), each row's class name and split."""

    word: str
    bitmaps: np.ndarray
    labels: list[str]
    splits: list[Split]


def row_labels(word: str, bitmaps: np.ndarray, misfiled: tuple[Misfiled, ...] = MISFILED) -> list[str]:
    """Each row's class: `word`, except in a MISFILED block whose bytes match."""
    labels = [word] * len(bitmaps)
    for fix in misfiled:
        if fix.word == word and fix.stop <= len(bitmaps) and block_sha1(bitmaps, fix.start, fix.stop) == fix.sha1:
            labels[fix.start : fix.stop] = [fix.actual] * (fix.stop - fix.start)
    return labels


def block_sha1(bitmaps: np.ndarray, start: int, stop: int) -> str:
    return hashlib.sha1(np.ascontiguousarray(bitmaps[start:stop]).tobytes()).hexdigest()


def bitmap_files(root: str | Path, words: set[str] | None = None) -> Iterator[BitmapFile]:
    """Every numpy_bitmap file of the folder (only `words`' files if given), with each row's class and split."""
    root = Path(root)
    matched = rendering_splits(root)
    pairs = qd.read_bitmap_pairs(root)
    for word in qd.bitmap_words(root):
        if words is not None and word not in words:
            continue
        bitmaps = qd.read_bitmaps(root, word)
        splits = matched.get(word) or qd.bitmap_splits(word, len(bitmaps), pairs)
        yield BitmapFile(word, bitmaps, row_labels(word, bitmaps), splits)


# ---------------------------------------------------------------------------------------------------------------
# Matching bitmaps to drawings


def rendering_splits(root: str | Path, cache_dir: Path = CACHE_DIR) -> dict[str, list[Split]]:
    """{word: each row's split}: a drawing's rendering takes that drawing's split, any other row the pairs file's or
    its (word, row) identity's. {} for a folder too large to match (or with no bitmaps). Cached by fingerprint."""
    root = Path(root)
    words = qd.bitmap_words(root)
    fingerprint = qd.fingerprint(root)
    if not words or fingerprint is None:
        return {}
    path = cache_dir / f"bitmap_rows-{fingerprint}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("threshold") == RENDERING_MATCH:
            return {w: [LETTER_SPLIT[c] for c in s] for w, s in cached["splits"].items()}
    matches = match_renderings(root)
    if matches is None:
        return {}
    pairs = qd.read_bitmap_pairs(root)
    result = {}
    for word, (rows_split, _) in matches.items():
        fallback = qd.bitmap_splits(word, len(rows_split), pairs)
        result[word] = [s if s is not None else f for s, f in zip(rows_split, fallback, strict=True)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "threshold": RENDERING_MATCH,
        "splits": {w: "".join(SPLIT_LETTER[s] for s in v) for w, v in result.items()},
    }
    path.write_text(json.dumps(payload))
    return result


def match_renderings(root: Path) -> dict[str, tuple[list[Split | None], list[str | None]]] | None:
    """{word: (each row's matched drawing's split or None, that drawing's word or None)}; None when the folder is
    larger than MATCH_LIMIT pairs."""
    words = qd.bitmap_words(root)
    shapes = {w: qd.read_bitmaps(root, w).shape[0] for w in words}
    n_drawings = sum(qd.count_lines(root / "full" / "simplified" / f) for f in _ndjson_names(root))
    if sum(shapes.values()) * n_drawings > MATCH_LIMIT:
        warnings.warn(
            f"{sum(shapes.values())} bitmaps x {n_drawings} drawings: too many to match; bitmaps split by the pairs "
            "file and their (word, row) identity",
            stacklevel=2,
        )
        return None
    rasters, splits, owners = _drawing_rasters(root)
    reference = _unit_rows(rasters)
    out = {}
    for word in words:
        best, arg = nearest(_unit_rows(np.asarray(qd.read_bitmaps(root, word))), reference)
        hit = best >= RENDERING_MATCH
        out[word] = (
            [splits[j] if h else None for h, j in zip(hit, arg, strict=True)],
            [owners[j] if h else None for h, j in zip(hit, arg, strict=True)],
        )
    return out


def nearest(queries: np.ndarray, reference: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """For unit rows (Q, D) and (R, D): each query's highest dot product with a reference row (Q,) and its index."""
    best = np.full(len(queries), -np.inf, np.float32)
    arg = np.zeros(len(queries), np.int64)
    for i in range(0, len(reference), chunk):
        sims = queries @ reference[i : i + chunk].T
        j = sims.argmax(axis=1)
        value = sims[np.arange(len(queries)), j]
        better = value > best
        best[better], arg[better] = value[better], j[better] + i
    return best, arg


def _unit_rows(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) or (N, 784) uint8 -> (N, 784) float32, each row centred and of unit length (correlation = dot)."""
    x = np.asarray(images, np.float32).reshape(len(images), -1)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-6
    return x


def _ndjson_names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "full" / "simplified").glob("*.ndjson"))


def _drawing_rasters(root: Path) -> tuple[np.ndarray, list[Split], list[str]]:
    """sketchlab's 28x28 raster (N, 28, 28) of every simplified drawing, with its split and word."""
    rasters, splits, owners = [], [], []
    for rec in qd.iter_drawings(root, "simplified"):
        try:
            rasters.append(from_simplified(rec.drawing).raster)
        except DrawingError:
            continue
        splits.append(rec.split)
        owners.append(rec.word)
    return (np.stack(rasters) if rasters else np.zeros((0, 28, 28), np.uint8)), splits, owners


# ---------------------------------------------------------------------------------------------------------------
# Audit


def audit(root: Path) -> list[dict]:
    """Per file: rows, renderings matched (and of which other words), rows the pairs file lists, misfiled rows."""
    matches = match_renderings(root) or {}
    pairs = qd.read_bitmap_pairs(root)
    report = []
    for word in qd.bitmap_words(root):
        _, owners = matches.get(word, ([], []))
        others: dict[str, int] = {}
        for w in owners:
            if w is not None and w != word:
                others[w] = others.get(w, 0) + 1
        labels = row_labels(word, qd.read_bitmaps(root, word))
        report.append(
            dict(
                word=word,
                rows=len(labels),
                renderings=sum(w is not None for w in owners),
                of_other_words=others,
                in_pairs_file=len(pairs.get(word, {})),
                misfiled=sum(label != word for label in labels),
            )
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=qd.default_data_dir())
    args = parser.parse_args()
    rows = audit(args.data)
    print("| file | rows | renderings of drawings here | of other words | in the pairs file | misfiled |")
    print("|---|---:|---:|---|---:|---:|")
    for r in rows:
        others = ", ".join(f"{w} {n}" for w, n in sorted(r["of_other_words"].items())) or "-"
        print(f"| {r['word']} | {r['rows']} | {r['renderings']} | {others} | {r['in_pairs_file']} | {r['misfiled']} |")
    total = {k: sum(r[k] for r in rows) for k in ("rows", "renderings", "in_pairs_file", "misfiled")}
    print(f"| all | {total['rows']} | {total['renderings']} | | {total['in_pairs_file']} | {total['misfiled']} |")


if __name__ == "__main__":
    main()
