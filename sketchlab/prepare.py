"""Canvas strokes -> everything the classifiers see: the one path shared by serving, evaluation and training.

    canvas input  --simplify-->  simplified (0..255)  --to_stroke3/normalize/to_stroke5-->  stroke-5 (T + 1, 5)
                                                      --rasterize-->                       28x28 uint8

Training reads the official simplified files and enters at the second step (`from_simplified`); raw files and the
canvas enter at the first (`from_canvas`), so both go through exactly Google's preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .raster import rasterize
from .simplify import simplify
from .strokes import Drawing, normalize, to_stroke3, to_stroke5

PREPROCESSING_VERSION = "qd-simplify-1/raster-2"  # bump when any step changes what a model sees; stored in manifests
SIMPLIFY_STEP, RASTER_STEP = "qd-simplify", "raster"  # the steps the version numbers; stroke models use the first


def stale_steps(trained_with: str, steps: tuple[str, ...] = (SIMPLIFY_STEP, RASTER_STEP)) -> list[str]:
    """The `steps` whose version in `trained_with` (a model's PREPROCESSING_VERSION) differs from this runtime's.

    "qd-simplify-1/raster-1" against "qd-simplify-1/raster-2" -> ["raster"]: a CNN trained with the old rasterizer
    sees slightly different input now; a stroke model (steps=("qd-simplify",)) does not.
    """

    def parts(version: str) -> dict[str, str]:
        return dict(p.rsplit("-", 1) if "-" in p else (p, "") for p in version.split("/"))

    trained, current = parts(trained_with), parts(PREPROCESSING_VERSION)
    return [s for s in steps if trained.get(s) != current.get(s)]


@dataclass(frozen=True)
class Prepared:
    """One drawing in every form the models use."""

    simplified: Drawing  # list of int32 (n_i, 2), aligned to the top-left, 0..255
    stroke3: np.ndarray  # (N, 3) float32 [dx, dy, pen_lifted], in simplified pixels (not normalised)
    raster: np.ndarray  # (28, 28) uint8, 0 = background

    def stroke5(self, scale: float, max_len: int | None = None) -> np.ndarray:
        """(T + 1, 5) float32 stroke-5 with offsets divided by the model's `scale`, start token first."""
        return to_stroke5(normalize(self.stroke3, scale), max_len)


def from_simplified(drawing: Drawing) -> Prepared:
    """An already simplified drawing (official simplified files) -> Prepared."""
    return Prepared(drawing, to_stroke3(drawing), rasterize(drawing))


def from_canvas(strokes: object) -> Prepared:
    """Canvas input or a raw drawing (see `sketchlab.strokes`) -> Prepared. Raises `DrawingError` on bad input."""
    return from_simplified(simplify(strokes))
