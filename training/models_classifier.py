"""The two classifiers: a Conv1D + (Bi)LSTM over stroke-5 deltas and a 28x28 CNN. Both output logits over all classes.

Stroke model (the family of Google's "Recurrent Neural Networks for Drawing Classification" tutorial):
    strokes (B, T, 5) [--append positions--> (B, T, 7)] --Conv1D+BN+ReLU x3, stride 2 each--> (B, T', C)
    --LSTM x L--> (B, T', H) --pool--> (B, H) --dropout, linear--> logits (B, n_classes)
`lengths` (B,) says how many rows of each sequence are real; padding rows never reach the pooled features.
With `positions`, the model also sees where each point is: the running sum of the offsets, centred on the drawing's
bounding box. It is computed inside the model, so the input stays stroke-5 deltas and serving does not change.

CNN (the SketchCNN family): Conv3x3-BN-LeakyReLU-MaxPool blocks 64 -> 128 -> 256 on 28x28 -> 3x3, then dropout and a
small classifier head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

N_CLASSES = 345  # the official Quick, Draw! categories
STROKE_FEATURES = 5  # stroke-5 rows [dx, dy, p1, p2, p3]
RASTER_SIDE = 28  # Google's numpy_bitmap size


# ---------------------------------------------------------------------------------------------------------------
# Stroke model


@dataclass
class StrokeConfig:
    conv_channels: tuple[int, ...] = (48, 64, 96)  # Conv1D widths
    conv_kernels: tuple[int, ...] = (5, 5, 3)  # Conv1D kernel sizes
    conv_stride: int = 2  # every conv halves the sequence: LSTM work / 8, and 250 points stay under a millisecond
    hidden: int = 128  # LSTM units per direction
    layers: int = 2  # stacked LSTM layers
    bidirectional: bool = True  # a drawing is complete when classified, so the backward pass sees the whole of it
    pool: str = "meanmax"  # "last": the final LSTM output (the tutorial); "meanmax": mean and max over time
    dropout: float = 0.3  # before the classifier
    lstm_dropout: float = 0.0  # between stacked LSTM layers (training only; no parameters, the ONNX graph is the same)
    positions: bool = False  # also feed each point's absolute (x, y), centred on the bounding box (2 more channels)
    n_classes: int = N_CLASSES


def conv_lengths(lengths: torch.Tensor, n_convs: int, stride: int) -> torch.Tensor:
    """Valid length after `n_convs` convolutions of stride `stride` with 'same' padding: ceil(L / stride) each."""
    for _ in range(n_convs):
        lengths = torch.div(lengths + stride - 1, stride, rounding_mode="floor")
    return lengths


def centred_positions(strokes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """stroke-5 (B, T, 5) -> (B, T, 2): each row's absolute (x, y) (the running sum of the offsets, in the model's
    normalised units) minus the centre of the drawing's bounding box; zero on the start token and padding rows.

    Centring makes the channels the same for a drawing wherever it starts and for its left-right mirror (whose
    running sums are negative), so mirroring augmentation and the serving path agree.
    """
    pos = torch.cumsum(strokes[:, :, :2], dim=1)  # (B, T, 2); row 0 is the start token, at the origin
    t = torch.arange(strokes.shape[1], device=strokes.device).unsqueeze(0)  # (1, T)
    valid = ((t >= 1) & (t < lengths.unsqueeze(1))).unsqueeze(2)  # (B, T, 1): the drawing's points
    hi = pos.masked_fill(~valid, -1e4).amax(1, keepdim=True)  # (B, 1, 2)
    lo = pos.masked_fill(~valid, 1e4).amin(1, keepdim=True)
    return (pos - (hi + lo) / 2) * valid.to(pos.dtype)


class StrokeClassifier(nn.Module):
    def __init__(self, config: StrokeConfig):
        super().__init__()
        self.config = config
        convs = []
        c_in = STROKE_FEATURES + (2 if config.positions else 0)
        for c_out, k in zip(config.conv_channels, config.conv_kernels, strict=True):
            convs += [
                nn.Conv1d(c_in, c_out, k, stride=config.conv_stride, padding=k // 2, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        self.convs = nn.Sequential(*convs)
        self.lstm = nn.LSTM(
            c_in,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.lstm_dropout if config.layers > 1 else 0.0,
        )
        width = config.hidden * (2 if config.bidirectional else 1) * (2 if config.pool == "meanmax" else 1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, config.n_classes)

    def forward(self, strokes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # strokes (B, T, 5) float, lengths (B,) int64 -> logits (B, n_classes)
        if self.config.positions:
            strokes = torch.cat([strokes, centred_positions(strokes, lengths)], dim=2)  # (B, T, 7)
        x = self.convs(strokes.transpose(1, 2)).transpose(1, 2)  # (B, T', C)
        x, _ = self.lstm(x)  # (B, T', H * directions)
        n = conv_lengths(lengths, len(self.config.conv_channels), self.config.conv_stride).clamp(min=1)
        n = torch.minimum(n, torch.full_like(n, x.shape[1]))
        if self.config.pool == "last":
            idx = (n - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2])  # (B, 1, H)
            feats = x.gather(1, idx).squeeze(1)
        else:
            valid = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < n.unsqueeze(1)  # (B, T')
            mask = valid.unsqueeze(2).to(x.dtype)
            mean = (x * mask).sum(1) / n.unsqueeze(1).to(x.dtype)
            peak = x.masked_fill(~valid.unsqueeze(2), -1e4).amax(1)
            feats = torch.cat([mean, peak], dim=1)
        return self.head(self.dropout(feats))


# ---------------------------------------------------------------------------------------------------------------
# CNN


@dataclass
class CNNConfig:
    channels: tuple[int, ...] = (64, 128, 256)  # one Conv-BN-LeakyReLU block per width: 28 -> 14 -> 7 -> 3
    # Each block halves the side either by a stride-2 conv (cheaper: measured 2x the images/s of pooling everywhere
    # on this CPU, the 28x28x64 elementwise work being what costs) or, with stride 1, by a 2x2 max-pool after it.
    strides: tuple[int, ...] = (1, 1, 1)
    hidden: int = 256  # units of the hidden dense layer (0: linear classifier on the flattened features)
    dropout: float = 0.3  # on the flattened features and the hidden layer
    negative_slope: float = 0.1  # LeakyReLU slope
    n_classes: int = N_CLASSES


class SketchCNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        blocks = []
        c_in = 1
        for c_out, stride in zip(config.channels, config.strides, strict=True):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(config.negative_slope),
            ]
            if stride == 1:
                blocks.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        side = RASTER_SIDE
        for _ in config.channels:
            side //= 2
        flat = c_in * side * side
        if config.hidden:
            self.head = nn.Sequential(
                nn.Flatten(),
                nn.Dropout(config.dropout),
                nn.Linear(flat, config.hidden),
                nn.LeakyReLU(config.negative_slope),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, config.n_classes),
            )
        else:
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(flat, config.n_classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # image (B, 1, 28, 28) float in 0..1 -> logits (B, n_classes)
        return self.head(self.features(image))


def build(kind: str, config: dict) -> nn.Module:
    """A model from its kind ("stroke" | "cnn") and config dict (as stored in checkpoints)."""
    if kind == "stroke":
        return StrokeClassifier(StrokeConfig(**_tuples(config)))
    if kind == "cnn":
        return SketchCNN(CNNConfig(**_tuples(config)))
    raise ValueError(f"unknown model kind {kind!r}; expected 'stroke' or 'cnn'")


def _tuples(config: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}


def augment_rasters(
    x: torch.Tensor,
    generator: torch.Generator,
    degrees: float,
    scale: float,
    shift: float,
    mirror: torch.Tensor | None = None,
):
    """Random small affine warps of a batch of images (B, 1, H, W): rotation +-degrees, zoom 1 +- scale, shift in
    pixels, and a left-right mirror of half the images `mirror` (a (B,) bool tensor) marks. Image-space counterpart of sketchlab.augment for the CNN (re-rasterising every epoch
    would cost more than the training step)."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator) * 2 - 1  # (B, 4) uniform in -1..1
    angle = u[:, 0] * degrees * torch.pi / 180
    zoom = 1 + u[:, 1] * scale
    t = u[:, 2:] * shift * 2 / x.shape[-1]
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / zoom
    theta[:, 0, 1] = -torch.sin(angle) / zoom
    theta[:, 1, 0] = torch.sin(angle) / zoom
    theta[:, 1, 1] = torch.cos(angle) / zoom
    theta[:, :, 2] = t
    if mirror is not None:  # x_in = -x_out: negate the first column of the sampling matrix
        flip = torch.where((torch.rand(b, generator=generator) < 0.5) & mirror, -1.0, 1.0)
        theta[:, :, 0] *= flip.unsqueeze(1)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
