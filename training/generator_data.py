"""Stroke-5 training data for the generator, built only from `sketchlab` transforms.

    simplified drawing (0..255)  --to_stroke3-->  (N, 3) [dx, dy, pen_lifted]
        --augment_stroke3 (train only, fresh per batch)-->  --normalize(scale from the TRAIN split)-->
        --to_stroke5(max_len)-->  (max_len + 1, 5) [dx, dy, p1, p2, p3], start token in row 0

The drawings are streamed from the official layout (`sketchlab.data.iter_drawings`) and kept as compact stroke-3
arrays (30k drawings are ~10 MB). Every rank computes the scale factor from the whole training split, so all ranks
normalise identically, then keeps only its shard (`shard_data`, the split `training.distributed.shard` makes).
Batches are cut to the longest drawing in the batch (not `max_len`), and drawings of similar length are batched
together, which on CPU saves most of the padding work.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sketchlab.augment import augment_stroke3
from sketchlab.data import iter_drawings
from sketchlab.split import Split
from sketchlab.strokes import normalize, scale_factor, to_stroke3, to_stroke5

MAX_LEN = 250  # points kept per drawing (sketch-rnn's max_seq_len for Quick, Draw! was 250)
MIN_POINTS = 2  # a drawing needs at least one offset after the first point to be learnable
SORT_WINDOW = 50  # batches whose drawings are sorted by length together: less padding, still well shuffled


@dataclass
class GeneratorData:
    """Drawings of one split in stroke-3 form (not normalised), with their class indices."""

    classes: list[str]  # class index -> word; the model's class embedding follows this order
    stroke3: list[np.ndarray]  # (N_i, 3) float32 [dx, dy, pen_lifted] in simplified pixels
    labels: np.ndarray  # (D,) int64 class index of each drawing
    keys: list[str | None]  # key_id of each drawing (None where the record has none)

    def __len__(self) -> int:
        return len(self.stroke3)


def load_split(
    root: str | Path,
    classes: list[str],
    split: Split,
    limit_per_word: int | None = None,
) -> GeneratorData:
    """Stream the simplified drawings of `classes` in `split` (drawings of fewer than MIN_POINTS points left out)."""
    index = {w: i for i, w in enumerate(classes)}
    strokes, labels, keys = [], [], []
    for record in iter_drawings(root, "simplified", words=classes, split=split, limit_per_word=limit_per_word):
        s3 = to_stroke3(record.drawing)
        if len(s3) < MIN_POINTS:
            continue
        strokes.append(s3)
        labels.append(index[record.word])
        keys.append(record.key_id)
    return GeneratorData(classes, strokes, np.array(labels, dtype=np.int64), keys)


def batch_stroke5(
    stroke3s: list[np.ndarray], scale: float, max_len: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """stroke-3 drawings -> (B, T + 1, 5) float32 stroke-5 batch cut to its longest drawing, and (B,) lengths.

    With `rng`, each drawing is augmented first (sketch-rnn's point dropping, plus rotation and scaling).
    """
    if rng is not None:
        stroke3s = [augment_stroke3(s, rng) for s in stroke3s]
    lengths = np.array([min(len(s), max_len) for s in stroke3s], dtype=np.int64)
    t = int(lengths.max())
    batch = np.stack([to_stroke5(normalize(s, scale), max_len)[: t + 1] for s in stroke3s])  # (B, T + 1, 5)
    return batch, lengths


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of full index batches (the remainder is left out, so every rank gets the same count): shuffled,
    then sorted by length within windows of SORT_WINDOW batches, then the batches shuffled."""
    order = rng.permutation(len(lengths))[: len(lengths) // batch_size * batch_size]
    window = batch_size * SORT_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def iter_epoch(
    data: GeneratorData,
    batch_size: int,
    scale: float,
    max_len: int,
    rng: np.random.Generator,
    augment: bool = True,
    skip: int = 0,
    n_batches: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (stroke5 (B, T + 1, 5), lengths (B,), labels (B,)) over one shuffled epoch, from batch `skip` (to resume
    mid-epoch) up to `n_batches`."""
    lengths = np.array([min(len(s), max_len) for s in data.stroke3])
    batches = length_batches(lengths, batch_size, rng)[:n_batches]
    for idx in batches[skip:]:
        s5, lens = batch_stroke5([data.stroke3[i] for i in idx], scale, max_len, rng if augment else None)
        yield s5, lens, data.labels[idx]


def shard_data(data: GeneratorData, rank: int, world_size: int) -> GeneratorData:
    """Every world_size-th drawing from `rank` on (as `training.distributed.shard` splits a stream)."""
    if world_size == 1:
        return data
    keep = list(range(rank, len(data), world_size))
    return GeneratorData(data.classes, [data.stroke3[i] for i in keep], data.labels[keep], [data.keys[i] for i in keep])


def train_scale_factor(train: GeneratorData) -> float:
    """sketch-rnn's normalising scale: the std of the training offsets (see `sketchlab.strokes.scale_factor`)."""
    return scale_factor(train.stroke3)
