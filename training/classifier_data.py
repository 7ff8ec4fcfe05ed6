"""Training data for the classifiers: a preprocessed cache, class-balanced sampling and per-rank batches.

The cache holds every drawing of the data folder once, already through the sketchlab path the app uses
(`prepare.from_simplified` for simplified files, `prepare.from_canvas` for raw ones, so raw strokes get exactly
Google's simplification), plus Google's own 28x28 bitmaps. Epochs then never re-run simplify or rasterize:

    python -m training.classifier_data --data ../shared/quickdraw     # builds runs/cache/classifier.npz (~1 min)

Batches are drawn from a class-balanced sampler (weight n_c ** -power per drawing, so a class's share grows like
n_c ** (1 - power)); the global batch is cut into `world_size` slices (`training.distributed.shard`), so one process
and N processes take the same optimiser steps.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sketchlab import data as qd
from sketchlab.augment import augment_stroke3, augmented_raster, random_mirror, random_prefix
from sketchlab.errors import DrawingError
from sketchlab.prepare import PREPROCESSING_VERSION, from_canvas, from_simplified
from sketchlab.split import Split, split_of
from sketchlab.strokes import PAD_ROW, normalize, scale_factor, to_stroke5
from training import bitmap_rows

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "runs" / "cache" / "classifier.npz"  # gitignored
SPLIT_CODE = {Split.TRAIN: 0, Split.VALID: 1, Split.TEST: 2}
SIMPLIFIED, RAW = 0, 1  # `source` codes of the drawings
BUCKET_BATCHES = 32  # stroke batches are cut from a window of this many batches sorted by length: little padding


# ---------------------------------------------------------------------------------------------------------------
# The cache


@dataclass
class Cache:
    """Every drawing and bitmap of a data folder, preprocessed. Arrays are indexed by drawing (N) or bitmap (M)."""

    classes: list[str]  # the 345 class names, in output order
    label: np.ndarray  # (N,) int64 class index
    split: np.ndarray  # (N,) int8, see SPLIT_CODE
    source: np.ndarray  # (N,) int8, SIMPLIFIED or RAW
    raster: np.ndarray  # (N, 28, 28) uint8, sketchlab.raster of the simplified drawing
    offsets: np.ndarray  # (N + 1,) int64, drawing i's stroke-3 rows are points[offsets[i]:offsets[i + 1]]
    points: np.ndarray  # (P, 3) float32 stroke-3 [dx, dy, pen_lifted] in simplified pixels (not normalised)
    bm_label: np.ndarray  # (M,) int64
    bm_split: np.ndarray  # (M,) int8; a drawing's rendering takes that drawing's split (training.bitmap_rows)
    bm_raster: np.ndarray  # (M, 28, 28) uint8, Google's own numpy_bitmap rows
    preprocessing_version: str

    def stroke3(self, i: int) -> np.ndarray:
        return self.points[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, split: Split, sources: tuple[int, ...] = (SIMPLIFIED, RAW)) -> np.ndarray:
        """Indices of the drawings of one split (and sources)."""
        return np.flatnonzero((self.split == SPLIT_CODE[split]) & np.isin(self.source, sources))

    def counts(self, split: Split = Split.TRAIN, sources: tuple[int, ...] = (SIMPLIFIED,)) -> np.ndarray:
        """(C,) drawings per class in one split: the class prior the held-out data follows."""
        return np.bincount(self.label[self.select(split, sources)], minlength=len(self.classes))

    def rich_classes(self) -> np.ndarray:
        """(C,) bool: classes with at least RICH_MIN simplified drawings in all splits together."""
        counts = np.bincount(self.label[self.source == SIMPLIFIED], minlength=len(self.classes))
        return counts >= qd.RICH_MIN

    def scale(self) -> float:
        """Offset scale of the training drawings (stored in the stroke model's manifest)."""
        idx = self.select(Split.TRAIN, (SIMPLIFIED,))
        return scale_factor([self.stroke3(i) for i in idx])

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        meta = {"classes": self.classes, "preprocessing_version": self.preprocessing_version}
        np.savez(path, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Cache:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
        return cls(classes=meta["classes"], preprocessing_version=meta["preprocessing_version"], **arrays)


def build_cache(root: str | Path, classes: list[str] | None = None, progress: bool = True) -> Cache:
    """Read a data folder in the official layout through sketchlab's preprocessing."""
    root = Path(root)
    classes = classes or qd.read_categories(root)
    index = {w: i for i, w in enumerate(classes)}
    label, split, source, rasters, strokes = [], [], [], [], []
    for kind, code in (("simplified", SIMPLIFIED), ("raw", RAW)):
        t = time.time()
        for rec in qd.iter_drawings(root, kind):
            if rec.word not in index:
                continue
            try:
                prep = from_simplified(rec.drawing) if code == SIMPLIFIED else from_canvas(rec.drawing)
            except DrawingError:
                continue  # a degenerate raw drawing (one point): nothing a classifier can learn from
            label.append(index[rec.word])
            # A raw drawing takes its key_id's split, so the raw twin of a held-out drawing is held out too.
            split.append(SPLIT_CODE[rec.split])
            source.append(code)
            rasters.append(prep.raster)
            strokes.append(prep.stroke3)
        if progress:
            print(f"cache: {kind} drawings done in {time.time() - t:.0f}s ({len(label)} so far)", flush=True)
    bm_label, bm_split, bm_raster = _bitmaps(root, index)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in strokes])]).astype(np.int64)
    return Cache(
        classes=classes,
        label=np.array(label, np.int64),
        split=np.array(split, np.int8),
        source=np.array(source, np.int8),
        raster=np.stack(rasters) if rasters else np.zeros((0, 28, 28), np.uint8),
        offsets=offsets,
        points=np.concatenate(strokes).astype(np.float32) if strokes else np.zeros((0, 3), np.float32),
        bm_label=bm_label,
        bm_split=bm_split,
        bm_raster=bm_raster,
        preprocessing_version=PREPROCESSING_VERSION,
    )


def _bitmaps(root: Path, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Google's bitmaps of the classes in `index`: labels (M,), split codes (M,), rasters (M, 28, 28), each row with
    the class and split `training.bitmap_rows` gives it (a drawing's rendering takes the drawing's split)."""
    labels, splits, rasters = [], [], []
    for f in bitmap_rows.bitmap_files(root):
        keep = np.array([label in index for label in f.labels], bool)
        labels += [index[label] for label, k in zip(f.labels, keep, strict=True) if k]
        splits += [SPLIT_CODE[s] for s, k in zip(f.splits, keep, strict=True) if k]
        rasters.append(np.asarray(f.bitmaps)[keep].reshape(-1, 28, 28))
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros((0, 28, 28), np.uint8)
    return np.array(labels, np.int64), np.array(splits, np.int8), np.concatenate(rasters)


def synthetic_cache(n_classes: int = 4, per_class: int = 24, seed: int = 0) -> Cache:
    """A tiny cache of made-up drawings (class c: a jittered polygon with c + 3 corners), for tests and smoke runs.
    Splits come from sketchlab.split of made-up key_ids, as for real data."""
    rng = np.random.default_rng(seed)
    label, split, rasters, strokes = [], [], [], []
    for c in range(n_classes):
        for j in range(per_class):
            corners = c + 3
            angle = np.linspace(0, 2 * np.pi, corners + 1) + rng.uniform(0, 0.5)
            pts = np.column_stack([np.cos(angle), np.sin(angle)]) * rng.uniform(60, 120) + 128
            pts = np.clip(pts + rng.normal(0, 4, pts.shape), 0, 255).astype(np.int32)
            prep = from_simplified([pts - pts.min(axis=0)])
            label.append(c)
            split.append(SPLIT_CODE[split_of(f"synthetic:{c}:{j}")])
            rasters.append(prep.raster)
            strokes.append(prep.stroke3)
    n = len(label)
    raster = np.stack(rasters)
    return Cache(
        classes=[f"shape{c}" for c in range(n_classes)],
        label=np.array(label, np.int64),
        split=np.array(split, np.int8),
        source=np.zeros(n, np.int8),
        raster=raster,
        offsets=np.concatenate([[0], np.cumsum([len(s) for s in strokes])]).astype(np.int64),
        points=np.concatenate(strokes).astype(np.float32),
        bm_label=np.array(label, np.int64),
        bm_split=np.array(split, np.int8),
        bm_raster=raster.copy(),
        preprocessing_version=PREPROCESSING_VERSION,
    )


def load_or_build(root: str | Path, path: str | Path = DEFAULT_CACHE) -> Cache:
    """The cache at `path`, built from `root` first when missing or made by another preprocessing version."""
    path = Path(path)
    if path.exists():
        cache = Cache.load(path)
        if cache.preprocessing_version == PREPROCESSING_VERSION:
            return cache
    cache = build_cache(root)
    cache.save(path)
    return cache


# ---------------------------------------------------------------------------------------------------------------
# Sampling and batches


def balanced_weights(labels: np.ndarray, power: float, n_classes: int) -> np.ndarray:
    """Per-item sampling probabilities n_c ** -power (power 0: natural frequencies; 1: every class equal)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.power(np.maximum(counts[labels], 1.0), -power)
    return w / w.sum()


def sampled_log_prior(counts: np.ndarray, power: float) -> np.ndarray:
    """log of the class distribution that sampling with weights n_c ** -power shows the model: n_c ** (1 - power),
    normalised (a class with no item counts as one, so it stays finite)."""
    mass = np.power(np.maximum(np.asarray(counts, dtype=np.float64), 1.0), 1.0 - power)
    return np.log(mass / mass.sum())


def epoch_order(
    items: np.ndarray, labels: np.ndarray, power: float, n_classes: int, size: int, seed: int
) -> np.ndarray:
    """`size` items for one epoch: a permutation when sampling is natural, else a weighted draw with replacement.
    Every rank computes the same order from the same seed."""
    rng = np.random.default_rng(seed)
    if power == 0 and size == len(items):
        return items[rng.permutation(len(items))]
    p = balanced_weights(labels, power, n_classes)
    return items[rng.choice(len(items), size=size, p=p)]


def global_batches(order: np.ndarray, batch: int, lengths: np.ndarray | None = None, seed: int = 0) -> list[np.ndarray]:
    """Cut an epoch's order into global batches (the last partial batch is dropped). With `lengths`, batches are
    cut from windows sorted by length, then shuffled, so a batch of strokes holds little padding."""
    n = len(order) // batch * batch
    order = order[:n]
    if lengths is not None:
        window = batch * BUCKET_BATCHES
        order = np.concatenate(
            [w[np.argsort(lengths[w], kind="stable")] for w in np.split(order, range(window, n, window))]
        )
    batches = np.split(order, n // batch) if n else []
    np.random.default_rng(seed + 1).shuffle(batches)
    return batches


def rank_slice(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This rank's part of a global batch (every world-th item)."""
    return batch[rank::world]


def stroke_tensor(stroke3: np.ndarray, scale: float, max_points: int) -> np.ndarray:
    """stroke-3 -> the stroke model's input: (n + 1, 5) stroke-5 of the first `max_points` points, no padding."""
    return to_stroke5(normalize(stroke3, scale), min(len(stroke3), max_points))


def collate_strokes(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (T_i, 5) -> strokes (B, T, 5) padded with the stroke-5 end row, lengths (B,) int64."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    out = np.tile(PAD_ROW, (len(seqs), int(lengths.max()), 1)).astype(np.float32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return torch.from_numpy(out), torch.from_numpy(lengths)


def stroke_batches(
    cache: Cache,
    batches: list[np.ndarray],
    scale: float,
    max_points: int,
    rng: np.random.Generator | None,
    rank: int = 0,
    world: int = 1,
    mirror: np.ndarray | None = None,
    prefix: float = 0.0,
    prefix_anywhere: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(strokes (B, T, 5), lengths (B,), labels (B,)) per batch; augmented with sketchlab.augment when `rng`
    (cut to a prefix of its strokes with probability `prefix`, anywhere along the pen's path with `prefix_anywhere`,
    and mirrored left-right half the time in the classes `mirror`, a (C,) bool array, marks)."""
    for batch in batches:
        idx = rank_slice(batch, rank, world)
        if len(idx) == 0:  # a short final evaluation batch can leave a rank nothing
            continue
        seqs = []
        for i in idx:
            s = cache.stroke3(i)
            if rng is not None:
                s = augment_stroke3(random_prefix(s, rng, prefix, prefix_anywhere), rng)
                if mirror is not None and mirror[cache.label[i]]:
                    s = random_mirror(s, rng)
            seqs.append(stroke_tensor(s, scale, max_points))
        x, lengths = collate_strokes(seqs)
        yield x, lengths, torch.from_numpy(cache.label[idx])


@dataclass
class Redraw:
    """Re-draws a training item's raster from an augmented copy of its strokes (`sketchlab.augment.augmented_raster`)
    with probability `prob`, each time the item is drawn, and from a prefix of its strokes
    (`sketchlab.augment.random_prefix`) with probability `prefix`; Google's bitmaps, which come without strokes, stay
    as they are."""

    cache: Cache
    drawing: np.ndarray  # (K,) int64: each pool item's drawing index in the cache, -1 for a Google bitmap
    prob: float
    rng: np.random.Generator
    prefix: float = 0.0
    anywhere: bool = False  # the prefix may end mid-stroke (`random_prefix`)

    def __call__(self, idx: np.ndarray, images: np.ndarray) -> np.ndarray:
        """Pool indices (B,) and their (B, 28, 28) uint8 rasters (a copy, changed in place) -> the rasters."""
        source = self.drawing[idx]
        chosen = (source >= 0) & (self.rng.random(len(idx)) < self.prob)
        if self.prefix > 0:  # drawn only then, so that runs without prefixes reproduce exactly
            cut = (source >= 0) & (self.rng.random(len(idx)) < self.prefix)
            for j in np.flatnonzero(cut):
                cut_drawing = random_prefix(self.cache.stroke3(int(source[j])), self.rng, 1.0, self.anywhere)
                images[j] = augmented_raster(cut_drawing, self.rng)
            chosen &= ~cut
        for j in np.flatnonzero(chosen):
            images[j] = augmented_raster(self.cache.stroke3(int(source[j])), self.rng)
        return images


def raster_batches(
    rasters: np.ndarray,
    labels: np.ndarray,
    batches: list[np.ndarray],
    rank: int = 0,
    world: int = 1,
    redraw: Redraw | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images (B, 1, 28, 28) float in 0..1, labels (B,)) per batch, from a (K, 28, 28) uint8 pool."""
    for batch in batches:
        idx = rank_slice(batch, rank, world)
        images = rasters[idx]  # fancy indexing: a copy
        if redraw is not None:
            images = redraw(idx, images)
        x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
        yield x, torch.from_numpy(labels[idx])


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the classifier training cache.")
    parser.add_argument("--data", default=str(qd.default_data_dir()), help="data folder in the official layout")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="where to write the cache (.npz)")
    args = parser.parse_args()
    t = time.time()
    cache = build_cache(args.data)
    cache.save(args.cache)
    print(f"{len(cache.label)} drawings, {len(cache.bm_label)} bitmaps -> {args.cache} in {time.time() - t:.0f}s")


if __name__ == "__main__":
    main()
