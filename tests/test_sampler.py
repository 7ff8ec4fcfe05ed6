"""sketchlab.sampler: the named sampling parts and the batched loop, with a numpy stand-in for the decoder step."""

from __future__ import annotations

import numpy as np
import pytest

from sketchlab import sampler
from sketchlab.sampler import (
    Mixture,
    adjust_temperature,
    choose_component,
    draw_gaussian,
    draw_pen,
    feed,
    forbid_dot,
    forbid_end,
    guide,
    sample_row,
    sample_rows,
    zero_state,
)

M, H, Z = 3, 4, 2


def _outputs(b: int = 1, pen_logits=(2.0, 0.0, -1.0)) -> dict[str, np.ndarray]:
    return {
        "log_pi": np.log(np.tile([0.7, 0.2, 0.1], (b, 1))).astype(np.float32),
        "mu": np.tile(np.array([[1.0, 2.0], [-1.0, 0.0], [0.0, -3.0]]), (b, 1, 1)).astype(np.float32),
        "log_sigma": np.full((b, M, 2), np.log(0.5), np.float32),
        "rho": np.tile([0.5, 0.0, -0.5], (b, 1)).astype(np.float32),
        "pen_logits": np.tile(pen_logits, (b, 1)).astype(np.float32),
    }


class FakeStep:
    """A decoder step in numpy: counts its calls; ends the drawing (p3) after `end_after` steps of each row."""

    def __init__(self, end_after: int = 5):
        self.end_after = end_after
        self.calls = 0

    def __call__(self, prev, z, label, h, c):
        self.calls += 1
        b = prev.shape[0]
        out = _outputs(b)
        done = h[:, 0] + 1 >= self.end_after  # h[:, 0] counts steps
        out["pen_logits"] = np.where(done[:, None], [-50.0, -50.0, 50.0], [50.0, -50.0, -50.0]).astype(np.float32)
        out["h_out"] = h + 1
        out["c_out"] = c
        return out


def test_temperature_sharpens_weights_and_narrows_gaussians():
    out = _outputs()
    cold, warm = adjust_temperature(out, 0.1), adjust_temperature(out, 1.0)
    np.testing.assert_allclose(warm.pi[0], [0.7, 0.2, 0.1], rtol=1e-6)
    assert cold.pi[0, 0] > 0.99 and cold.pen[0, 0] > warm.pen[0, 0]
    np.testing.assert_allclose(cold.sigma, warm.sigma * np.sqrt(0.1))
    np.testing.assert_allclose(cold.pi.sum(-1), 1)
    assert np.isfinite(adjust_temperature(out, 0.0).pi).all()  # clamped at MIN_TEMPERATURE, no overflow


def test_choose_component_and_pen_follow_their_probabilities():
    rng = np.random.default_rng(0)
    pi = np.tile([0.7, 0.2, 0.1], (20_000, 1))
    counts = np.bincount(choose_component(pi, rng), minlength=3) / len(pi)
    np.testing.assert_allclose(counts, [0.7, 0.2, 0.1], atol=0.02)
    pens = draw_pen(np.tile([0.0, 0.0, 1.0], (10, 1)), rng)
    assert (pens == sampler.PEN_END).all()


def test_draw_gaussian_has_the_requested_mean_spread_and_correlation():
    rng = np.random.default_rng(1)
    n = 40_000
    xy = draw_gaussian(np.tile([1.0, -2.0], (n, 1)), np.tile([2.0, 0.5], (n, 1)), np.full(n, 0.8), rng)
    np.testing.assert_allclose(xy.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(xy.std(0), [2.0, 0.5], rtol=0.03)
    assert abs(np.corrcoef(xy.T)[0, 1] - 0.8) < 0.02


def test_sample_row_is_a_stroke5_row_and_seeded():
    mix = adjust_temperature(_outputs(b=4), 0.5)
    a = sample_row(mix, np.random.default_rng(3))
    b = sample_row(mix, np.random.default_rng(3))
    assert a.shape == (4, 5) and a.dtype == np.float32
    np.testing.assert_array_equal(a[:, 2:].sum(-1), 1)
    np.testing.assert_array_equal(a, b)
    assert isinstance(mix, Mixture)


def test_sample_rows_stops_at_the_end_and_pads_ended_drawings():
    step = FakeStep(end_after=5)
    z = np.zeros((2, Z), np.float32)
    labels = np.zeros(2, np.int64)
    rows = list(sample_rows(step, z, labels, zero_state(2, H), 0.5, np.random.default_rng(0), max_len=100))
    assert len(rows) == 5  # the start token step, then 3 rows of drawing, then p3
    last, alive = rows[-1]
    assert not alive.any() and (last[:, 4] == 1).all()
    assert all(r[:, 2].all() for r, _ in rows[:-1])  # pen down until the end


def test_sample_rows_respects_max_len_and_prefix():
    step = FakeStep(end_after=1000)
    z = np.zeros((1, Z), np.float32)
    labels = np.zeros(1, np.int64)
    rows = list(sample_rows(step, z, labels, zero_state(1, H), 1.0, np.random.default_rng(0), max_len=7))
    assert len(rows) == 7
    step = FakeStep(end_after=1000)
    prefix = np.tile(sampler.START_ROW, (4, 1, 1))  # (T, B, 5)
    out, (h, _) = feed(step, prefix, z, labels, zero_state(1, H))
    assert step.calls == 4 and h[0, 0] == 4 and "log_pi" in out


@pytest.mark.parametrize("seed", [0, 5])
def test_same_seed_same_rows(seed):
    z = np.zeros((3, Z), np.float32)
    labels = np.zeros(3, np.int64)

    def run():
        gen = sample_rows(FakeStep(20), z, labels, zero_state(3, H), 0.7, np.random.default_rng(seed), max_len=30)
        return np.stack([r for r, _ in gen])

    np.testing.assert_array_equal(run(), run())


def test_guidance_zero_is_the_conditional_and_guides_categoricals_exactly():
    cond, uncond = _outputs(pen_logits=(2.0, 0.0, -1.0)), _outputs(pen_logits=(0.0, 1.0, -1.0))
    uncond["log_pi"] = np.log(np.array([[0.2, 0.5, 0.3]], np.float32))
    uncond["mu"] = cond["mu"] - 1.0
    assert guide(cond, uncond, 0.0) is cond
    w = 1.5
    g = adjust_temperature(guide(cond, uncond, w), 1.0)
    c, u = adjust_temperature(cond, 1.0), adjust_temperature(uncond, 1.0)
    # the guided categorical is p_c^(1 + w) / p_u^w, renormalised
    for guided, pc, pu in ((g.pen, c.pen, u.pen), (g.pi, c.pi, u.pi)):
        expected = pc ** (1 + w) / pu**w
        np.testing.assert_allclose(guided, expected / expected.sum(-1, keepdims=True), rtol=1e-5)
    # each Gaussian: same covariance, mean pushed away from the unconditional one
    np.testing.assert_allclose(g.mu, cond["mu"] + w * 1.0, rtol=1e-6)
    np.testing.assert_array_equal(g.sigma, c.sigma)
    np.testing.assert_array_equal(g.rho, c.rho)


class EagerStep(FakeStep):
    """A decoder step that wants to end at once, and otherwise lifts the pen after every point (draws dots)."""

    def __call__(self, prev, z, label, h, c):
        out = super().__call__(prev, z, label, h, c)
        out["pen_logits"] = np.tile([0.0, 5.0, 10.0], (prev.shape[0], 1)).astype(np.float32)
        return out


def test_forbid_end_and_forbid_dot_mask_one_pen_state_in_the_marked_rows_only():
    logits = np.tile([1.0, 2.0, 3.0], (3, 1)).astype(np.float32)
    rows = np.array([True, False, True])
    no_end, no_dot = forbid_end(logits, rows), forbid_dot(logits, rows)
    assert np.isneginf(no_end[rows, 2]).all() and (no_end[~rows] == logits[~rows]).all()
    assert np.isneginf(no_dot[rows, 1]).all() and (no_dot[~rows] == logits[~rows]).all()
    assert np.isfinite(logits).all()  # a copy: the input is untouched
    pen = adjust_temperature({**_outputs(3), "pen_logits": no_end}, 0.5).pen
    np.testing.assert_allclose(pen.sum(-1), 1)  # the softmax renormalises over what is left
    assert (pen[rows, 2] == 0).all() and (pen[~rows, 2] > 0).all()


@pytest.mark.parametrize("guidance", [0.0, 1.0])
def test_min_strokes_keeps_a_drawing_going_with_strokes_not_dots(guidance):
    z, labels = np.zeros((2, Z), np.float32), np.zeros(2, np.int64)

    def run(min_strokes):
        rows = sample_rows(
            EagerStep(), z, labels, zero_state(2, H), 0.5, np.random.default_rng(0), 100, None, guidance, 9, min_strokes
        )
        return np.stack([r for r, _ in rows])  # (T, 2, 5)

    assert len(run(0)) == 1  # left alone, the step ends the drawing at once
    rows = run(np.array([2, 4]))
    for b, wanted in enumerate([2, 4]):
        pens = rows[:, b, 2:].argmax(-1)
        end = int(np.flatnonzero(pens == sampler.PEN_END)[0])
        assert (pens[:end] == sampler.PEN_LIFTED).sum() == wanted  # ends right after its minimum
        assert list(pens[:end]) == [sampler.PEN_DOWN, sampler.PEN_LIFTED] * wanted  # two points a stroke: no dots
    assert len(run(3)) == 7  # an int is every drawing's minimum
    assert len(run(np.array([50, 50]))[:, 0]) == 100  # max_len still bounds it


class LabelStep(FakeStep):
    """FakeStep that records the labels it was called with, and gives class 9 other outputs (an "unknown" class)."""

    def __init__(self, end_after: int = 1000):
        super().__init__(end_after)
        self.labels = []

    def __call__(self, prev, z, label, h, c):
        self.labels.append(label.copy())
        out = super().__call__(prev, z, label, h, c)
        out["mu"] = np.where((label == 9)[:, None, None], out["mu"] - 1.0, out["mu"]).astype(np.float32)
        return out


def test_guided_sampling_runs_both_passes_in_one_batch_and_stays_seeded():
    z, labels = np.ones((2, Z), np.float32), np.array([0, 1], np.int64)

    def run(guidance):
        step = LabelStep()
        rows = sample_rows(
            step, z, labels, zero_state(2, H), 0.5, np.random.default_rng(4), 6, guidance=guidance, unconditional=9
        )
        return np.stack([r for r, _ in rows]), step

    plain, plain_step = run(0.0)
    guided, step = run(1.0)
    assert all(len(lab) == 2 for lab in plain_step.labels)  # no second pass without guidance
    assert all(list(lab) == [0, 1, 9, 9] for lab in step.labels)  # the drawings, then the same with the unknown class
    assert guided.shape == plain.shape == (6, 2, 5)
    np.testing.assert_array_equal(guided, run(1.0)[0])
    # guidance moved every Gaussian by +1 here (mu_c - mu_u = 1): the sampled offsets shift by about that
    assert (guided[:, :, :2].mean() - plain[:, :, :2].mean()) > 0.5
    with pytest.raises(ValueError, match="unconditional"):
        next(sample_rows(step, z, labels, zero_state(2, H), 0.5, np.random.default_rng(0), 3, guidance=1.0))


def test_sampler_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, sketchlab.sampler, sketchlab.generate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
