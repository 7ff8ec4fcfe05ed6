"""SketchLab runtime: Quick, Draw! preprocessing, rasterization, data readers and ONNX Runtime inference.

    import sketchlab
    classifier = sketchlab.load_classifier()
    print(classifier.classify([[[10, 10, 0], [200, 40, 120], [120, 220, 300]]]).fused)

Pure numpy + onnxruntime + pillow: this package never imports torch or gradio. (Google's preprocessing is
`sketchlab.simplify.simplify`; it is not re-exported here, so the name keeps meaning the module.)
"""

from __future__ import annotations

from pathlib import Path

from .errors import DrawingError, ModelError
from .prepare import PREPROCESSING_VERSION, Prepared, from_canvas, from_simplified
from .raster import rasterize
from .strokes import from_stroke3, from_stroke5, to_stroke3, to_stroke5, validate_canvas

__version__ = "0.1.0"

__all__ = [
    "DrawingError",
    "ModelError",
    "PREPROCESSING_VERSION",
    "Prepared",
    "from_canvas",
    "from_simplified",
    "from_stroke3",
    "from_stroke5",
    "load_classifier",
    "load_generator",
    "rasterize",
    "to_stroke3",
    "to_stroke5",
    "validate_canvas",
]


def load_classifier(models_dir: str | Path | None = None):
    """The shipped stroke model, CNN and their fusion (`sketchlab.classify.Classifier`)."""
    from .classify import Classifier
    from .runtime import MODELS_DIR

    return Classifier.load(models_dir or MODELS_DIR)


def load_generator(models_dir: str | Path | None = None):
    """The shipped class-conditioned generator (`sketchlab.generate.Generator`)."""
    from .generate import Generator
    from .runtime import MODELS_DIR

    return Generator.load(models_dir or MODELS_DIR)
