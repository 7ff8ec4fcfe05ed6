"""Readers for the official Quick, Draw! formats, streaming, in the official layout.

Layout of a data folder (the shared sample and a full download of the official bucket alike):
  <root>/full/simplified/<word>.ndjson   one JSON record a line, `drawing` = [[x...], [y...]] per stroke, 0..255
  <root>/full/raw/<word>.ndjson          `drawing` = [[x...], [y...], [t...]] per stroke, canvas pixels, t in ms
  <root>/full/numpy_bitmap/<word>.npy    uint8 (N, 784) 28x28 renderings of simplified drawings
  <root>/full/binary/<word>.bin          the packed binary format of the simplified drawings (optional)
Also read: sketch-rnn `.npz` files (`train`/`valid`/`test` arrays of stroke-3 arrays).

Everything is a generator over records, so a full 50M-drawing download is never held in memory at once; `.npy`
files are memory-mapped. Records missing optional fields (`key_id`, `timestamp`, `countrycode`, `recognized`) are
read with `None` in their place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DrawingError
from .split import Split, split_of
from .strokes import Drawing, from_ndjson_strokes

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "quickdraw"  # ../shared beside the repo
KINDS = ("simplified", "raw")
RICH_MIN = 440  # "rich" classes have at least this many simplified drawings: 22 in the shared sample, all 345 in a full download


@dataclass(frozen=True)
class Record:
    """One drawing of the dataset. `drawing` is a list of (n_i, 2) arrays (simplified) or (n_i, 3) (raw)."""

    word: str
    drawing: Drawing
    key_id: str | None = None
    countrycode: str | None = None
    recognized: bool | None = None
    timestamp: str | None = None

    @property
    def split(self) -> Split:
        """Deterministic train/valid/test membership (see `sketchlab.split`)."""
        return split_of(self.key_id, self.drawing)


def default_data_dir() -> Path | None:
    """`$SKETCHLAB_DATA`, else `../shared/quickdraw` beside the project when it exists, else None."""
    env = os.environ.get("SKETCHLAB_DATA")
    if env:
        return Path(env)
    return DEFAULT_DATA_DIR if DEFAULT_DATA_DIR.is_dir() else None


def fingerprint(root: str | Path) -> str | None:
    """A short id of a data folder's contents: sha1 over the name and size of every file under full/ (stat only, no
    reads), so the same data is recognised wherever it lies; None for a folder with no such file. The classifier
    manifests record the fingerprint of the folder they trained on, so evaluation can tell that folder, where only
    the held-out split is fair, from any other (`training.evaluate --split auto`)."""
    files = sorted(p for p in (Path(root) / "full").rglob("*") if p.is_file())
    if not files:
        return None
    digest = hashlib.sha1()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


DATASET = "Quick, Draw! dataset, Google (CC BY 4.0), in the official layout"


def provenance(root: str | Path) -> dict:
    """What a model manifest records of the data folder it was made from: the dataset it holds (credit included) and
    its `fingerprint`, never the folder's path, which means nothing on another machine."""
    return {"folder": DATASET, "fingerprint": fingerprint(root)}


def read_categories(root: str | Path) -> list[str]:
    """The class names: `categories.txt` in the data folder if present, else the words of the ndjson/npy files."""
    root = Path(root)
    listed = root / "categories.txt"
    if listed.exists():
        return [w.strip() for w in listed.read_text().splitlines() if w.strip()]
    words = {p.stem for kind in (*KINDS, "numpy_bitmap") for p in (root / "full" / kind).glob("*.*")}
    return sorted(words)


def rich_words(root: str | Path, words: list[str] | None = None) -> list[str]:
    """The words (default: `read_categories`) with at least RICH_MIN simplified drawings in the folder, in order: the
    classes the acceptance figures call rich. Stops counting at RICH_MIN lines a file, so a full download costs
    345 x 440 lines, not 22 GB."""
    root = Path(root)
    words = read_categories(root) if words is None else words
    return [w for w in words if count_lines(root / "full" / "simplified" / f"{w}.ndjson", RICH_MIN) >= RICH_MIN]


def count_lines(path: str | Path, at_most: int | None = None) -> int:
    """Non-blank lines of a text file (0 when it does not exist), counting no further than `at_most`."""
    count = 0
    if not Path(path).exists():
        return count
    with open(path, "rb") as f:
        for line in f:
            if at_most is not None and count >= at_most:
                break
            count += bool(line.strip())
    return count


# ---------------------------------------------------------------------------------------------------------------
# ndjson


def parse_ndjson_line(line: str | bytes) -> Record:
    """One ndjson line -> Record. Raises `DrawingError` for malformed JSON or drawings."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DrawingError(f"not a JSON record: {e}") from e
    if not isinstance(obj, dict) or "drawing" not in obj or "word" not in obj:
        raise DrawingError("an ndjson record needs at least 'word' and 'drawing'")
    recognized = obj.get("recognized")
    return Record(
        word=str(obj["word"]),
        drawing=from_ndjson_strokes(obj["drawing"]),
        key_id=str(obj["key_id"]) if obj.get("key_id") is not None else None,
        countrycode=obj.get("countrycode"),
        recognized=bool(recognized) if recognized is not None else None,
        timestamp=obj.get("timestamp"),
    )


def read_ndjson(path: str | Path, *, limit: int | None = None, skip_bad: bool = True) -> Iterator[Record]:
    """Stream the records of one ndjson file (at most `limit`). Bad lines are skipped (or raised, with `skip_bad=False`)."""
    count = 0
    with open(path, "rb") as f:
        for line in f:
            if limit is not None and count >= limit:
                return
            if not line.strip():
                continue
            try:
                record = parse_ndjson_line(line)
            except DrawingError:
                if skip_bad:
                    continue
                raise
            count += 1
            yield record


def iter_drawings(
    root: str | Path,
    kind: str = "simplified",
    words: list[str] | None = None,
    split: Split | None = None,
    limit_per_word: int | None = None,
) -> Iterator[Record]:
    """Stream the records of `<root>/full/<kind>/<word>.ndjson`, word by word, optionally one split only."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = Path(root) / "full" / kind
    paths = sorted(folder.glob("*.ndjson")) if words is None else [folder / f"{w}.ndjson" for w in words]
    for path in paths:
        if not path.exists():
            continue
        kept = 0
        for record in read_ndjson(path):
            if split is not None and record.split != split:
                continue
            yield record
            kept += 1
            if limit_per_word is not None and kept >= limit_per_word:
                break


# ---------------------------------------------------------------------------------------------------------------
# numpy_bitmap


def read_bitmaps(root: str | Path, word: str) -> np.ndarray:
    """`<root>/full/numpy_bitmap/<word>.npy`, memory-mapped: uint8 (N, 784), 0 = background."""
    path = Path(root) / "full" / "numpy_bitmap" / f"{word}.npy"
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.ndim != 2 or array.shape[1] != 784 or array.dtype != np.uint8:
        raise DrawingError(f"{path} must hold uint8 (N, 784) bitmaps, got {array.dtype} {array.shape}")
    return array


def bitmap_words(root: str | Path) -> list[str]:
    """Words that have a numpy_bitmap file."""
    return sorted(p.stem for p in (Path(root) / "full" / "numpy_bitmap").glob("*.npy"))


def read_bitmap_pairs(root: str | Path) -> dict[str, dict[str, str]]:
    """`full/numpy_bitmap_pairs.json` ({word: {row: key_id}}: bitmaps Google rendered from a simplified drawing in this
    folder) when the folder has it, else {} (a full official download has no such file)."""
    path = Path(root) / "full" / "numpy_bitmap_pairs.json"
    return json.loads(path.read_text()) if path.exists() else {}


def bitmap_splits(word: str, n_rows: int, pairs: dict[str, dict[str, str]]) -> list[Split]:
    """Split of each row of `word`'s bitmaps. A bitmap rendered from a drawing here takes that drawing's split, so a
    held-out drawing's bitmap never trains the CNN; the others, which have no key_id, split by their (word, row)
    identity, salted like the drawings."""
    paired = pairs.get(word, {})
    return [
        split_of(paired[str(row)]) if str(row) in paired else split_of(f"bitmap:{word}:{row}", None)
        for row in range(n_rows)
    ]


# ---------------------------------------------------------------------------------------------------------------
# sketch-rnn .npz


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: sketch-rnn's .npz hold object arrays of stroke-3 arrays, which numpy
    stores as pickles, and a pickle may otherwise run arbitrary code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a data file")
        return super().find_class(module, name)


def _read_npy_member(data: bytes) -> np.ndarray:
    buf = io.BytesIO(data)
    version = np.lib.format.read_magic(buf)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(buf)
    if dtype.hasobject:
        return _NumpyOnlyUnpickler(buf).load()
    count = int(np.prod(shape))
    array = np.frombuffer(buf.read(count * dtype.itemsize), dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def read_npz(path: str | Path) -> dict[str, list[np.ndarray]]:
    """sketch-rnn .npz -> {"train" | "valid" | "test": [stroke-3 (n, 3) arrays]} (safely, see `_NumpyOnlyUnpickler`)."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                array = _read_npy_member(z.read(name))
                out[name.removesuffix(".npy")] = [np.asarray(s, dtype=np.float32) for s in array]
    except (zipfile.BadZipFile, pickle.UnpicklingError, ValueError, EOFError) as e:
        raise DrawingError(f"{path} is not a readable sketch-rnn .npz: {e}") from e
    return out


def write_npz(path: str | Path, **splits: list[np.ndarray]) -> None:
    """Write stroke-3 arrays in sketch-rnn's .npz layout (object arrays, as the published files have)."""
    arrays = {}
    for name, strokes in splits.items():
        array = np.empty(len(strokes), dtype=object)
        array[:] = [np.asarray(s, dtype=np.int16) for s in strokes]
        arrays[name] = array
    np.savez(path, **arrays)


# ---------------------------------------------------------------------------------------------------------------
# Binary .bin (the official "binary" files: little-endian packed simplified drawings)
#   key_id uint64, countrycode 2 chars, recognized uint8, timestamp uint32 (unix seconds), n_strokes uint16,
#   then per stroke: n_points uint16, x uint8[n_points], y uint8[n_points]


_HEADER = struct.Struct("<Q2sBIH")


def read_bin(path: str | Path, word: str | None = None) -> Iterator[Record]:
    """Stream the drawings of an official `.bin` file. A truncated file raises `DrawingError` at the bad record."""
    word = word if word is not None else Path(path).stem
    with open(path, "rb") as f:
        while True:
            head = f.read(_HEADER.size)
            if not head:
                return
            if len(head) < _HEADER.size:
                raise DrawingError(f"{path}: truncated record header")
            key_id, country, recognized, timestamp, n_strokes = _HEADER.unpack(head)
            strokes = []
            for _ in range(n_strokes):
                raw = f.read(2)
                if len(raw) < 2:
                    raise DrawingError(f"{path}: truncated stroke")
                (n,) = struct.unpack("<H", raw)
                xy = np.frombuffer(f.read(2 * n), dtype=np.uint8)
                if len(xy) < 2 * n:
                    raise DrawingError(f"{path}: truncated stroke points")
                strokes.append(xy.reshape(2, n).T.astype(np.int32))
            yield Record(
                word, strokes, str(key_id), country.decode("ascii", "replace"), bool(recognized), str(timestamp)
            )


def write_bin(path: str | Path, records: list[Record]) -> None:
    """Write simplified records in the official `.bin` layout (used by tests to make fixtures)."""
    with open(path, "wb") as f:
        for r in records:
            country = (r.countrycode or "ZZ").encode("ascii")[:2].ljust(2, b"Z")
            timestamp = int(r.timestamp) if r.timestamp and str(r.timestamp).isdigit() else 0
            f.write(_HEADER.pack(int(r.key_id or 0), country, int(bool(r.recognized)), timestamp, len(r.drawing)))
            for s in r.drawing:
                s = np.asarray(s)[:, :2].astype(np.uint8)
                f.write(struct.pack("<H", len(s)))
                f.write(s[:, 0].tobytes())
                f.write(s[:, 1].tobytes())
