"""The baseline generator: the starting recipe exactly as first described, kept to measure the shipped model against.

    class embedding joined to every input point --2-layer BiLSTM encoder--> states (B, T, 2 He)
    2-layer LSTM decoder, Luong attention over the encoder states at every step --Linear--> (dx, dy, p1, p2, p3)
    loss: mean squared error on all five numbers; teacher forcing with probability 0.9 decaying over the epochs
    (scheduled sampling: otherwise the model's own previous output is fed back); AdamW, weight decay 1e-5, batch 32,
    10 epochs.

Why it is only a baseline: a squared-error fit predicts the mean of the possible next offsets, and where a drawing
could continue in several ways (a cat's ear left or right) the mean lies between them, so shapes blur. It also has
no latent prior: drawing from scratch has no drawing to encode, so the encoder is given the class with just the start
token, and decoding is deterministic (pen state = the largest of its three outputs): every sample of a class is the
same drawing, whatever the seed or temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

STROKE5 = 5


@dataclass
class BaselineConfig:
    n_classes: int = 345  # class embedding rows
    class_embed: int = 32  # class embedding size
    enc_hidden: int = 128  # encoder LSTM size per direction (2 layers, bidirectional)
    dec_hidden: int = 256  # decoder LSTM size (2 layers)
    max_len: int = 250  # longest drawing in points


class BaselineSeq2Seq(nn.Module):
    def __init__(self, cfg: BaselineConfig):
        super().__init__()
        self.cfg = cfg
        self.class_embedding = nn.Embedding(cfg.n_classes, cfg.class_embed)
        self.encoder = nn.LSTM(
            STROKE5 + cfg.class_embed, cfg.enc_hidden, num_layers=2, batch_first=True, bidirectional=True
        )
        self.cell1 = nn.LSTMCell(STROKE5 + 2 * cfg.enc_hidden, cfg.dec_hidden)  # input: [prev point; context]
        self.cell2 = nn.LSTMCell(cfg.dec_hidden, cfg.dec_hidden)
        self.query = nn.Linear(cfg.dec_hidden, 2 * cfg.enc_hidden, bias=False)  # Luong "general" score
        self.out = nn.Linear(cfg.dec_hidden + 2 * cfg.enc_hidden, STROKE5)

    def encode(self, strokes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """strokes (B, T, 5), labels (B,) -> encoder states (B, T, 2 He)."""
        e = self.class_embedding(labels).unsqueeze(1).expand(-1, strokes.shape[1], -1)  # (B, T, E)
        states, _ = self.encoder(torch.cat([strokes, e], dim=-1))
        return states

    def _attend(self, h: torch.Tensor, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (B, Hd), states (B, S, 2 He), mask (B, S) True where real -> context (B, 2 He)."""
        scores = torch.einsum("bd,bsd->bs", self.query(h), states).masked_fill(~mask, -1e9)
        return torch.einsum("bs,bsd->bd", F.softmax(scores, dim=-1), states)

    def decode(self, states, mask, steps: int, teacher=None, teacher_prob: float = 1.0):
        """Run `steps` decoder steps from the start token. With `teacher` (B, steps, 5) the true previous point is
        fed with probability teacher_prob per sample and step, else the model's own output. Returns (B, steps, 5)."""
        b = states.shape[0]
        hd = self.cfg.dec_hidden
        h1 = c1 = h2 = c2 = states.new_zeros(b, hd)
        prev = states.new_zeros(b, STROKE5)
        prev[:, 2] = 1  # start token [0, 0, 1, 0, 0]
        context = states.new_zeros(b, states.shape[-1])
        outs = []
        for t in range(steps):
            h1, c1 = self.cell1(torch.cat([prev, context], dim=-1), (h1, c1))
            h2, c2 = self.cell2(h1, (h2, c2))
            context = self._attend(h2, states, mask)
            y = self.out(torch.cat([h2, context], dim=-1))  # (B, 5)
            outs.append(y)
            own = torch.cat([y[:, :2], F.one_hot(y[:, 2:].argmax(-1), 3).to(y.dtype)], dim=-1).detach()
            if teacher is not None:
                use_true = (torch.rand(b, 1, device=y.device) < teacher_prob).to(y.dtype)
                prev = use_true * teacher[:, t] + (1 - use_true) * own
            else:
                prev = own
        return torch.stack(outs, dim=1)

    def forward(self, stroke5: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, teacher_prob: float):
        """stroke5 (B, T + 1, 5) with the start token first -> predictions (B, T, 5) for rows 1..T."""
        drawing = stroke5[:, 1:]
        mask = torch.arange(drawing.shape[1], device=drawing.device)[None, :] < lengths[:, None]
        states = self.encode(drawing, labels)
        return self.decode(states, mask, drawing.shape[1], drawing, teacher_prob)

    @torch.no_grad()
    def draw(self, labels: torch.Tensor, steps: int) -> torch.Tensor:
        """Draw from scratch: the encoder sees only the start token with the class. Returns (B, steps, 5)."""
        start = torch.zeros(len(labels), 1, STROKE5)
        start[..., 2] = 1
        states = self.encode(start, labels)
        return self.decode(states, torch.ones(len(labels), 1, dtype=torch.bool), steps)


def baseline_loss(pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the five numbers of every row of the drawing and its first end-of-drawing row."""
    t = target.shape[1]
    mask = (torch.arange(t, device=target.device)[None, :] <= lengths[:, None]).float()  # (B, T)
    return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()


def teacher_prob(epoch: int, start: float = 0.9, decay: float = 0.05) -> float:
    """Teacher forcing probability for an epoch: 0.9 at epoch 0, minus 0.05 an epoch (0.45 at epoch 9)."""
    return max(0.0, start - decay * epoch)
