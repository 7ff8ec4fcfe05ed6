"""The generator at serving time: draw a class from scratch, several variations at once, or finish a drawing.

    gen = Generator.load()
    for x, y, pen in gen.stream("cat", temperature=0.5, seed=1): ...   # points as they are sampled, 0..255 frame
    strokes = gen.generate("cat")                                       # [[[x, y, t_ms], ...], ...]
    new = gen.complete(user_strokes)                                     # only the new strokes, in canvas pixels

Two ONNX graphs (`training/export_generator.py`): the encoder (a drawing -> latent z) and one decoder step, sampled
by `sketchlab.sampler`. Drawing from scratch takes z from the class's aggregate posterior (`sketchlab.latent_prior`:
a mixture of the encoder's posteriors of training drawings, models/generator_prior.npz), or from sketch-rnn's prior
N(0, I) when that file is missing or unusable (`Generator.problems` says why). Finishing a drawing feeds the user's
rows through the decoder and samples on. With a `word`, z comes from that class's latent prior, as when drawing from
scratch: the encoder's latent of a half drawing describes a drawing that ends there, and the decoder soon ended it.
Without a `word` it uses the model's "unknown class" (trained by replacing 10% of the classes with it) and z = the
encoder's mean of the user's drawing, so the continuation follows the drawing itself rather than a class chosen for
it, and no classifier is needed. Either way the continuation may not end before it has drawn `_min_new_strokes`
strokes of at least two points each (sketchlab.sampler, `min_strokes`): measured in docs/generator.md, "Finishing".

Sampling with a class uses classifier-free guidance (`sketchlab.sampler.guide`) against that "unknown class", at
scale DEFAULT_GUIDANCE unless told otherwise (0 turns it off): docs/generator.md, "Guidance".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import DrawingError, ModelError
from .latent_prior import AggregatePosterior, NormalPrior
from .prepare import from_canvas
from .runtime import MODELS_DIR, Model, load_onnx
from .sampler import StepFn, sample_rows, zero_state
from .strokes import normalize, to_stroke5, validate_canvas

MS_PER_POINT = 16  # time stamp spacing of generated points: one point per 60 Hz animation frame
DEFAULT_MAX_LEN = 250  # sketch-rnn's max_seq_len for Quick, Draw!
DEFAULT_GUIDANCE = 1.0  # classifier-free guidance scale: best of 0-3 measured (docs/generator.md, "Guidance")
MAX_GUIDANCE = 5.0  # past ~1.5 strokes already break apart (docs/generator.md); the page offers 0-3
QUALITY_FILE = "generator_quality.json"
SIMPLIFIED_SIZE = 255  # the simplified frame's longer side (sketchlab.simplify.SIMPLIFIED_SIZE)
ENCODER_INPUTS = ("strokes", "label")  # what `complete` feeds the encoder; a file without them is another version
DECODER_INPUTS = ("prev", "z", "label", "h", "c")  # what `_step` feeds the decoder
FINISH_STROKES_AS_WORD = (2, 3)  # a continuation as a named class draws as many strokes as the user did, within
# these bounds: 3 is the median number of strokes a TEST drawing cut after half its strokes misses; more cost top-1
FINISH_STROKES_NO_WORD = 1  # without a word: one line, never nothing or a dot; more strokes lowered top-1
# (training.evaluate_completion; docs/generator.md, "Finishing")
MAX_FINISH_POINTS = 1_000  # simplified points of a drawing to finish: the longest in the data has 727; each one is a
# decoder step (~0.5 ms), so a 20,000-point scribble would cost ~10 s of CPU per request (docs/reliability.md)


class Generator:
    """Class-conditioned sketch-rnn over ONNX Runtime. `classes` are the words it can draw."""

    def __init__(
        self,
        encoder: Model,
        decoder: Model,
        quality: dict[str, dict] | None = None,
        prior: AggregatePosterior | NormalPrior | None = None,
        problems: list[str] | None = None,
    ):
        self.encoder = encoder
        self.decoder = decoder
        manifest = decoder.manifest
        self.classes: list[str] = list(manifest.classes)
        self.quality: dict[str, dict] = quality or {}
        self.scale = float(manifest.scale_factor)
        self.z_size = int(manifest.config["z_size"])
        self.hidden = int(manifest.config["dec_hidden"])
        self.unknown_class = int(manifest.config["unknown_class"])
        self.prior = prior or NormalPrior(self.z_size)  # where z comes from when drawing from scratch
        self.problems: list[str] = problems or []  # what could not be loaded, with the fallback used
        self._index = {w: i for i, w in enumerate(self.classes)}
        self._output_names = [o.name for o in decoder.session.get_outputs()]

    @property
    def provider(self) -> str:
        return self.decoder.provider

    @classmethod
    def load(cls, models_dir: str | Path = MODELS_DIR) -> Generator:
        """Load models/generator_encoder.onnx and generator_decoder.onnx with their manifests, the latent prior
        (generator_prior.npz) and the per-class quality measured by `training.evaluate_generator`, when present.
        Raises `ModelError` when a graph or its manifest is missing or corrupt or the two graphs do not belong
        together; an unusable prior only falls back to N(0, I), noted in `problems`."""
        # one thread each: the steps are tiny
        encoder = load_onnx("generator_encoder", models_dir, threads=1, expect_inputs=ENCODER_INPUTS)
        decoder = load_onnx("generator_decoder", models_dir, threads=1, expect_inputs=DECODER_INPUTS)
        e, d = encoder.manifest, decoder.manifest
        if e.classes != d.classes or e.scale_factor != d.scale_factor:
            raise ModelError(
                f"{models_dir}: generator_encoder and generator_decoder come from different exports; "
                "re-export both with `python -m training.export_generator`"
            )
        z_size = int(d.config["z_size"])
        try:
            prior, problems = AggregatePosterior.load(models_dir, d.classes, z_size, encoder.path), []
        except ModelError as e:
            prior, problems = NormalPrior(z_size), [f"drawing from scratch uses N(0, I), less recognisable: {e}"]
        return cls(encoder, decoder, _load_quality(Path(models_dir) / QUALITY_FILE), prior, problems)

    # -----------------------------------------------------------------------------------------------------------
    # Drawing from scratch

    def stream(
        self,
        word: str,
        temperature: float = 0.5,
        seed: int = 0,
        max_len: int = DEFAULT_MAX_LEN,
        guidance: float = DEFAULT_GUIDANCE,
    ) -> Iterator[tuple[float, float, int]]:
        """Yield absolute points (x, y, pen) of a new drawing of `word` one at a time, as they are sampled, in the
        0..255 simplified frame. pen 1 = the pen lifts after this point (the stroke ends), 0 = it stays down.
        Ends when the model ends the drawing or after max_len points. `guidance`: classifier-free guidance scale
        (0 = plain conditional sampling). Raises ValueError for an unknown word or a guidance out of range."""
        label = self.label(word)
        guidance = _check_guidance(guidance)
        rng = np.random.default_rng(seed)
        z = self.prior.sample(label, 1, rng)  # (1, Z)
        yield from _points(self._rows(label, z, temperature, rng, max_len, guidance), self.scale, np.zeros(2))

    def generate(
        self,
        word: str,
        temperature: float = 0.5,
        seed: int = 0,
        max_len: int = DEFAULT_MAX_LEN,
        guidance: float = DEFAULT_GUIDANCE,
    ) -> list[list[list[float]]]:
        """A whole drawing of `word` as canvas-style strokes [[x, y, t_ms], ...] in the 0..255 frame."""
        return _to_strokes(list(self.stream(word, temperature, seed, max_len, guidance)), t0=0.0)

    def variations(
        self,
        word: str,
        n: int,
        temperature: float = 0.5,
        seed: int = 0,
        max_len: int = DEFAULT_MAX_LEN,
        guidance: float = DEFAULT_GUIDANCE,
    ) -> list[list[list[list[float]]]]:
        """`n` drawings of `word` sampled together (one batched decoder run), each as `generate` returns it."""
        if not 1 <= int(n) <= 64:
            raise ValueError(f"n must be 1..64 variations, got {n}")
        label = self.label(word)
        rng = np.random.default_rng(seed)
        z = self.prior.sample(label, int(n), rng)  # (n, Z)
        return self.decode(label, z, temperature, rng, max_len, guidance)

    def decode(
        self,
        label: int,
        z: np.ndarray,
        temperature: float,
        rng: np.random.Generator,
        max_len: int = DEFAULT_MAX_LEN,
        guidance: float = DEFAULT_GUIDANCE,
    ) -> list[list[list[list[float]]]]:
        """One drawing of class index `label` for each latent in z (n, Z), sampled together; each as `generate`
        returns it. `variations` with z from the prior; other latents for measurements (training.studies.prior_study)."""
        return draw_latents(
            self._step,
            label,
            z,
            self.hidden,
            self.scale,
            temperature,
            rng,
            _check_len(max_len),
            _check_guidance(guidance),
            self.unknown_class,
        )

    # -----------------------------------------------------------------------------------------------------------
    # Finishing a drawing

    def complete(
        self,
        strokes: object,
        temperature: float = 0.5,
        seed: int = 0,
        word: str | None = None,
        max_len: int = DEFAULT_MAX_LEN,
        guidance: float = DEFAULT_GUIDANCE,
    ) -> list[list[list[float]]]:
        """Continue the user's drawing (canvas strokes of any canvas size). Returns ONLY the new strokes, in the
        user's canvas coordinates, [[x, y, t_ms], ...] each, times continuing after the user's last point.
        `word` conditions the continuation on a class (guided with `guidance`); None uses the model's "unknown
        class" (see the module docstring), where guidance has nothing to act on. At most max_len new points.
        Raises DrawingError on bad input, ValueError for an unknown word or a guidance out of range."""
        guidance = _check_guidance(guidance) if word is not None else 0.0
        raw = validate_canvas(strokes)  # DrawingError for anything that is not a drawing
        prepared = from_canvas(raw)
        if len(prepared.stroke3) > MAX_FINISH_POINTS:
            raise DrawingError(
                f"the drawing has {len(prepared.stroke3):,} points after simplification; "
                f"at most {MAX_FINISH_POINTS:,} can be finished"
            )
        label = self.unknown_class if word is None else self.label(word)
        user = normalize(prepared.stroke3, self.scale)  # (N, 3) offsets in scale units, simplified frame
        user5 = to_stroke5(user)  # (N + 1, 5), start token first, the last point marked as a pen lift
        rng = np.random.default_rng(seed)
        if word is None:  # (1, Z): the drawing's own latent
            z = self.encoder.run(strokes=user5[None, 1:], label=np.array([label], dtype=np.int64))["mu"]
        else:  # (1, Z): a whole drawing of the class, as `generate` draws one
            z = self.prior.sample(label, 1, rng)
        prefix = user5[:, None, :]  # (N + 1, 1, 5): start token, then every user row
        min_strokes = _min_new_strokes(len(prepared.simplified), word is not None)
        rows = self._rows(label, z, temperature, rng, max_len, guidance, prefix, min_strokes)
        start = np.asarray(prepared.stroke3[:, :2], np.float64).sum(axis=0)  # last user point, simplified frame
        points = list(_points(rows, self.scale, start))
        # simplified frame -> canvas: undo sketchlab.simplify's alignment to the top-left and scaling to 0..255
        xy = np.concatenate([s[:, :2] for s in raw])
        lo = xy.min(axis=0)
        extent = float((xy.max(axis=0) - lo).max())
        to_canvas = extent / SIMPLIFIED_SIZE
        t0 = float(max(s[:, 2].max() for s in raw)) + MS_PER_POINT
        canvas_points = [(float(lo[0] + x * to_canvas), float(lo[1] + y * to_canvas), pen) for x, y, pen in points]
        return _to_strokes(canvas_points, t0=t0)

    # -----------------------------------------------------------------------------------------------------------

    def label(self, word: str) -> int:
        """Class index of `word`. Raises ValueError naming close matches for a word the model does not know."""
        try:
            return self._index[word]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(str(word), self.classes, n=3)
            raise ValueError(f"unknown category {word!r}; did you mean {close}? ({len(self.classes)} known)") from None

    def _rows(self, label, z, temperature, rng, max_len, guidance, prefix=None, min_strokes=0) -> Iterator[np.ndarray]:
        """The stroke-5 rows (5,) of one drawing of class index `label` from latent z (1, Z), one at a time, after
        feeding `prefix` (T, 1, 5) if given, not ending before `min_strokes` strokes (sampler.sample_rows; guided
        against the "unknown" class)."""
        labels = np.array([label], dtype=np.int64)
        state = zero_state(1, self.hidden)
        sampled = sample_rows(
            self._step,
            z,
            labels,
            state,
            temperature,
            rng,
            _check_len(max_len),
            prefix,
            guidance,
            self.unknown_class,
            min_strokes,
        )
        return (row[0] for row, _ in sampled)

    def _step(self, prev, z, label, h, c) -> dict[str, np.ndarray]:
        outputs = self.decoder.session.run(self._output_names, {"prev": prev, "z": z, "label": label, "h": h, "c": c})
        return dict(zip(self._output_names, outputs, strict=True))


def draw_latents(
    step: StepFn,
    label: int,
    z: np.ndarray,
    hidden: int,
    scale: float,
    temperature: float,
    rng: np.random.Generator,
    max_len: int = DEFAULT_MAX_LEN,
    guidance: float = 0.0,
    unconditional: int | None = None,
) -> list[list[list[list[float]]]]:
    """Drawings of class index `label` from latents z (n, Z), one each, sampled together by any decoder step
    (the ONNX one in `Generator.decode`; a torch model's in training.studies.attention_study). hidden: the decoder's state
    size; scale: the model's scale factor; guidance against class index `unconditional` (sampler.sample_rows).
    Each drawing as `Generator.generate` returns it (0..255 frame)."""
    z = np.asarray(z, dtype=np.float32)
    labels = np.full(len(z), label, dtype=np.int64)
    state = zero_state(len(z), hidden)
    sampled = sample_rows(step, z, labels, state, temperature, rng, max_len, None, guidance, unconditional)
    rows = [r for r, _ in sampled]
    return [_to_strokes(list(_points((r[i] for r in rows), scale, np.zeros(2))), t0=0.0) for i in range(len(z))]


def _min_new_strokes(user_strokes: int, as_word: bool) -> int:
    """Strokes a continuation draws before it may end: the model ends a half drawing early (module docstring)."""
    if not as_word:
        return FINISH_STROKES_NO_WORD
    low, high = FINISH_STROKES_AS_WORD
    return min(max(int(user_strokes), low), high)


def _check_guidance(guidance: float) -> float:
    g = float(guidance)
    if not 0 <= g <= MAX_GUIDANCE:  # also refuses NaN
        raise ValueError(f"guidance must be 0..{MAX_GUIDANCE:g}, got {guidance}")
    return g


def _check_len(max_len: int) -> int:
    if not 1 <= int(max_len) <= 10_000:
        raise ValueError(f"max_len must be 1..10000 points, got {max_len}")
    return int(max_len)


def _points(rows: Iterator[np.ndarray], scale: float, start: np.ndarray) -> Iterator[tuple[float, float, int]]:
    """stroke-5 rows (normalised) -> absolute points (x, y, pen_lifted), one row behind, so that the last point of
    the drawing can be marked as a pen lift before it is yielded (the model ends with p3 after it)."""
    pos = np.array(start, dtype=np.float64)
    held = None
    for row in rows:
        if row[4] > 0.5:  # p3: the drawing ended; this row carries no point
            break
        pos = pos + row[:2].astype(np.float64) * scale
        if held is not None:
            yield held
        held = (float(pos[0]), float(pos[1]), int(row[3] > 0.5))
    if held is not None:
        yield (held[0], held[1], 1)


def _to_strokes(points: list[tuple[float, float, int]], t0: float) -> list[list[list[float]]]:
    """(x, y, pen_lifted) points -> strokes [[x, y, t_ms], ...], t = t0 + point index * MS_PER_POINT."""
    strokes, current = [], []
    for i, (x, y, pen) in enumerate(points):
        current.append([x, y, t0 + i * MS_PER_POINT])
        if pen:
            strokes.append(current)
            current = []
    if current:
        strokes.append(current)
    return strokes


def _load_quality(path: Path) -> dict[str, dict]:
    """Per-class recognisability from models/generator_quality.json ({} when absent or unreadable)."""
    try:
        return dict(json.loads(path.read_text()).get("per_class", {}))
    except (OSError, ValueError, AttributeError):
        return {}
