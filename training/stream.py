"""Training examples streamed from a data folder in the official layout, per rank, in bounded memory.

For a full download (50M drawings: ~22 GB of simplified ndjson, more of raw), which neither trainer's in-memory data
(`classifier_data.Cache`, `generator_data.GeneratorData`) can hold:

    <root>/full/simplified/<word>.ndjson (and full/raw/<word>.ndjson)
      --rank r of W reads the lines that start in bytes [size * r / W, size * (r + 1) / W) of every file-->
      --keep one split (sketchlab.split; the key_id is found before any JSON parsing, so skipping is cheap)-->
      --interleave the files: the next record's file drawn with probability ~ n_c ** (1 - balance_power)-->
      --sketchlab.prepare (from_simplified; from_canvas for raw strokes)-->
        Example(label, stroke3 (N, 3) float32 [dx, dy, pen_lifted], raster (28, 28) uint8 or None)
      --shuffle buffer of `shuffle_buffer` examples (seeded by (seed, epoch, rank))-->
      --batches of `batch` examples: a window of SORT_WINDOW batches sorted by length, batches shuffled-->

Every line belongs to exactly one rank (the rank whose byte range holds its first byte): the shards are disjoint,
cover the split, are nearly equal in size, and each rank reads only its 1/W of the bytes. DDP needs every rank to
take the same number of steps, so an epoch is a fixed number of batches computed identically on every rank from the
file sizes (`steps_per_epoch`), and a rank's stream never ends: each file's range is read cyclically, from a point
that moves with the epoch, so a short epoch sees fresh drawings and an epoch of one estimated pass sees each drawing
about once (with class balancing, a rare class's drawings come back more often, as in the cached sampler).

Memory is bounded by the configuration, never by the dataset: the shuffle buffer (an example is ~1-3 KB, so 10,000
are ~20 MB), one window of sorted batches, and at most READ_BLOCK bytes of read-ahead lines per file (all files are
read at once: 345 words x 2 kinds x 64 KB = 44 MB at most).

Preprocessing is Python, so `loader` can spread a rank's stream over DataLoader worker processes: worker w of W reads
sub-shard rank * W + w of world_size * W (the same byte-range rule, cut finer) and makes batches of its own.

Google's numpy_bitmap files are not streamed: they are renderings of the simplified drawings, which the stream
rasterizes through sketchlab itself.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from sketchlab.data import parse_ndjson_line
from sketchlab.errors import DrawingError
from sketchlab.prepare import PREPROCESSING_VERSION, from_canvas, from_simplified
from sketchlab.split import BUCKETS, TEST_BUCKETS, VALID_BUCKETS, Split, split_of
from sketchlab.strokes import scale_factor, to_stroke3
from training.classifier_data import RAW, SIMPLIFIED, SPLIT_CODE, Cache

KINDS = {"simplified": SIMPLIFIED, "raw": RAW}  # streamed file kinds -> classifier_data source codes
READ_BLOCK = 1 << 16  # bytes of lines read per file at a time; the file is closed in between (345 x 2 files)
HEAD_BYTES = 1 << 16  # bytes read at the start of a file to estimate its mean line length (hence its count)
CHOICE_BLOCK = 1024  # file choices drawn at once (one rng call per 1024 records)
SORT_WINDOW = 32  # batches sorted by length together (as classifier_data.BUCKET_BATCHES): little padding
SCALE_SAMPLE = 10_000  # training drawings the offset scale factor is estimated from (std of ~1M offsets)
GOLDEN = 0.6180339887498949  # epoch e starts reading each range at fraction frac(e * GOLDEN): evenly spread starts
SPLIT_FRACTION = {
    Split.TRAIN: 1 - (len(TEST_BUCKETS) + len(VALID_BUCKETS)) / BUCKETS,
    Split.VALID: len(VALID_BUCKETS) / BUCKETS,
    Split.TEST: len(TEST_BUCKETS) / BUCKETS,
}
_KEY_ID = re.compile(rb'"key_id"\s*:\s*(?:"([^"\\]*)"|(-?\d+))')  # official records: "key_id":"5152802093400064"


@dataclass(frozen=True)
class StreamConfig:
    root: str  # data folder in the official layout
    classes: tuple[str, ...]  # class names in label order (files of other words are not read)
    split: Split = Split.TRAIN  # the only split kept (sketchlab.split)
    kinds: tuple[str, ...] = ("simplified",)  # file kinds read: "simplified" and/or "raw"
    balance_power: float = 0.0  # per-drawing sampling weight n_c ** -power (0: natural frequencies)
    shuffle_buffer: int = 10_000  # examples held for shuffling (memory ~ 2 KB each); 0 or 1: no shuffling
    rasters: bool = True  # also rasterize each drawing (the CNN); stroke-3 only otherwise (simplified files)
    min_points: int = 1  # drawings of fewer points are left out (the generator needs 2)
    seed: int = 1234  # with (epoch, rank): the file order, the shuffle and the batches
    rank: int = 0  # this process
    world_size: int = 1  # processes reading the same files


@dataclass(frozen=True)
class Example:
    """One preprocessed drawing."""

    label: int  # index into StreamConfig.classes
    stroke3: np.ndarray  # (N, 3) float32 [dx, dy, pen_lifted] in simplified pixels (not normalised)
    raster: np.ndarray | None  # (28, 28) uint8, 0 = background; None when StreamConfig.rasters is False
    source: int  # SIMPLIFIED or RAW (classifier_data codes)
    key_id: str | None  # the record's key_id (shard tests check each drawing goes to exactly one rank)


# ---------------------------------------------------------------------------------------------------------------
# Files, byte ranges and counts


def _files(cfg: StreamConfig) -> list[tuple[Path, str, int]]:
    """(path, kind, label) of every existing file to read, in class order."""
    out = []
    for label, word in enumerate(cfg.classes):
        for kind in cfg.kinds:
            if kind not in KINDS:
                raise ValueError(f"stream kinds are {sorted(KINDS)}, got {kind!r}")
            path = Path(cfg.root) / "full" / kind / f"{word}.ndjson"
            if path.exists():
                out.append((path, kind, label))
    if not out:
        raise FileNotFoundError(f"no ndjson files of {len(cfg.classes)} classes under {cfg.root}/full/{cfg.kinds}")
    return out


def estimate_lines(path: Path) -> float:
    """Lines in a file from its size and the mean line length of its first HEAD_BYTES (exact for small files)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    lines = head.count(b"\n") + (0 if head.endswith(b"\n") or not head else 1)
    if size <= len(head):
        return float(lines)
    return size * max(lines - 1, 1) / max(head.rfind(b"\n") + 1, 1)  # whole lines of the head only


def estimated_examples(cfg: StreamConfig) -> float:
    """Drawings of the split over all ranks (each file's lines times the split's share of key_id buckets)."""
    return sum(estimate_lines(p) for p, _, _ in _files(cfg)) * SPLIT_FRACTION[cfg.split]


def steps_per_epoch(cfg: StreamConfig, global_batch: int, samples: int = 0) -> int:
    """Batches an epoch on every rank: `samples` // global_batch, or one estimated pass over the split when 0.
    Computed from file sizes only, so every rank gets the same number."""
    n = samples or estimated_examples(cfg)
    steps = int(n // global_batch)
    if steps < 1:
        raise ValueError(f"{n:.0f} examples an epoch is less than one global batch of {global_batch}")
    return steps


def _byte_range(size: int, rank: int, world: int) -> tuple[int, int]:
    return size * rank // world, size * (rank + 1) // world


def _line_at(path: Path, offset: int) -> int:
    """Offset of the first line that starts at or after `offset`."""
    if offset <= 0:
        return 0
    with open(path, "rb") as f:
        f.seek(offset - 1)
        return offset - 1 + len(f.readline())


def _lines_in(path: Path, lo: int, hi: int) -> Iterator[bytes]:
    """The lines whose first byte lies in [lo, hi), READ_BLOCK bytes at a time (the file is closed in between)."""
    pos = _line_at(path, lo)
    while pos < hi:
        block, read = [], 0
        with open(path, "rb") as f:
            f.seek(pos)
            while pos < hi and read < READ_BLOCK:
                line = f.readline()
                if not line:
                    pos = hi
                    break
                block.append(line)
                pos += len(line)
                read += len(line)
        yield from block


# ---------------------------------------------------------------------------------------------------------------
# Records -> examples


def _key_id(line: bytes) -> str | None:
    m = _KEY_ID.search(line)
    if m is None:
        return None
    return (m.group(1) or m.group(2)).decode("utf-8", "replace")


def _example(line: bytes, kind: str, label: int, cfg: StreamConfig) -> Example | None:
    """One ndjson line through sketchlab's preprocessing; None when it is of another split, malformed or too short."""
    key = _key_id(line)
    if key is not None and split_of(key) != cfg.split:  # most skipped lines are never parsed
        return None
    try:
        record = parse_ndjson_line(line)
        if key is None and record.split != cfg.split:  # no key_id: split by content, which needs the drawing
            return None
        if kind == "raw":
            prep = from_canvas(record.drawing)
            stroke3, raster = prep.stroke3, prep.raster if cfg.rasters else None
        elif cfg.rasters:
            prep = from_simplified(record.drawing)
            stroke3, raster = prep.stroke3, prep.raster
        else:
            stroke3, raster = to_stroke3(record.drawing), None
    except DrawingError:
        return None  # a malformed record or degenerate raw drawing: nothing to learn from
    if len(stroke3) < cfg.min_points:
        return None
    return Example(label, stroke3, raster, KINDS[kind], record.key_id)


def _file_examples(
    cfg: StreamConfig, path: Path, kind: str, label: int, start: float, endless: bool = True
) -> Iterator[Example]:
    """This rank's examples of one file: from fraction `start` of its byte range to the end, then from the range's
    beginning, and again when `endless`. Ends at once when the range holds no example of the split."""
    lo, hi = _byte_range(path.stat().st_size, cfg.rank, cfg.world_size)
    mid = lo + int(start * (hi - lo))
    while True:
        found = False
        for line in itertools.chain(_lines_in(path, mid, hi), _lines_in(path, lo, mid)):
            example = _example(line, kind, label, cfg)
            if example is not None:
                found = True
                yield example
        if not found or not endless:
            return


# ---------------------------------------------------------------------------------------------------------------
# Interleaving, shuffling, batching


def interleave(sources: list[Iterator], weights: np.ndarray, rng: np.random.Generator) -> Iterator:
    """Each next item from a source drawn with probability ~ `weights`; a source that runs dry is dropped."""
    live = list(range(len(sources)))
    weights = np.asarray(weights, np.float64)
    while live:
        p = weights[live] / weights[live].sum()
        for j in rng.choice(len(live), size=CHOICE_BLOCK, p=p):
            item = next(sources[live[j]], None)
            if item is None:
                del live[j]
                break  # the remaining choices index the old list: draw again
            yield item


def shuffle(items: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """Bounded shuffle: hold `size` items, yield a random one as each new item arrives (never more than `size` held)."""
    if size <= 1:
        yield from items
        return
    buffer = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(rng.integers(size))
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer


def _per_class(files: list[tuple[Path, str, int]], counts: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount([label for _, _, label in files], weights=counts, minlength=n_classes)


def class_counts(cfg: StreamConfig) -> np.ndarray:
    """Estimated drawings per class in the streamed files (all ranks alike): what the sampling weights start from."""
    files = _files(cfg)
    return _per_class(files, np.array([max(estimate_lines(p), 1.0) for p, _, _ in files]), len(cfg.classes))


def split_class_counts(cfg: StreamConfig) -> np.ndarray:
    """Estimated drawings per class in `cfg.split` of the streamed files: the class counts times the split's share."""
    return class_counts(cfg) * SPLIT_FRACTION[cfg.split]


def examples(cfg: StreamConfig, epoch: int = 0, endless: bool = True) -> Iterator[Example]:
    """This rank's shuffled, interleaved examples of the split: endless (unless this rank's ranges hold none), or
    one pass over this rank's shard."""
    files = _files(cfg)
    counts = np.array([max(estimate_lines(p), 1.0) for p, _, _ in files])
    per_class = _per_class(files, counts, len(cfg.classes))
    labels = np.array([label for _, _, label in files])
    # A file's share: its lines times the per-drawing weight n_c ** -power of its class (n_c over all its files).
    weights = counts * np.power(per_class[labels], -cfg.balance_power)
    start = (epoch * GOLDEN) % 1.0
    sources = [_file_examples(cfg, p, kind, label, start, endless) for p, kind, label in files]
    seeds = np.random.SeedSequence([cfg.seed, epoch, cfg.rank]).spawn(2)
    mixed = interleave(sources, weights, np.random.default_rng(seeds[0]))
    return shuffle(mixed, cfg.shuffle_buffer, np.random.default_rng(seeds[1]))


def batches(cfg: StreamConfig, epoch: int, batch: int, n_batches: int) -> Iterator[list[Example]]:
    """Exactly `n_batches` lists of `batch` examples: windows of SORT_WINDOW batches sorted by length (less padding),
    the batches of a window in random order. Raises when this rank's shard holds no example at all."""
    stream = examples(cfg, epoch)
    rng = np.random.default_rng([cfg.seed, epoch, cfg.rank, 2])
    done = 0
    while done < n_batches:
        take = min(SORT_WINDOW, n_batches - done) * batch
        window = list(itertools.islice(stream, take))
        if len(window) < take:
            raise ValueError(f"rank {cfg.rank} of {cfg.world_size} has no {cfg.split} drawings under {cfg.root}")
        window.sort(key=lambda e: len(e.stroke3))
        cut = [window[i : i + batch] for i in range(0, take, batch)]
        for k in rng.permutation(len(cut)):
            yield cut[k]
        done += len(cut)


# ---------------------------------------------------------------------------------------------------------------
# Loader workers


def _identity(x):
    return x  # DataLoader's default would turn numpy arrays into tensors


class _RankBatches(torch.utils.data.IterableDataset):
    """A rank's `n_batches` batches through `transform`, split over the DataLoader workers reading them."""

    def __init__(self, cfg: StreamConfig, epoch: int, batch: int, n_batches: int, transform: Callable):
        super().__init__()
        self.cfg, self.epoch, self.batch, self.n_batches, self.transform = cfg, epoch, batch, n_batches, transform

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        w, n_w = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        cfg = replace(self.cfg, rank=self.cfg.rank * n_w + w, world_size=self.cfg.world_size * n_w)
        n = self.n_batches // n_w + (w < self.n_batches % n_w)  # the workers' counts add up to n_batches
        rng = np.random.default_rng([self.cfg.seed, self.epoch, self.cfg.rank, w, 3])
        for examples in batches(cfg, self.epoch, self.batch, n):
            yield self.transform(examples, rng)


def loader(
    cfg: StreamConfig, epoch: int, batch: int, n_batches: int, transform: Callable, workers: int = 0
) -> Iterator:
    """This rank's `n_batches` batches as `transform(list[Example], rng)` makes them (tensors, augmentation): in this
    process (workers 0) or in `workers` DataLoader processes, taken from each in turn."""
    data = _RankBatches(cfg, epoch, batch, n_batches, transform)
    if workers <= 0:
        return iter(data)
    return iter(torch.utils.data.DataLoader(data, batch_size=None, num_workers=workers, collate_fn=_identity))


# ---------------------------------------------------------------------------------------------------------------
# Bounded in-memory sets: the scale factor, validation


def collect(cfg: StreamConfig, limit: int) -> list[Example]:
    """The first `limit` examples of the whole split (each drawing once), unshuffled: the same list on every rank
    (for validation and the scale factor, which every rank must compute identically)."""
    one = replace(cfg, rank=0, world_size=1, shuffle_buffer=0)
    return list(itertools.islice(examples(one, epoch=0, endless=False), limit))


def estimate_scale(cfg: StreamConfig, n: int = SCALE_SAMPLE) -> float:
    """sketch-rnn's offset scale (sketchlab.strokes.scale_factor) from `n` drawings of the split, the same on every
    rank (the cached path uses every training drawing; 10,000 give the same std to ~0.5%)."""
    return scale_factor([e.stroke3 for e in collect(replace(cfg, rasters=False, kinds=("simplified",)), n)])


def validation_cache(cfg: StreamConfig, limit: int) -> Cache:
    """A classifier Cache of the first `limit` simplified drawings of `cfg.split` (no bitmaps), identical on every
    rank, so `train_classifier.evaluate` runs on it unchanged."""
    items = collect(replace(cfg, kinds=("simplified",), rasters=True), limit)
    if not items:
        raise ValueError(f"no {cfg.split} drawings under {cfg.root} for validation")
    lengths = [len(e.stroke3) for e in items]
    return Cache(
        classes=list(cfg.classes),
        label=np.array([e.label for e in items], np.int64),
        split=np.full(len(items), SPLIT_CODE[cfg.split], np.int8),
        source=np.full(len(items), SIMPLIFIED, np.int8),
        raster=np.stack([e.raster for e in items]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        points=np.concatenate([e.stroke3 for e in items]).astype(np.float32),
        bm_label=np.zeros(0, np.int64),
        bm_split=np.zeros(0, np.int8),
        bm_raster=np.zeros((0, 28, 28), np.uint8),
        preprocessing_version=PREPROCESSING_VERSION,
    )
