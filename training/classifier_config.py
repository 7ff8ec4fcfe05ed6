"""The classifier training configuration: `TrainConfig` (one command-line flag per field) and the recipes.

A recipe fills the fields a run leaves unset: "baseline" (the starting recipes exactly as first described, issue 3),
"shipped" (what the shipped models were trained with first) and "finetune" (their second phase).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from sketchlab.data import default_data_dir
from training.classifier_data import DEFAULT_CACHE

RUNS = Path(__file__).resolve().parent.parent / "runs"


@dataclass
class TrainConfig:
    model: str = "cnn"  # "stroke" (Conv1D + LSTM over stroke-5) or "cnn" (28x28 rasters)
    recipe: str = "shipped"  # "baseline" (the starting recipe as first described) or "shipped"
    data: str = ""  # data folder in the official layout (default: sketchlab.data.default_data_dir())
    cache: str = str(DEFAULT_CACHE)  # preprocessed cache, built from --data when missing
    out: str = ""  # run folder (default: runs/<model>-<recipe>)
    epochs: int = 0  # maximum epochs
    max_minutes: float = 0.0  # stop after the epoch that passes this wall time (0: no limit)
    batch_size: int = 0  # global batch, split across processes
    samples_per_epoch: int = -1  # items drawn per epoch (0: one pass over the training items)
    optimizer: str = ""  # "adamw" | "adam" | "sgd"
    lr: float = 0.0  # initial learning rate
    weight_decay: float = -1.0  # L2 (adam) or decoupled (adamw) weight decay
    clip_norm: float = -1.0  # gradient norm clipping (0: none)
    scheduler: str = ""  # "plateau" (ReduceLROnPlateau on the validation loss) | "step" | "cosine" (to 0) | "none"
    step_size: int = 10  # StepLR period in epochs
    gamma: float = 0.5  # StepLR and plateau factor
    plateau_patience: int = 1  # epochs without a lower validation loss before the learning rate drops
    patience: int = 4  # early stopping: epochs without a better validation score
    label_smoothing: float = -1.0  # cross-entropy label smoothing
    balance_power: float = -1.0  # sampling weight n_c ** -power (0: natural frequencies)
    logit_adjust: float = 0.0  # tau of the logit-adjusted loss: CE(logits + tau * log sampled prior); 0: plain CE
    sources: str = ""  # training data, comma-separated: simplified, raw, bitmap
    augment: int = -1  # 1: augment (strokes via sketchlab.augment; rasters with small affine warps)
    mirror: int = -1  # 1: also mirror half the training items left-right (needs augment)
    redraw: float = 0.0  # CNN, with augment: chance a drawing's raster is re-drawn from augmented strokes each time
    prefix: float = 0.0  # with augment: chance a drawing is cut to its first k strokes, as the live guesses see it
    prefix_anywhere: int = (
        0  # with prefix: 1 cuts at any point of the pen's path (mid-stroke, as while the pen is down)
    )
    mixup: float = 0.0  # CNN: mixup alpha, each batch blended with a shuffled copy of itself (0: none)
    mirror_below: int = -1  # with mirror: only classes with fewer training items than this (0: every class)
    teachers: str = ""  # distillation: checkpoints of this model family (comma-separated); their mean log p
    distill: float = 0.0  # with teachers: loss = (1 - distill) * CE(labels) + distill * KL(teachers || model)
    init: str = ""  # start from this checkpoint's weights (a fine-tuning phase: fresh optimizer and schedule)
    max_points: int = 0  # stroke model: sequences cropped to this many points
    model_config: dict = field(default_factory=dict)  # StrokeConfig / CNNConfig fields (set by the recipe)
    limit_train: int = 0  # use only this many training items (tests and smoke runs; 0: all)
    max_per_class: int = 0  # at most this many training items of a class from each source (learning curves; 0: all)
    seed: int = 1234  # seeds sampling, augmentation, dropout and initialisation
    threads: int = 1  # torch CPU threads per process (the machine is shared)
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    amp: int = 1  # bfloat16 autocast on CUDA (ignored on CPU)
    resume: int = 1  # continue from <out>/last.pt when it exists
    progress: int = 1  # tqdm bars on rank 0
    data_mode: str = "cache"  # "cache" (all preprocessed in memory: the shipped models) | "stream" (training.stream)
    shuffle_buffer: int = 10_000  # stream mode: examples held per rank for shuffling (~2 KB each)
    loader_workers: int = 0  # stream mode: DataLoader processes preprocessing a rank's drawings (0: the rank itself)


RECIPES = {
    # The starting recipes exactly as first described (issue 3, item 3), on the simplified training drawings.
    ("stroke", "baseline"): dict(
        model_config=dict(
            conv_channels=(32, 64, 128),
            conv_kernels=(5, 5, 3),
            conv_stride=2,
            hidden=128,
            layers=2,
            bidirectional=False,
            pool="last",
            dropout=0.0,
        ),
        optimizer="sgd",
        lr=1e-2,
        weight_decay=0.0,
        clip_norm=1.0,
        scheduler="none",
        max_points=100,
        batch_size=128,
        epochs=15,
        samples_per_epoch=0,
        label_smoothing=0.0,
        balance_power=0.0,
        sources="simplified",
        augment=0,
        mirror=0,
        mirror_below=0,
    ),
    ("cnn", "baseline"): dict(
        model_config=dict(channels=(64, 128, 256), strides=(1, 1, 1), hidden=256, dropout=0.3),
        optimizer="adam",
        lr=1e-3,
        weight_decay=1e-4,
        clip_norm=0.0,
        scheduler="step",
        step_size=10,
        gamma=0.5,
        batch_size=256,
        epochs=15,
        samples_per_epoch=0,
        label_smoothing=0.0,
        balance_power=0.0,
        sources="simplified",
        augment=0,
        mirror=0,
        mirror_below=0,
    ),
    # Shipped: all the data (raw strokes through the canvas preprocessing, Google's bitmaps for the CNN),
    # class-balanced sampling for the CNN (the prior can be put back at inference, see training.fuse), natural
    # frequencies for the stroke model, augmentation, label smoothing, a bidirectional LSTM with mean+max pooling
    # over stroke-5 and each point's position, AdamW with ReduceLROnPlateau.
    ("stroke", "shipped"): dict(
        model_config=dict(
            conv_channels=(64, 96, 128),
            conv_kernels=(5, 5, 3),
            conv_stride=2,
            hidden=128,
            layers=2,
            bidirectional=True,
            pool="meanmax",
            dropout=0.3,
            positions=True,  # each point's centred (x, y) as two more channels
        ),
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        clip_norm=1.0,
        scheduler="plateau",
        max_points=200,
        batch_size=128,
        epochs=40,
        samples_per_epoch=40_000,
        label_smoothing=0.1,
        balance_power=0.0,  # natural frequencies: the CNN carries the rare classes in the fusion (docs/classifiers.md)
        sources="simplified,raw",
        augment=1,
        mirror=0,
        mirror_below=0,
    ),
    ("cnn", "shipped"): dict(
        model_config=dict(channels=(64, 128, 256), strides=(2, 2, 1), hidden=256, dropout=0.3),
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        clip_norm=0.0,
        scheduler="plateau",
        batch_size=256,
        epochs=40,
        samples_per_epoch=60_000,
        label_smoothing=0.1,
        balance_power=0.5,
        sources="simplified,raw,bitmap",
        augment=1,
        mirror=0,
        mirror_below=0,
    ),
}
for _m in ("stroke", "cnn"):
    # The second phase of the shipped models: from the shipped recipe's best checkpoint, a cosine decay of the
    # learning rate to zero (the plateau schedule had barely started decaying when the CPU budget ended) with
    # left-right mirroring, which doubles the views of the classes that have ~18 training drawings.
    RECIPES[(_m, "finetune")] = {
        **RECIPES[(_m, "shipped")],
        "init": str(RUNS / f"{_m}-shipped" / "best.pt"),
        "scheduler": "cosine",
        "lr": 1e-3,
        "epochs": {"stroke": 40, "cnn": 24}[_m],  # about 40 minutes each on one shared CPU core
        "patience": 1000,  # a cosine run goes to its end; best.pt keeps the best epoch
        "mirror": 1,
        # half the CNN's drawings re-drawn from augmented strokes each time (docs/classifiers.md)
        "redraw": {"stroke": 0.0, "cnn": 0.5}[_m],
        # A quarter of the drawings cut short, as the live guesses see them: the CNN's at a stroke end, the stroke
        # model's anywhere along the pen's path, mid-stroke mostly
        "prefix": 0.25,
        "prefix_anywhere": {"stroke": 1, "cnn": 0}[_m],
    }
RASTER_WARP = dict(degrees=8.0, scale=0.08, shift=1.0)  # CNN augmentation: mild, Google's bitmaps are centred


_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name != "model_config"}


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill the fields left unset from the recipe (fields set on the command line win)."""
    recipe = RECIPES.get((cfg.model, cfg.recipe))
    if recipe is None:
        raise ValueError(f"no recipe {cfg.recipe!r} for model {cfg.model!r}; have {sorted(RECIPES)}")
    for name, value in recipe.items():
        current = getattr(cfg, name)
        if name == "model_config":
            setattr(cfg, name, {**value, **current})
        elif current == _DEFAULTS[name]:  # left at its "unset" default
            setattr(cfg, name, value)
    if bool(cfg.teachers) != (cfg.distill > 0) or not 0 <= cfg.distill <= 1:
        raise ValueError("--teachers and --distill go together, with 0 < distill <= 1")
    if cfg.mixup and cfg.model != "cnn":
        raise ValueError("--mixup blends rasters: CNN only (a blend of two stroke sequences is not a drawing)")
    cfg.data = cfg.data or str(default_data_dir() or "")
    cfg.out = cfg.out or str(RUNS / f"{cfg.model}-{cfg.recipe}")
    return cfg
