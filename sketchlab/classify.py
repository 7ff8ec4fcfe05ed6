"""Live guesses: the stroke model, the CNN and their fusion, through ONNX Runtime (numpy only, no torch).

    clf = Classifier.load()                      # models/stroke.onnx, models/cnn.onnx, models/fusion.json
    guesses = clf.classify(canvas_strokes)       # Guesses(fused=[Guess("cat", 0.91), ...], stroke=..., cnn=...)

Each model outputs logits over all classes; `fusion.json` (written by `training.fuse`, tuned on the validation
split) weights them and may put part of the class prior back:

    fused log-score = w_stroke * log p_stroke + w_cnn * log p_cnn + g_fused * log prior
    each model alone:  log p_model + g_model * log prior

then divides each score by its temperature T and renormalises (T never changes the ranking). Requests sent while
the pen is down (`pen_down=True`: `Fusion.pen_down`, own weights and temperatures) and once it has rested
(`settled=True`: `Fusion.settled`, own temperatures) have settings of their own. `shown=word` holds the guess the
page shows first unless another is more than e^hold times as likely (`Fusion.hold`; ordering only). A model with
`mirror` averages its log p over the drawing and its left-right mirror (one batch). The two models run side by
side (the CNN on a worker thread); with only one loaded, the fused guesses are its own. Why each setting:
docs/classifiers.md, "Fusion".
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import DrawingError, ModelError
from .prepare import PREPROCESSING_VERSION, RASTER_STEP, SIMPLIFY_STEP, Prepared, from_canvas, stale_steps
from .runtime import MODELS_DIR, Manifest, Model, load_onnx

MODEL_NAMES = ("stroke", "cnn")  # models/<name>.onnx
MODEL_STEPS = {"stroke": (SIMPLIFY_STEP,), "cnn": (SIMPLIFY_STEP, RASTER_STEP)}  # preprocessing each model sees
MODEL_INPUTS = {"stroke": ("strokes", "lengths"), "cnn": ("image",)}  # what this code feeds each graph
FUSION_FILE = "fusion.json"
DEFAULT_MAX_POINTS = 200  # stroke model input cut, when a manifest does not say (it always should)
WARMUP_POINTS = 250  # the longest drawing the app expects often; sessions allocate for it once


@dataclass(frozen=True)
class Guess:
    word: str
    prob: float


@dataclass(frozen=True)
class Guesses:
    fused: list[Guess]  # top-k of the fusion (or of whichever model is available if one is broken)
    stroke: list[Guess] | None  # None when the stroke model is not loaded
    cnn: list[Guess] | None  # None when the CNN is not loaded
    raster: np.ndarray  # (28, 28) uint8, what the CNN saw


@dataclass(frozen=True)
class Fusion:
    """How the model outputs combine (see the module docstring)."""

    weights: dict[str, float]  # model name -> weight of its log-probabilities in the fused score
    prior_weight: dict[str, float]  # "stroke" | "cnn" | "fused" -> weight of log prior
    log_prior: np.ndarray  # (C,) log class frequencies of the training drawings
    mirror: dict[str, bool] = field(default_factory=dict)  # model name -> also look at the drawing mirrored
    temperature: dict[str, float] = field(default_factory=dict)  # "stroke" | "cnn" | "fused" -> T (default 1)
    # {"weights": {...}, "temperature": {...}} in place of the two above while the pen is down; {}: the same ones
    pen_down: dict[str, dict[str, float]] = field(default_factory=dict)
    hold: float = 0.0  # log-odds another guess needs over the one the page shows first now to replace it
    settled: dict[str, dict[str, float]] = field(default_factory=dict)  # as `pen_down`, once the pen has rested

    @classmethod
    def default(cls, n_classes: int) -> Fusion:
        return cls({name: 1.0 for name in MODEL_NAMES}, {}, np.zeros(n_classes, np.float32))

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Fusion:
        c = manifest.config
        return cls(
            dict(c["weights"]),
            dict(c.get("prior_weight", {})),
            np.asarray(c["log_prior"], np.float32),
            {k: bool(v) for k, v in c.get("mirror", {}).items()},
            {k: float(v) for k, v in c.get("temperature", {}).items()},
            {part: {k: float(v) for k, v in values.items()} for part, values in c.get("pen_down", {}).items()},
            float(c.get("hold", 0.0)),
            {part: {k: float(v) for k, v in values.items()} for part, values in c.get("settled", {}).items()},
        )

    def for_request(self, pen_down: bool = False, settled: bool = False) -> Fusion:
        """The settings for one kind of request: after a stroke (the default ones), while the last stroke is still
        being drawn (`pen_down`), or once the pen has rested (`settled`)."""
        if pen_down and settled:
            raise DrawingError("a request is either pen_down (a stroke still being drawn) or settled, not both")
        part = self.pen_down if pen_down else self.settled if settled else {}
        return replace(
            self,
            weights=part.get("weights", self.weights),
            temperature=part.get("temperature", self.temperature),
            pen_down={},
            settled={},
        )

    def calibrate(self, name: str, score: np.ndarray) -> np.ndarray:
        """(B, C) log-score of `name` ("stroke" | "cnn" | "fused") -> log-probabilities at its temperature."""
        return log_softmax(score / self.temperature.get(name, 1.0))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (B, C)."""
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def hold_order(log_probs: np.ndarray, shown: np.ndarray, hold: float) -> np.ndarray:
    """(B, C) log-probabilities and (B,) the class each drawing's page shows first now (-1: none) -> (B, C) scores
    that order the guesses: the same, with `hold` added to that class's. Not probabilities: show `log_probs`'."""
    shown = np.asarray(shown, np.int64).reshape(-1)
    rows = np.flatnonzero(shown >= 0)
    if not hold or not len(rows):
        return log_probs
    out = log_probs.copy()
    out[rows, shown[rows]] += hold
    return out


def mean_of_views(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Log-probabilities (B, C) of drawings as drawn and of their left-right mirrors -> their mean, renormalised."""
    return log_softmax(0.5 * (plain + mirrored))


def best_guesses(log_probs: np.ndarray, classes: list[str], k: int, order: np.ndarray | None = None) -> list[Guess]:
    """(C,) log-probabilities -> the k best guesses, best first, each with its probability; by (C,) `order` where
    given (`hold_order`), else by probability."""
    k = min(k, len(classes))
    order = log_probs if order is None else order
    idx = np.argpartition(-order, k - 1)[:k]
    idx = idx[np.argsort(-order[idx], kind="stable")]
    return [Guess(classes[i], float(np.exp(log_probs[i]))) for i in idx]


class Classifier:
    """The loaded classifiers. Build with `Classifier.load()`."""

    def __init__(
        self, models: dict[str, Model], fusion: Fusion, classes: list[str], problems: list[str], parallel: bool = True
    ):
        self.models = models  # name -> Model, only those that loaded
        self.fusion = fusion
        self.classes = classes
        self.problems = problems  # one clear message per model that failed to load
        self._index = {word: i for i, word in enumerate(classes)}
        # Workers for every model but the first, shared by concurrent requests; threads start on first use.
        workers = (os.cpu_count() or 1) * (len(models) - 1)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="classifier") if parallel and workers else None

    @classmethod
    def load(cls, models_dir: str | Path = MODELS_DIR, threads: int | None = None, parallel: bool = True) -> Classifier:
        """Load what can be loaded; raises `ModelError` only when no classifier loads at all. `threads`: ONNX Runtime
        intra-op threads per model; `parallel`: run the two models side by side (False: one after the other)."""
        models, problems = {}, []
        for name in MODEL_NAMES:
            try:
                models[name] = load_onnx(name, models_dir, threads=threads, expect_inputs=MODEL_INPUTS[name])
            except ModelError as e:
                problems.append(f"{name} model unavailable: {e}")
        if not models:
            raise ModelError("no classifier could be loaded: " + "; ".join(problems))
        classes = next(iter(models.values())).manifest.classes
        for name in list(models):
            if models[name].manifest.classes != classes:
                problems.append(f"{name} model unavailable: its classes differ from the other model's; re-export both")
                del models[name]
        for name, model in models.items():  # a warning, not a refusal: the model runs, a little less accurately
            stale = stale_steps(model.manifest.preprocessing_version, MODEL_STEPS[name])
            if stale:
                problems.append(
                    f"{name} model was trained with preprocessing {model.manifest.preprocessing_version!r} and this "
                    f"runtime makes {PREPROCESSING_VERSION!r} (changed: {', '.join(stale)}); its guesses may be less "
                    "accurate than measured: retrain or fine-tune it (`make models`)"
                )
        fusion = Fusion.default(len(classes))
        path = Path(models_dir) / FUSION_FILE
        try:
            manifest = Manifest.load(path)
            fusion = Fusion.from_manifest(manifest)
            if len(fusion.log_prior) != len(classes) or manifest.classes != classes:
                raise ModelError(f"{path} was made for other classes; run `python -m training.fuse`")
        except (ModelError, KeyError, TypeError, ValueError) as e:
            fusion = Fusion.default(len(classes))
            problems.append(f"fusion settings unavailable, using equal weights and no prior: {e}")
        return cls(models, fusion, classes, problems, parallel)

    @property
    def provider(self) -> str:
        return next(iter(self.models.values())).provider

    # -----------------------------------------------------------------------------------------------------------
    # Model inputs

    def stroke_input(self, prepared: Prepared) -> np.ndarray:
        """The stroke model's input for one drawing: (T, 5) stroke-5, offsets / scale factor, first points only."""
        manifest = self.models["stroke"].manifest
        max_points = int(manifest.config.get("max_points", DEFAULT_MAX_POINTS))
        return prepared.stroke5(manifest.scale_factor, min(len(prepared.stroke3), max_points))

    def _stroke_logits(self, prepared: Sequence[Prepared], mirrored: bool = False) -> np.ndarray:
        # Drawings of equal length run as one batch, so no padding ever enters the model: the same numbers as one
        # drawing at a time, as the app runs it. `mirrored`: each drawing and then its left-right mirror, (2B, C).
        seqs = [self.stroke_input(p) for p in prepared]
        if mirrored:
            seqs += [s * np.array([-1, 1, 1, 1, 1], s.dtype) for s in seqs]  # dx -> -dx
        out = np.empty((len(seqs), len(self.classes)), np.float32)
        by_length: dict[int, list[int]] = {}
        for i, s in enumerate(seqs):
            by_length.setdefault(len(s), []).append(i)
        for length, idx in by_length.items():
            batch = np.stack([seqs[i] for i in idx]).astype(np.float32)  # (b, T, 5)
            lengths = np.full(len(idx), length, np.int64)
            out[idx] = self.models["stroke"].run(strokes=batch, lengths=lengths)["logits"]
        return out

    def _cnn_logits(self, rasters: np.ndarray) -> np.ndarray:
        images = (np.asarray(rasters, np.float32) / 255.0).reshape(-1, 1, 28, 28)  # (B, 1, 28, 28) in 0..1
        return self.models["cnn"].run(image=images)["logits"]

    # -----------------------------------------------------------------------------------------------------------
    # Scores

    def combine(
        self, raw: dict[str, np.ndarray], pen_down: bool = False, settled: bool = False
    ) -> dict[str, np.ndarray]:
        """Raw model log-probabilities {name: (B, C)} -> calibrated log-probabilities of each model and "fused".
        `pen_down`: the drawings' last strokes are still being drawn (`Fusion.pen_down`); `settled`: the pen has
        rested (`Fusion.settled`)."""
        fusion = self.fusion.for_request(pen_down, settled)
        out = {
            name: fusion.calibrate(name, log_softmax(lp) + fusion.prior_weight.get(name, 0.0) * fusion.log_prior)
            for name, lp in raw.items()
        }
        if len(raw) == 1:
            out["fused"] = next(iter(out.values()))
            return out
        score = sum(fusion.weights.get(name, 1.0) * lp for name, lp in raw.items())
        out["fused"] = fusion.calibrate("fused", score + fusion.prior_weight.get("fused", 0.0) * fusion.log_prior)
        return out

    def raster_views(self, rasters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The CNN's log-probabilities of (B, 28, 28) bitmaps and of their left-right mirrors, each (B, C), from one
        batch. Mirroring the bitmap is exactly rasterizing the mirrored drawing (the drawing is centred)."""
        rasters = np.asarray(rasters).reshape(-1, 28, 28)
        lp = log_softmax(self._cnn_logits(np.concatenate([rasters, rasters[:, :, ::-1]])))
        return lp[: len(rasters)], lp[len(rasters) :]

    def _views(self, name: str, prepared: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray]:
        """Model `name`'s log-probabilities of the drawings as drawn and of their left-right mirrors, each (B, C)."""
        if name == "cnn":
            return self.raster_views(np.stack([p.raster for p in prepared]))
        lp = log_softmax(self._stroke_logits(prepared, mirrored=True))
        return lp[: len(prepared)], lp[len(prepared) :]

    def view_log_probs(self, prepared: Sequence[Prepared]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{model name: (log-probabilities as drawn, of the mirrored drawings)} for `training.fuse`, which measures
        whether their mean helps: the models were trained on mirrored drawings too (a cat facing left is a cat)."""
        return {name: self._views(name, prepared) for name in MODEL_NAMES if name in self.models}

    def raw_log_probs(self, prepared: Sequence[Prepared]) -> dict[str, np.ndarray]:
        """Uncalibrated log-probabilities {model name: (B, C)} of several prepared drawings: each model's own, or
        the mean of the two views' where `Fusion.mirror` says so."""
        first, *rest = [name for name in MODEL_NAMES if name in self.models]
        if self._pool is None:
            return {name: self._model_log_probs(name, prepared) for name in (first, *rest)}
        pending = {name: self._pool.submit(self._model_log_probs, name, prepared) for name in rest}
        out = {first: self._model_log_probs(first, prepared)}
        return out | {name: job.result() for name, job in pending.items()}

    def _model_log_probs(self, name: str, prepared: Sequence[Prepared]) -> np.ndarray:
        if self.fusion.mirror.get(name):
            return mean_of_views(*self._views(name, prepared))
        if name == "stroke":
            return log_softmax(self._stroke_logits(prepared))
        return log_softmax(self._cnn_logits(np.stack([p.raster for p in prepared])))

    def probabilities(self, prepared: Sequence[Prepared]) -> dict[str, np.ndarray]:
        """Batch API: {"stroke" | "cnn" | "fused": (B, C) probabilities} for prepared drawings (models loaded only)."""
        return {k: np.exp(v) for k, v in self.combine(self.raw_log_probs(prepared)).items()}

    def raster_probabilities(self, rasters: np.ndarray) -> np.ndarray:
        """(B, 28, 28) uint8 bitmaps (e.g. Google's own) -> (B, C) calibrated CNN probabilities."""
        if "cnn" not in self.models:
            raise ModelError("the CNN is not loaded: " + "; ".join(self.problems))
        if self.fusion.mirror.get("cnn"):
            lp = mean_of_views(*self.raster_views(rasters))
        else:
            lp = log_softmax(self._cnn_logits(rasters))
        return np.exp(self.combine({"cnn": lp})["cnn"])

    def classify(
        self,
        strokes: object,
        top_k: int = 5,
        pen_down: bool = False,
        shown: str | None = None,
        settled: bool = False,
    ) -> Guesses:
        """Canvas strokes -> top-k guesses. Raises `DrawingError` on bad input. `pen_down`: the last stroke is still
        being drawn (the page's live requests while the pen is down); `shown`: the guess the page shows first now,
        if any (one of `classes`); `settled`: the pen has rested since the last change (not with `pen_down`)."""
        self.fusion.for_request(pen_down, settled)  # the pair is checked before any work
        shown_index = self.class_index(shown)
        prepared = from_canvas(strokes)
        return self.classify_prepared(prepared, top_k, pen_down, shown_index, settled)

    def class_index(self, word: str | None) -> int:
        """A class name -> its output index; None -> -1. Raises `DrawingError` for anything else."""
        if word is None:
            return -1
        if not isinstance(word, str) or word not in self._index:
            raise DrawingError(f"shown must be one of the {len(self.classes)} classes or none, got {word!r:.60}")
        return self._index[word]

    def classify_prepared(
        self, prepared: Prepared, top_k: int = 5, pen_down: bool = False, shown: int = -1, settled: bool = False
    ) -> Guesses:
        scores = {k: v[0] for k, v in self.combine(self.raw_log_probs([prepared]), pen_down, settled).items()}
        order = hold_order(scores["fused"][None], np.array([shown]), self.fusion.hold)[0]
        return Guesses(
            fused=best_guesses(scores["fused"], self.classes, top_k, order),
            stroke=best_guesses(scores["stroke"], self.classes, top_k) if "stroke" in scores else None,
            cnn=best_guesses(scores["cnn"], self.classes, top_k) if "cnn" in scores else None,
            raster=prepared.raster,
        )

    def warmup(self) -> None:
        """One call on a dummy zig-zag of WARMUP_POINTS points, so the first real call does not pay for allocation."""
        t = np.arange(WARMUP_POINTS, dtype=np.float64)
        zigzag = [np.column_stack([t * 2, (t % 20) * 5, t * 10]).tolist()]
        self.classify(zigzag)


def save_fusion(path: str | Path, fusion: Fusion, classes: list[str], metrics: dict, extra: dict | None = None) -> None:
    """Write fusion.json as a manifest (kind "fusion"); used by training.fuse."""
    from .prepare import PREPROCESSING_VERSION

    manifest = Manifest(
        name="fusion",
        kind="fusion",
        classes=classes,
        inputs={name: ["B", len(classes)] for name in MODEL_NAMES},
        outputs={"fused": ["B", len(classes)]},
        input_format="log-softmax of each classifier's logits (mean over the drawing and its mirror where `mirror`); "
        "fused = sum_m w_m * logp_m + g * log_prior; every output then log_softmax(score / temperature); "
        "`pen_down`: the weights and temperatures for a drawing whose last stroke is still being drawn; "
        "`settled`: the same once the pen has rested (the drawing most likely finished); "
        "`hold`: the log-odds another fused guess needs over the one the page shows first to replace it",
        preprocessing_version=PREPROCESSING_VERSION,
        config={
            "weights": fusion.weights,
            "prior_weight": fusion.prior_weight,
            "log_prior": [round(float(v), 5) for v in fusion.log_prior],
            "mirror": fusion.mirror,
            "temperature": fusion.temperature,
            "pen_down": fusion.pen_down,
            "hold": fusion.hold,
            "settled": fusion.settled,
        },
        metrics=metrics,
        **(extra or {}),
    )
    Path(path).write_text(json.dumps(manifest.__dict__, indent=1) + "\n")
