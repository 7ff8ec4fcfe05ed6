"""Class-conditioned sketch-rnn: a sequence-to-sequence VAE over stroke-5 drawings (Ha & Eck 2017), plus a class.

    encoder:  [stroke-5; e_class] (B, T, 5 + E) --BiLSTM--> [h_fwd; h_bwd] (B, 2 He) --Linear--> mu, sigma_hat (eqs. 1-2)
              z = mu + exp(sigma_hat / 2) * N(0, I)                                                          (eq. 2)
    decoder:  input at step i = [S_{i-1}; z; e_class]  (B, 5 + Z + E) --LSTM(Hd)--> y_i (B, 6M + 3)          (eq. 3-4)
              y_i = [pi_hat (M), mu_x (M), mu_y (M), sigma_hat_x (M), sigma_hat_y (M), rho_hat (M), q_hat (3)]
              p(dx, dy) = sum_j pi_j N(dx, dy | mu_x,j, mu_y,j, sigma_x,j, sigma_y,j, rho_j)                  (eq. 3)
              pi = softmax(pi_hat), sigma = exp(sigma_hat), rho = tanh(rho_hat), q = softmax(q_hat)          (eq. 6)
    loss:     L_R = -log p(offsets) over the drawing + cross-entropy of the pen state                        (eqs. 9-10)
              L_KL = -1/(2Z) sum(1 + sigma_hat - mu^2 - exp(sigma_hat)), floored at kl_min                  (eqs. 11-12)

Differences from the paper, and why:
- The class embedding e_class joins z at every decoder step, so one model draws all classes on request, and it
  joins every encoder input too (a conditional VAE, q(z | drawing, class)): z then needs to carry only the style
  of a drawing, not its class. Without that, z carries the class (the KL floor lets it carry a few nats free), the decoder
  learns to read the class from z, and drawings from the prior N(0, I) look like whatever class z happens to suggest.
- During training the class is replaced by an extra "unknown" class with probability `class_dropout`, so the same
  decoder also continues a drawing whose class is not given ("finish my drawing" without a word), and the sampler
  can guide a class against it (classifier-free guidance, sketchlab.sampler.guide).
- The decoder state starts at zero instead of tanh(W z): z and the class enter at every step anyway, and the decoder
  step exported to ONNX then needs no separate initialisation graph.

Optional, off by default (`attention`; no ONNX export): Luong et al. 2015 attention of the decoder over the encoder's
per-step states (`Attention`). Its read-out starts at zero, so a model without it loads into one with it and computes
the same outputs. `training/studies/attention_study.py` measures whether it helps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

STROKE5 = 5  # [dx, dy, p1, p2, p3]
PEN_STATES = 3  # p1 pen down, p2 pen lifted, p3 drawing ended
LOG_2PI = math.log(2 * math.pi)
RHO_LIMIT = 0.999  # keeps 1 - rho^2 away from 0, where the Gaussian's density is infinite
MIN_LOG_SIGMA = -6.0  # sigma >= 0.0025 normalised units (~0.03 px): no density spikes on repeated offsets


@dataclass
class GeneratorConfig:
    n_classes: int = 345  # real classes; index n_classes is the "unknown class" token
    enc_hidden: int = 256  # encoder LSTM size per direction (paper: 256)
    dec_hidden: int = 512  # decoder LSTM size (paper: 512 for single-class models; CPU speed bounds it here)
    z_size: int = 128  # latent size (paper: 128)
    class_embed: int = 64  # class embedding size
    n_mixtures: int = 20  # Gaussians in the offset mixture, M (paper: 20)
    class_dropout: float = 0.1  # chance a training drawing's class is replaced by "unknown"
    max_len: int = 250  # longest drawing in points (sketch-rnn: 250 for Quick, Draw!)
    attention: bool = False  # decoder attends over the encoder's per-step states (see Attention); no ONNX export

    @property
    def unknown_class(self) -> int:
        return self.n_classes

    @property
    def n_outputs(self) -> int:
        return 6 * self.n_mixtures + PEN_STATES


@dataclass
class MixtureParams:
    """Decoder outputs for T steps, already squashed into valid ranges (eq. 6). M = n_mixtures."""

    log_pi: torch.Tensor  # (B, T, M) log mixture weights
    mu: torch.Tensor  # (B, T, M, 2) means of (dx, dy)
    log_sigma: torch.Tensor  # (B, T, M, 2) log standard deviations of (dx, dy)
    rho: torch.Tensor  # (B, T, M) correlation of dx and dy, in (-RHO_LIMIT, RHO_LIMIT)
    pen_logits: torch.Tensor  # (B, T, 3)


@dataclass
class Memory:
    """What the decoder attends to: the encoder's per-step outputs over the drawing it was given."""

    states: torch.Tensor  # (B, S, 2 He) BiLSTM outputs [h_fwd; h_bwd] at each row, zeros after a drawing's length
    mask: torch.Tensor  # (B, S) bool, True for the rows of the drawing (s < length)


def split_params(y: torch.Tensor, m: int) -> MixtureParams:
    """Raw decoder output (B, T, 6M + 3) -> MixtureParams."""
    pi_hat, mu_x, mu_y, s_x, s_y, rho_hat, q_hat = torch.split(y, [m, m, m, m, m, m, PEN_STATES], dim=-1)
    return MixtureParams(
        log_pi=F.log_softmax(pi_hat, dim=-1),
        mu=torch.stack([mu_x, mu_y], dim=-1),
        log_sigma=torch.stack([s_x, s_y], dim=-1).clamp(min=MIN_LOG_SIGMA),
        rho=torch.tanh(rho_hat) * RHO_LIMIT,
        pen_logits=q_hat,
    )


def mixture_log_prob(p: MixtureParams, dxdy: torch.Tensor) -> torch.Tensor:
    """log sum_j pi_j N(dx, dy | ...) for targets dxdy (B, T, 2) -> (B, T). Bivariate normal: eqs. 24-25 of
    Graves 2013, computed in log space with logsumexp over the mixture for stability."""
    z = (dxdy.unsqueeze(-2) - p.mu) * torch.exp(-p.log_sigma)  # (B, T, M, 2) standardised offsets
    one_minus_rho2 = 1 - p.rho**2  # (B, T, M)
    quad = (z[..., 0] ** 2 + z[..., 1] ** 2 - 2 * p.rho * z[..., 0] * z[..., 1]) / one_minus_rho2
    log_n = -LOG_2PI - p.log_sigma.sum(-1) - 0.5 * torch.log(one_minus_rho2) - 0.5 * quad  # (B, T, M)
    return torch.logsumexp(p.log_pi + log_n, dim=-1)


class Encoder(nn.Module):
    """Bidirectional LSTM over a drawing -> (mu, sigma_hat) of q(z | drawing) (section 3.2)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.lstm = nn.LSTM(STROKE5 + cfg.class_embed, cfg.enc_hidden, batch_first=True, bidirectional=True)
        self.to_mu = nn.Linear(2 * cfg.enc_hidden, cfg.z_size)
        self.to_sigma = nn.Linear(2 * cfg.enc_hidden, cfg.z_size)

    def forward(
        self,
        strokes: torch.Tensor,
        class_emb: torch.Tensor,
        lengths: torch.Tensor | None = None,
        return_memory: bool = False,
    ):
        """strokes (B, T, 5) without the start token; class_emb (B, E); lengths (B,) or None when all drawings fill
        T. Returns mu, sigma_hat, each (B, Z); sigma_hat is a log variance. With return_memory, also the per-step
        outputs as a Memory (for the decoder's attention)."""
        x = torch.cat([strokes, class_emb.unsqueeze(1).expand(-1, strokes.shape[1], -1)], dim=-1)  # (B, T, 5 + E)
        if lengths is None:
            states, (h, _) = self.lstm(x)  # states: (B, T, 2 He); h: (2, B, He), last state of each direction
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            states, (h, _) = self.lstm(packed)
        h = torch.cat([h[0], h[1]], dim=-1)  # (B, 2 He)
        if not return_memory:
            return self.to_mu(h), self.to_sigma(h)
        t = x.shape[1]
        if lengths is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)  # (B, T)
        else:
            states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=t)  # (B, T, 2 He)
            mask = torch.arange(t, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
        return self.to_mu(h), self.to_sigma(h), Memory(states, mask)


class Attention(nn.Module):
    """Luong et al. 2015 "general" attention of each decoder step over the encoder's per-step states, read out
    straight into the mixture parameters. out (B, T, Hd) decoder LSTM outputs; memory states (B, S, 2 He):

        scores  = out W_a states^T                             (B, T, S)  the "general" score (section 3.1)
        weights = softmax over s, 0 where s >= the length     (B, T, S)
        context = weights states                               (B, T, 2 He)
        y       = head(out) + W_c context                      (B, T, 6M + 3)

    y is the mixture head applied to [out; context] (its weight matrix split in two), without Luong's extra tanh
    layer: the head stays the trained one. W_c starts at zero, so with it a model loaded from weights trained
    without attention computes exactly what it did, and fine-tuning starts from there.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.query = nn.Linear(cfg.dec_hidden, 2 * cfg.enc_hidden, bias=False)  # W_a (as out -> out W_a)
        self.read_out = nn.Linear(2 * cfg.enc_hidden, cfg.n_outputs, bias=False)  # W_c
        nn.init.zeros_(self.read_out.weight)

    def weights(self, out: torch.Tensor, memory: Memory) -> torch.Tensor:
        """(B, T, S) attention weights of each decoder step over the memory's rows; each row sums to 1."""
        scores = self.query(out) @ memory.states.transpose(1, 2)  # (B, T, 2 He) @ (B, 2 He, S) -> (B, T, S)
        # the most negative finite number rather than -inf: exp underflows to exactly 0, and never gives NaN
        scores = scores.masked_fill(~memory.mask[:, None, :], torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1)

    def forward(self, out: torch.Tensor, memory: Memory) -> torch.Tensor:
        """W_c context (B, T, 6M + 3), to add to the mixture head's output."""
        context = self.weights(out, memory) @ memory.states  # (B, T, S) @ (B, S, 2 He) -> (B, T, 2 He)
        return self.read_out(context)


class Decoder(nn.Module):
    """LSTM over [previous point; z; class embedding] -> mixture parameters for the next point (section 3.3)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.class_embedding = nn.Embedding(cfg.n_classes + 1, cfg.class_embed)  # + 1: the "unknown" class
        self.lstm = nn.LSTM(STROKE5 + cfg.z_size + cfg.class_embed, cfg.dec_hidden, batch_first=True)
        self.head = nn.Linear(cfg.dec_hidden, cfg.n_outputs)
        self.attention = Attention(cfg) if cfg.attention else None  # registered last: no new keys when off

    def forward(self, prev: torch.Tensor, z: torch.Tensor, labels: torch.Tensor, state=None, memory=None):
        """prev (B, T, 5) the points before each step (start token first); z (B, Z); labels (B,) class indices;
        state: (h, c), each (1, B, Hd), or None for zeros; memory: the encoder's Memory to attend over, or None for
        none (drawing from scratch: the context is then zero, y = head(out)). Returns raw outputs (B, T, 6M + 3) and
        the new state."""
        cond = torch.cat([z, self.class_embedding(labels)], dim=-1)  # (B, Z + E)
        x = torch.cat([prev, cond.unsqueeze(1).expand(-1, prev.shape[1], -1)], dim=-1)  # (B, T, 5 + Z + E)
        out, state = self.lstm(x, state)  # out: (B, T, Hd)
        y = self.head(out)  # (B, T, 6M + 3)
        if self.attention is not None and memory is not None:
            y = y + self.attention(out, memory)
        return y, state


class SketchRNN(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, stroke5: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
        """Teacher-forced pass. stroke5 (B, T + 1, 5) with the start token in row 0; lengths (B,) drawing rows;
        labels (B,). Returns (MixtureParams for the T targets, mu, sigma_hat)."""
        if self.training and self.cfg.class_dropout > 0:
            drop = torch.rand(labels.shape, device=labels.device) < self.cfg.class_dropout
            labels = torch.where(drop, torch.full_like(labels, self.cfg.unknown_class), labels)
        e = self.decoder.class_embedding(labels)  # (B, E), shared by encoder and decoder
        memory = None
        if self.cfg.attention:
            mu, sigma_hat, memory = self.encoder(stroke5[:, 1:], e, lengths, return_memory=True)  # memory: S = T
        else:
            mu, sigma_hat = self.encoder(stroke5[:, 1:], e, lengths)  # (B, Z) each
        z = mu + torch.exp(sigma_hat / 2) * torch.randn_like(mu)  # reparameterisation (eq. 2)
        y, _ = self.decoder(stroke5[:, :-1], z, labels, memory=memory)  # predicts rows 1..T from rows 0..T-1
        return split_params(y.float(), self.cfg.n_mixtures), mu.float(), sigma_hat.float()


def reconstruction_loss(p: MixtureParams, target: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """L_s (offsets, only over the drawing) and L_p (pen, over every row incl. padding), each divided by the number
    of rows T as in eq. 9-10 (sketch-rnn divides by N_max; the batch is cut to its longest drawing)."""
    b, t, _ = target.shape  # target (B, T, 5): rows 1..T of the stroke-5 batch
    mask = (torch.arange(t, device=target.device)[None, :] < lengths[:, None]).float()  # (B, T)
    offsets = -(mixture_log_prob(p, target[..., :2]) * mask).sum() / (b * t)
    pen = F.cross_entropy(p.pen_logits.reshape(-1, PEN_STATES), target[..., 2:].argmax(-1).reshape(-1))
    return offsets, pen


def kl_loss(mu: torch.Tensor, sigma_hat: torch.Tensor, kl_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(q(z|x) || N(0, I)) averaged over z's dimensions (eq. 11), and the same floored at kl_min (eq. 12)."""
    kl = -0.5 * torch.mean(1 + sigma_hat - mu**2 - torch.exp(sigma_hat))
    return kl, torch.clamp(kl, min=kl_min)


# ---------------------------------------------------------------------------------------------------------------
# Export wrappers: the graphs the runtime runs (see training/export_generator.py)


def _check_exportable(model: SketchRNN) -> None:
    if model.cfg.attention:
        raise ValueError(
            "a generator with attention has no ONNX export: each decoder step would need the encoder's states as an "
            "input; export a model trained without --attention"
        )


class EncoderForExport(nn.Module):
    """stroke-5 (B, T, 5) of whole drawings (no start token, no padding) and label (B,) -> mu, sigma_hat (B, Z)."""

    def __init__(self, model: SketchRNN):
        super().__init__()
        _check_exportable(model)
        self.encoder = model.encoder
        self.class_embedding = model.decoder.class_embedding

    def forward(self, strokes: torch.Tensor, label: torch.Tensor):
        return self.encoder(strokes, self.class_embedding(label), None)


class DecoderStep(nn.Module):
    """One decoder step: (prev point, z, class, state) -> mixture parameters of the next point and the new state.

    prev (B, 5); z (B, Z); label (B,) int64; h, c (B, Hd). Outputs: pi_logits (B, M), mu (B, M, 2),
    log_sigma (B, M, 2), rho (B, M), pen_logits (B, 3), h_out, c_out (B, Hd). Temperature is applied by the sampler.
    """

    def __init__(self, model: SketchRNN):
        super().__init__()
        _check_exportable(model)
        self.decoder = model.decoder
        self.m = model.cfg.n_mixtures

    def forward(self, prev, z, label, h, c):
        y, (h2, c2) = self.decoder(prev.unsqueeze(1), z, label, (h.unsqueeze(0), c.unsqueeze(0)))
        p = split_params(y[:, 0:1], self.m)  # T = 1
        return p.log_pi[:, 0], p.mu[:, 0], p.log_sigma[:, 0], p.rho[:, 0], p.pen_logits[:, 0], h2[0], c2[0]
