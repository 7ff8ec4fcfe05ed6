"""What the web app asks of the models, without Gradio: parse and check requests, call the models, shape the answers.

`app.py` builds the page and wires each event to one `Service` method; everything here is plain Python so it can be
tested without a browser or a server. Bad requests raise `DrawingError`; a model that is not loaded raises
`ModelError`; the app turns both into `gr.Error` (the page) or an error response (the API). The HTML the page
shows is made by `sketchlab.page`.

    service = Service.load()                 # once, at start: ONNX sessions, warm-up, problems collected
    service.classify('[[[10, 10, 0], [90, 90, 120]]]')   # -> {"fused": [{"word", "prob"}, ...], "stroke", "cnn"}
    service.generate("cat", temperature=0.4, seed=1)     # -> [[[x, y, t_ms], ...], ...] in the 0..255 frame
    service.complete(strokes, temperature=0.4, seed=1)   # -> {"word": ..., "strokes": only the new strokes}
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import DrawingError, ModelError
from .runtime import CPU, MODELS_DIR
from .strokes import validate_canvas

log = logging.getLogger("sketchlab.service")

MAX_PAYLOAD_CHARS = 1_000_000  # JSON text of one drawing: MAX_POINTS points of [x, y, t] need ~500k chars at most
TOP_K = 5  # guesses shown per model, as in the issue
TOP_GUESS = "(my top guess)"  # complete(word=TOP_GUESS): finish the drawing as the classifier's best guess
TEMPERATURE_RANGE = (0.01, 2.0)  # below: every sample is the mode; above: scribbles
GUIDANCE_RANGE = (0.0, 3.0)  # classifier-free guidance scale: 0 off; past ~1.5 strokes break apart (docs/generator.md)
DEFAULT_GUIDANCE = 1.0  # = sketchlab.generate.DEFAULT_GUIDANCE (checked by a test; generate.py is imported lazily)
MAX_SEED = 2**31 - 1  # numpy accepts more, but gradio_client and JS numbers stay exact below this
MAX_VARIATIONS = 6  # side by side on the page; each costs one ~50 ms sampling loop
MAX_GENERATED_POINTS = 250  # sketch-rnn's usual max_seq_len: longer samples are rarely better
# ONNX Runtime threads per classifier session: a batch-1 request gains little from a second thread, and a parallel
# op stalls whenever another process or request holds a core (measured under load: p99 47 ms vs 63 ms)
CLASSIFIER_THREADS = 1
COORD_DECIMALS = 1  # coordinates sent to the page: sub-pixel precision is invisible
# generator_quality.json per class (training/evaluate_generator.py): the share of its drawings the fused classifier
# recognises; the first figure present is shown beside the category, under this name
QUALITY_KEYS = {"top1": "recognised", "top3": "top-3", "top5": "top-5"}

WARMUP_DRAWING = [[[0, 0, 0], [40, 30, 16], [80, 10, 32]], [[10, 60, 200], [70, 60, 216]]]  # any small drawing


# ---------------------------------------------------------------------------------------------------------------
# Request checking


def parse_strokes(payload: object) -> list:
    """Canvas strokes as JSON text (the API) or already-parsed lists (page events) -> a list of strokes.

    Accepts `[[[x, y, t_ms], ...], ...]` or `{"strokes": [...]}`. Raises `DrawingError` for text over
    `MAX_PAYLOAD_CHARS`, malformed JSON, and anything `sketchlab.strokes.validate_canvas` refuses. An empty list is
    returned as is (the page's empty state); callers that need strokes check for it. A drawing that is only a dot is
    accepted (a drawing in progress: `classify` guesses from it; `Generator.complete` refuses it itself).
    """
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        if len(payload) > MAX_PAYLOAD_CHARS:
            raise DrawingError(f"the drawing is {len(payload):,} characters of JSON; at most {MAX_PAYLOAD_CHARS:,}")
        try:
            # parse_int=float: a 400-digit integer becomes inf (refused below) instead of an unbounded int
            payload = json.loads(payload, parse_int=float) if payload.strip() else []
        except (json.JSONDecodeError, RecursionError) as e:
            raise DrawingError(f"the drawing is not valid JSON ({type(e).__name__}: {str(e)[:80]})") from e
    if isinstance(payload, dict):
        payload = payload.get("strokes")
    if payload is None:
        raise DrawingError("no drawing given: send a list of strokes [[[x, y, t_ms], ...], ...]")
    if isinstance(payload, list) and not payload:
        return []
    try:
        drawing = validate_canvas(payload, min_extent=False)
    except (OverflowError, RecursionError, TypeError) as e:  # huge ints or absurd nesting from a hostile client
        raise DrawingError(f"the drawing holds values that are not coordinates ({type(e).__name__})") from e
    return [s.tolist() for s in drawing]


def _check_number(name: str, value: object, lo: float, hi: float) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as e:
        raise DrawingError(f"{name} must be a number between {lo} and {hi}, got {value!r}") from e
    if not (math.isfinite(f) and lo <= f <= hi):
        raise DrawingError(f"{name} must be between {lo} and {hi}, got {value!r}")
    return f


def check_temperature(temperature: object) -> float:
    return _check_number("temperature", temperature, *TEMPERATURE_RANGE)


def check_guidance(guidance: object) -> float:
    return _check_number("guidance", guidance, *GUIDANCE_RANGE)


def check_seed(seed: object) -> int:
    if seed is None:
        return 0
    try:
        f = float(seed)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as e:
        raise DrawingError(f"seed must be a whole number between 0 and {MAX_SEED}, got {seed!r}") from e
    if not (math.isfinite(f) and f == int(f) and 0 <= f <= MAX_SEED):
        raise DrawingError(f"seed must be a whole number between 0 and {MAX_SEED}, got {seed!r}")
    return int(f)


def _plain_strokes(drawing: object) -> list:
    """A generated drawing (lists or arrays of [x, y(, t)]) -> JSON-ready lists of rounded floats."""
    out = []
    for stroke in drawing:  # type: ignore[union-attr]
        arr = np.round(np.asarray(stroke, dtype=np.float64), COORD_DECIMALS)
        if arr.ndim == 2 and len(arr):
            out.append(arr.tolist())
    return out


# ---------------------------------------------------------------------------------------------------------------
# The service


@dataclass
class Service:
    """The loaded models and the problems met loading them. Either model may be None: the rest keeps working."""

    classifier: Any = None  # sketchlab.classify.Classifier or None
    generator: Any = None  # sketchlab.generate.Generator or None
    problems: list[str] = field(default_factory=list)  # human-readable, shown in the page and /health
    startup_s: float = 0.0  # time to load and warm up the models

    @classmethod
    def load(cls, models_dir: str | Path = MODELS_DIR, warmup: bool = True) -> Service:
        """Create every ONNX session once and warm them up, so the first request is as fast as the others."""
        start = time.perf_counter()
        problems: list[str] = []
        classifier = _load_part(
            "classifier", "classify", "Classifier", models_dir, problems, threads=CLASSIFIER_THREADS
        )
        generator = _load_part("generator", "generate", "Generator", models_dir, problems)
        if classifier is not None:
            problems.extend(f"classifier: {p}" for p in getattr(classifier, "problems", []) or [])
        if generator is not None:
            problems.extend(f"generator: {p}" for p in getattr(generator, "problems", []) or [])
        service = cls(classifier, generator, problems)
        if warmup:
            service.warmup()
        service.startup_s = time.perf_counter() - start
        for problem in problems:
            log.warning("%s", problem)
        log.info("models ready in %.2f s on %s", service.startup_s, service.provider)
        return service

    def warmup(self) -> None:
        """Run each model once: ONNX Runtime allocates and optimises on the first run, not at session creation."""
        if self.classifier is not None:
            try:
                self.classifier.warmup()
            except Exception as e:  # noqa: BLE001 - a broken model must not stop the app; record why
                self.problems.append(f"classifier warm-up failed: {type(e).__name__}: {e}")
        if self.generator is not None and self.generator.classes:
            try:  # both graphs: the decoder (drawing from scratch) and the encoder (finishing a drawing)
                self.generator.generate(self.generator.classes[0], temperature=0.5, seed=0, max_len=16)
                self.generator.complete(WARMUP_DRAWING, temperature=0.5, seed=0, max_len=16)
            except Exception as e:  # noqa: BLE001
                self.problems.append(f"generator warm-up failed: {type(e).__name__}: {e}")

    # -- facts ----------------------------------------------------------------------------------------------------

    @property
    def provider(self) -> str:
        for model in (self.classifier, self.generator):
            if model is not None and getattr(model, "provider", None):
                return model.provider
        return CPU

    def health(self) -> dict:
        return {
            "version": __version__,
            "provider": self.provider,
            "models": {"classifier": self.classifier is not None, "generator": self.generator is not None},
            "classes": len(self.classifier.classes) if self.classifier is not None else 0,
            "problems": list(self.problems),
        }

    def categories(self) -> list[tuple[str, str]]:
        """(label, word) for the generator's classes, the label carrying its measured quality when known."""
        if self.generator is None:
            return []
        quality = getattr(self.generator, "quality", None) or {}
        return [(_quality_label(w, quality.get(w)), w) for w in sorted(self.generator.classes, key=str.lower)]

    # -- requests -------------------------------------------------------------------------------------------------

    def classify(
        self,
        strokes: object,
        top_k: int = TOP_K,
        pen_down: bool = False,
        shown: str | None = None,
        settled: bool = False,
    ) -> dict:
        """Strokes (JSON text or lists) -> {"fused", "stroke", "cnn": [{"word", "prob"}] or None, "raster"}.

        "raster" is the (28, 28) uint8 array the CNN saw. `pen_down`: the last stroke is still being drawn (the
        page's live requests), which has its own fusion settings; `settled`: the pen has rested since the last change
        (the drawing most likely finished), which has its own temperatures; `shown`: the guess the page shows first
        now, held unless the new evidence beats it (`Fusion.hold`). Raises `DrawingError` for a bad or empty drawing,
        `pen_down` and `settled` both true, or a `shown` that is not a class, and `ModelError` when no classifier is
        loaded.
        """
        for name, flag in (("pen_down", pen_down), ("settled", settled)):
            if not isinstance(flag, bool):
                raise DrawingError(f"{name} must be true or false, got {flag!r:.60}")
        drawing = parse_strokes(strokes)
        if not drawing:
            raise DrawingError("the drawing has no strokes")
        classifier = self._need(self.classifier, "classifier")
        with _model_call("classifier"):
            guesses = classifier.classify(drawing, top_k=top_k, pen_down=pen_down, shown=shown, settled=settled)
        return {
            "fused": _guess_list(guesses.fused),
            "stroke": _guess_list(guesses.stroke),
            "cnn": _guess_list(guesses.cnn),
            "raster": np.asarray(guesses.raster, dtype=np.uint8),
        }

    def generate(
        self, word: str, temperature: float = 0.4, seed: int = 0, n: int = 1, guidance: float = DEFAULT_GUIDANCE
    ) -> list:
        """A category -> `n` drawings, each [[[x, y, t_ms], ...], ...] in the 0..255 frame, in drawing order.
        `guidance`: classifier-free guidance scale (0 = none; higher: more typical, less varied drawings)."""
        generator = self._need(self.generator, "generator")
        word = self._check_word(word)
        temperature, seed, guidance = check_temperature(temperature), check_seed(seed), check_guidance(guidance)
        if not (isinstance(n, int | float) and 1 <= n <= MAX_VARIATIONS and n == int(n)):
            raise DrawingError(f"the number of drawings must be 1 to {MAX_VARIATIONS}, got {n!r}")
        with _model_call("generator"):
            if int(n) == 1:
                drawings = [
                    generator.generate(
                        word, temperature=temperature, seed=seed, max_len=MAX_GENERATED_POINTS, guidance=guidance
                    )
                ]
            else:
                drawings = generator.variations(word, int(n), temperature, seed, guidance=guidance)
        return [_plain_strokes(d) for d in drawings]

    def complete(
        self,
        strokes: object,
        temperature: float = 0.4,
        seed: int = 0,
        word: str | None = None,
        guidance: float = DEFAULT_GUIDANCE,
    ) -> dict:
        """The user's strokes -> {"word": the category finished as, "strokes": only the new strokes, in the user's
        canvas coordinates}.

        `word`: a category (what the user says they are drawing), `TOP_GUESS` (the classifier's best guess, when
        the generator knows it), or None / "" to let the generator follow the drawing itself (its "unknown class").
        `guidance` applies to a named category only: a guess can be wrong, and guiding towards it hurt
        (docs/generator.md, "Guidance"); without a word there is nothing to guide.
        """
        drawing = parse_strokes(strokes)
        if not drawing:
            raise DrawingError("draw something first: there is nothing to finish")
        generator = self._need(self.generator, "generator")
        temperature, seed, guidance = check_temperature(temperature), check_seed(seed), check_guidance(guidance)
        if word == TOP_GUESS:
            word, guidance = self._top_guess(drawing), 0.0
        if word:
            word = self._check_word(word)
        with _model_call("generator"):
            new = generator.complete(
                drawing,
                temperature=temperature,
                seed=seed,
                word=word or None,
                max_len=MAX_GENERATED_POINTS,
                guidance=guidance,
            )
        return {"word": word or None, "strokes": _plain_strokes(new)}

    # -- helpers --------------------------------------------------------------------------------------------------

    def _top_guess(self, drawing: object) -> str | None:
        """The fused classifier's best guess that the generator can draw, or None (no classifier loaded)."""
        if self.classifier is None:
            return None
        with _model_call("classifier"):
            guesses = self.classifier.classify(drawing, top_k=TOP_K)
        return next((g.word for g in guesses.fused if g.word in self.generator.classes), None)

    def _need(self, model: Any, name: str) -> Any:
        if model is None:
            why = "; ".join(p for p in self.problems if p.startswith(name)) or f"the {name} is not loaded"
            raise ModelError(f"the {name} is not available: {why}")
        return model

    def _check_word(self, word: object) -> str:
        classes = self.generator.classes
        if not isinstance(word, str) or word not in classes:
            close = [c for c in classes if isinstance(word, str) and word and word.lower() in c][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else f"; it knows {len(classes)} categories"
            raise DrawingError(f"unknown category {str(word)[:60]!r}{hint}")
        return word


@contextlib.contextmanager
def _model_call(name: str) -> Iterator[None]:
    """Let the documented errors through; any other failure inside a model (an ONNX Runtime error, a bug) becomes a
    `ModelError` naming the model, logged with its traceback, so callers only ever see the two documented types."""
    try:
        yield
    except (DrawingError, ModelError):
        raise
    except Exception as e:  # noqa: BLE001
        log.exception("the %s failed", name)
        raise ModelError(f"the {name} failed ({type(e).__name__}: {str(e)[:200]}); see the server log") from e


def _load_part(name: str, module: str, cls_name: str, models_dir: str | Path, problems: list[str], **kw: Any) -> Any:
    """Import `sketchlab.<module>` and load `<cls_name>` from `models_dir`; None (and a problem noted) on failure."""
    try:
        mod = __import__(f"sketchlab.{module}", fromlist=[cls_name])
        return getattr(mod, cls_name).load(models_dir, **kw)
    except ImportError as e:
        problems.append(f"{name}: sketchlab/{module}.py cannot be imported ({e}); the {name} features are off")
    except ModelError as e:
        problems.append(f"{name}: {e}")
    except Exception as e:  # noqa: BLE001 - any other failure: keep serving, say why
        problems.append(f"{name}: loading failed ({type(e).__name__}: {e}); run `make models` or restore models/")
    return None


def _guess_list(guesses: Any) -> list[dict] | None:
    if guesses is None:
        return None
    return [{"word": g.word, "prob": round(float(g.prob), 4)} for g in guesses]


def _quality_label(word: str, quality: Any) -> str:
    if not isinstance(quality, dict):
        return word
    for key, name in QUALITY_KEYS.items():
        value = quality.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
            return f"{word} · {name} {value:.0%}"
    return word
