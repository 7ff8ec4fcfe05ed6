"""Sampling the generator's decoder step, in numpy: small named parts and one loop that yields rows as they are made.

A decoder step (ONNX, see `training/export_generator.py`) maps the previous stroke-5 row, the latent z, the class and
the LSTM state to a mixture of M bivariate Gaussians over the next normalised offset (dx, dy) and logits of the pen
state [p1 pen down, p2 pen lifted, p3 end]. Sampling one row (Ha & Eck 2017, section 3.3; magenta `sample`):

    1. `adjust_temperature`: pi = softmax(log_pi / T), q = softmax(pen_logits / T), sigma *= sqrt(T)
    2. `choose_component`:   j ~ Categorical(pi)
    3. `draw_gaussian`:      (dx, dy) ~ N(mu_j, Sigma_j), Sigma_j from sigma_x, sigma_y and rho
    4. `draw_pen`:           pen ~ Categorical(q)

With classifier-free guidance (`guide`, Ho & Salimans 2022) each step runs the decoder twice, batched: once with
the class and once with the model's "unknown" class (it was trained with 10% of the labels replaced by it), and
steps 1-4 sample from the conditional outputs pushed away from the unconditional ones by the guidance scale w.

Finishing a user's drawing may forbid the end of the drawing (`forbid_end`) until the continuation has drawn a
minimum number of strokes, and forbid a pen lift on a stroke's first point meanwhile (`forbid_dot`): the model's p3
comes early after a half drawing (it was trained on whole drawings, and a half one looks finished to it), and a pen
lift on every point draws dots, not strokes. Both set a pen logit to -inf, so the softmax renormalises the others.

Everything takes an explicit `numpy.random.Generator`, so a seed fixes the drawing. Batched throughout: B drawings
are sampled together (variations), each row (B, ...). No torch here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

PEN_DOWN, PEN_LIFTED, PEN_END = 0, 1, 2  # index of p1, p2, p3 in a stroke-5 row's pen part
START_ROW = np.array([0, 0, 1, 0, 0], dtype=np.float32)  # Ha & Eck's S0, as sketchlab.strokes.START_TOKEN
MIN_TEMPERATURE = 1e-3  # below this, softmax(x / T) overflows float32 for typical logits; use greedy-like 1e-3

# A decoder step: (prev (B, 5), z (B, Z), label (B,), h (B, H), c (B, H)) -> dict with log_pi (B, M), mu (B, M, 2),
# log_sigma (B, M, 2), rho (B, M), pen_logits (B, 3), h_out, c_out (B, H).
StepFn = Callable[..., dict[str, np.ndarray]]


@dataclass
class Mixture:
    """Sampling distribution of one step after the temperature, for B drawings."""

    pi: np.ndarray  # (B, M) mixture weights, rows sum to 1
    mu: np.ndarray  # (B, M, 2)
    sigma: np.ndarray  # (B, M, 2) standard deviations
    rho: np.ndarray  # (B, M) correlations
    pen: np.ndarray  # (B, 3) pen state probabilities


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def adjust_temperature(out: dict[str, np.ndarray], temperature: float) -> Mixture:
    """Decoder outputs -> Mixture at temperature T (sketch-rnn's `adjust_temp` on pi and q, sqrt(T) on sigma).

    T < 1 sharpens the choice of component and pen state and narrows each Gaussian: tidier, more typical drawings.
    """
    t = max(float(temperature), MIN_TEMPERATURE)
    return Mixture(
        pi=softmax(out["log_pi"].astype(np.float64) / t),
        mu=out["mu"].astype(np.float64),
        sigma=np.exp(out["log_sigma"].astype(np.float64)) * np.sqrt(t),
        rho=out["rho"].astype(np.float64),
        pen=softmax(out["pen_logits"].astype(np.float64) / t),
    )


def guide(cond: dict[str, np.ndarray], uncond: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    """Classifier-free guidance on one step's decoder outputs: the distribution p_c^(1+w) / p_u^w, which favours
    what makes the drawing this class rather than any drawing (w = scale; 0 returns `cond` unchanged).

    For the component choice and the pen state (categoricals) this is exact on the logits:
        log_pi = (1 + w) log_pi_c - w log_pi_u,   pen_logits = (1 + w) pen_c - w pen_u   (softmax renormalises)
    For a component's offset it is exact when the two Gaussians share their covariance (the product of Gaussian
    powers is then the Gaussian with that covariance and mean mu_c + w (mu_c - mu_u)); the conditional's sigma and
    rho are kept. Components are matched by index: both passes come from the same output units of one decoder.
    cond / uncond: decoder outputs for the same B drawings, (B, ...) each; returns the guided outputs (B, ...).
    """
    if scale == 0:
        return cond
    guided = dict(cond)
    for key in ("log_pi", "mu", "pen_logits"):
        guided[key] = cond[key] + scale * (cond[key] - uncond[key])
    return guided


def forbid_end(pen_logits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(B, 3) pen logits -> a copy where the drawing cannot end (p3 = -inf) in the rows (B,) bool marked."""
    out = np.array(pen_logits, dtype=np.float64)
    out[rows, PEN_END] = -np.inf
    return out


def forbid_dot(pen_logits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(B, 3) pen logits -> a copy where the pen cannot lift after this point (p2 = -inf) in the rows (B,) bool
    marked: on a stroke's first point, so that the stroke gets a second point and is a line, not a dot."""
    out = np.array(pen_logits, dtype=np.float64)
    out[rows, PEN_LIFTED] = -np.inf
    return out


def _categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of probs (B, K), by inverse CDF with one uniform each."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((u > cdf).sum(axis=-1), probs.shape[-1] - 1)


def choose_component(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, M) weights -> (B,) index of the Gaussian each drawing samples from."""
    return _categorical(pi, rng)


def draw_gaussian(mu: np.ndarray, sigma: np.ndarray, rho: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One (dx, dy) per row from a bivariate normal: mu (B, 2), sigma (B, 2), rho (B,) -> (B, 2).

    With e1, e2 ~ N(0, 1): dx = mu_x + sigma_x e1, dy = mu_y + sigma_y (rho e1 + sqrt(1 - rho^2) e2).
    """
    e = rng.standard_normal((mu.shape[0], 2))
    dx = mu[:, 0] + sigma[:, 0] * e[:, 0]
    dy = mu[:, 1] + sigma[:, 1] * (rho * e[:, 0] + np.sqrt(1 - rho**2) * e[:, 1])
    return np.stack([dx, dy], axis=-1)


def draw_pen(pen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, 3) pen probabilities -> (B,) index: PEN_DOWN, PEN_LIFTED or PEN_END."""
    return _categorical(pen, rng)


def sample_row(mix: Mixture, rng: np.random.Generator) -> np.ndarray:
    """Mixture for B drawings -> (B, 5) stroke-5 rows [dx, dy, p1, p2, p3] (normalised offsets)."""
    b = np.arange(mix.pi.shape[0])
    j = choose_component(mix.pi, rng)
    dxdy = draw_gaussian(mix.mu[b, j], mix.sigma[b, j], mix.rho[b, j], rng)
    pen = draw_pen(mix.pen, rng)
    row = np.zeros((len(b), 5), dtype=np.float32)
    row[:, :2] = dxdy
    row[b, 2 + pen] = 1
    return row


def zero_state(batch: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's initial LSTM state (h, c), each (B, H) zeros."""
    return np.zeros((batch, hidden), np.float32), np.zeros((batch, hidden), np.float32)


def feed(step: StepFn, rows: np.ndarray, z: np.ndarray, labels: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
    """Run the decoder over given rows (T, B, 5) (teacher forcing, e.g. a user's drawing) -> (last outputs, state).

    The first row should be the start token. Returns the outputs after the last row (the distribution of the row
    that follows it) and the LSTM state (h, c).
    """
    h, c = state
    out = None
    for row in rows:
        out = step(prev=np.ascontiguousarray(row, dtype=np.float32), z=z, label=labels, h=h, c=c)
        h, c = out["h_out"], out["c_out"]
    return out, (h, c)


def sample_rows(
    step: StepFn,
    z: np.ndarray,
    labels: np.ndarray,
    state: tuple[np.ndarray, np.ndarray],
    temperature: float,
    rng: np.random.Generator,
    max_len: int,
    prefix: np.ndarray | None = None,
    guidance: float = 0.0,
    unconditional: int | None = None,
    min_strokes: int | np.ndarray = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Sample up to `max_len` rows for B drawings at once, yielding (rows (B, 5), alive (B,) bool) one step at a time.

    z (B, Z) float32 latents; labels (B,) int64 classes; state: the initial (h, c) (see `zero_state`). `prefix`
    (T, B, 5): rows to feed first, start token first, e.g. the user's drawing to continue; without it sampling
    starts from the start token. A drawing is alive until it samples p3 (`alive` is False from that row on, and the
    rows of ended drawings are [0, 0, 0, 0, 1]); the loop ends when none is alive or after max_len rows.
    `guidance` > 0: classifier-free guidance with that scale (`guide`) against the class index `unconditional`;
    the decoder then runs on 2B rows a step (the B drawings with their labels, then with `unconditional`).
    `min_strokes` (int or (B,)): strokes each drawing must draw (end with a pen lift) before it may end; until then
    p3 is forbidden (`forbid_end`) and so is a lift on a stroke's first point (`forbid_dot`). The sampled rows
    start a new stroke: the prefix ends with a pen lift, or is the start token.
    """
    b = z.shape[0]
    if prefix is None:
        prefix = np.broadcast_to(START_ROW, (1, b, 5))
    if guidance:
        if unconditional is None:
            raise ValueError("guidance needs the class index of the unconditional pass")
        z = np.concatenate([z, z])
        labels = np.concatenate([labels, np.full_like(labels, unconditional)])
        state = (np.concatenate([state[0], state[0]]), np.concatenate([state[1], state[1]]))
        prefix = np.concatenate([prefix, prefix], axis=1)
    out, (h, c) = feed(step, prefix, z, labels, state)
    alive = np.ones(b, dtype=bool)
    owed = np.broadcast_to(np.asarray(min_strokes, np.int64), (b,)).copy()  # strokes still to draw before an end
    first = np.ones(b, dtype=bool)  # the next row is a stroke's first point
    for _ in range(max_len):
        if guidance:
            out = guide({k: v[:b] for k, v in out.items()}, {k: v[b:] for k, v in out.items()}, guidance)
        if owed.any():
            pen = forbid_end(out["pen_logits"][:b], owed > 0)
            out = {**out, "pen_logits": forbid_dot(pen, (owed > 0) & first)}
        row = sample_row(adjust_temperature(out, temperature), rng)
        row[~alive] = (0, 0, 0, 0, 1)
        alive = alive & (row[:, 2 + PEN_END] == 0)
        first = row[:, 2 + PEN_LIFTED] == 1
        owed = np.maximum(owed - first, 0)
        yield row, alive
        if not alive.any():
            return
        prev = np.concatenate([row, row]) if guidance else row
        out = step(prev=prev, z=z, label=labels, h=h, c=c)
        h, c = out["h_out"], out["c_out"]
