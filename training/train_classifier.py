"""Train a classifier: the Conv1D+LSTM stroke model or the 28x28 CNN, with the baseline or the shipped recipe.

    python -m training.train_classifier --model cnn --recipe shipped            # -> runs/cnn-shipped/best.pt
    python -m training.train_classifier --model stroke --recipe baseline --epochs 10
    torchrun --nproc-per-node 2 -m training.train_classifier --model stroke    # same steps on 2 processes (gloo)

Every `TrainConfig` field is a command-line flag (`--max-minutes 30`); a recipe fills the fields left unset.
Checkpoints (`last.pt` each epoch, `best.pt` at the best validation score) hold the config and the history, and a
rerun with the same `--out` resumes from `last.pt`. Export with `python -m training.export_classifier`.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
import warnings
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sketchlab.augment import augment_stroke3, augmented_raster, random_mirror, random_prefix
from sketchlab.data import fingerprint, read_categories
from sketchlab.prepare import PREPROCESSING_VERSION
from sketchlab.split import Split
from training import distributed, stream
from training.classifier_config import RASTER_WARP, TrainConfig, resolve
from training.classifier_data import (
    RAW,
    SIMPLIFIED,
    Cache,
    Redraw,
    collate_strokes,
    epoch_order,
    global_batches,
    load_or_build,
    raster_batches,
    sampled_log_prior,
    stroke_batches,
    stroke_tensor,
)
from training.models_classifier import augment_rasters, build

# ---------------------------------------------------------------------------------------------------------------
# Data per model


def training_pool(cfg: TrainConfig, cache: Cache):
    """The training items: for the stroke model drawing indices; for the CNN (rasters (K, 28, 28), labels (K,),
    drawings (K,): each raster's drawing index in the cache, -1 for a Google bitmap). With `max_per_class`, at most
    that many of each class from each source (simplified, raw, bitmap), chosen at random by the seed."""
    sources = {s.strip() for s in cfg.sources.split(",") if s.strip()}
    codes = tuple(c for name, c in (("simplified", SIMPLIFIED), ("raw", RAW)) if name in sources)
    idx = cache.select(Split.TRAIN, codes)
    if cfg.max_per_class:
        keys = cache.label[idx] * 2 + (cache.source[idx] == RAW)  # one group per class and source
        idx = idx[capped(keys, cfg.max_per_class, cfg.seed)]
    if cfg.model == "stroke":
        return idx[: cfg.limit_train] if cfg.limit_train else idx
    rasters, labels, drawings = [cache.raster[idx]], [cache.label[idx]], [idx]
    if "bitmap" in sources:
        bm = np.flatnonzero(cache.bm_split == 0)
        if cfg.max_per_class:
            bm = bm[capped(cache.bm_label[bm], cfg.max_per_class, cfg.seed)]
        rasters.append(cache.bm_raster[bm])
        labels.append(cache.bm_label[bm])
        drawings.append(np.full(len(bm), -1, dtype=np.int64))
    pool = tuple(np.concatenate(a) for a in (rasters, labels, drawings))
    return tuple(a[: cfg.limit_train] for a in pool) if cfg.limit_train else pool


def capped(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices (sorted) into the (K,) `groups` that keep at most n items of each group, chosen at random by `seed`."""
    order = np.random.default_rng(seed).permutation(len(groups))
    rank = np.empty(len(groups), np.int64)  # each item's place among its group's items, in the random order
    for g in np.unique(groups):
        members = order[groups[order] == g]
        rank[members] = np.arange(len(members))
    return np.flatnonzero(rank < n)


def batches_for_epoch(cfg: TrainConfig, cache: Cache, pool, epoch: int) -> list[np.ndarray]:
    labels = cache.label[pool] if cfg.model == "stroke" else pool[1]
    items = pool if cfg.model == "stroke" else np.arange(len(labels))
    size = cfg.samples_per_epoch or len(items)
    seed = cfg.seed * 1000 + epoch
    order = epoch_order(items, labels, cfg.balance_power, len(cache.classes), size, seed)
    lengths = cache.lengths if cfg.model == "stroke" else None
    return global_batches(order, cfg.batch_size, lengths, seed)


def mirrored_classes(cfg: TrainConfig, counts: np.ndarray) -> np.ndarray | None:
    """Which classes training mirrors left-right, from the (C,) training items per class (every source): None (no
    mirroring) or a (C,) bool array. With `mirror_below`, only the data-poor classes: mirroring doubles their few
    views, while a class with plenty of drawings keeps the orientation most players draw it in."""
    if cfg.mirror <= 0:
        return None
    if cfg.mirror_below <= 0:
        return np.ones(len(counts), dtype=bool)
    return counts < cfg.mirror_below


def batch_iter(cfg: TrainConfig, cache: Cache, pool, batches, info, scale: float, train: bool, epoch: int):
    """Yield (inputs tuple, labels) on this rank's device."""
    mirror = None
    if train and cfg.augment:
        labels = cache.label[pool] if cfg.model == "stroke" else pool[1]
        mirror = mirrored_classes(cfg, np.bincount(labels, minlength=len(cache.classes)))
    anywhere = bool(cfg.prefix_anywhere)
    if cfg.model == "stroke":
        rng = np.random.default_rng([cfg.seed, epoch, info.rank]) if (train and cfg.augment) else None
        batch_data = stroke_batches(
            cache, batches, scale, cfg.max_points, rng, info.rank, info.world_size, mirror, cfg.prefix, anywhere
        )
        for x, lengths, y in batch_data:
            yield (x.to(info.device), lengths.to(info.device)), y.to(info.device)
    else:
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch * 10 + info.rank)
        redraw = None
        if train and cfg.augment and (cfg.redraw > 0 or cfg.prefix > 0):
            rng = np.random.default_rng([cfg.seed, epoch, info.rank, 1])
            redraw = Redraw(cache, pool[2], cfg.redraw, rng, cfg.prefix, anywhere)
        for x, y in raster_batches(pool[0], pool[1], batches, info.rank, info.world_size, redraw):
            if train and cfg.augment:
                x = augment_rasters(x, gen, **RASTER_WARP, mirror=_per_item(mirror, y))
            x = x.to(info.device).contiguous(memory_format=torch.channels_last)
            yield (x,), y.to(info.device)


def _per_item(mirror: np.ndarray | None, labels: torch.Tensor) -> torch.Tensor | None:
    """`mirrored_classes` -> what augment_rasters takes for a batch of these (B,) labels."""
    return None if mirror is None else torch.from_numpy(mirror[labels.numpy()])


def logit_adjustment(cfg: TrainConfig, cache: Cache, pool, scfg=None) -> torch.Tensor | None:
    """tau * log of the class distribution the training batches are drawn from (Menon et al. 2021, "Long-tail
    learning via logit adjustment"), added to the logits in the training loss only: the model's own logits then
    estimate a class-balanced posterior, whatever the sampling, and inference puts a prior back as it chooses
    (training.fuse). None when cfg.logit_adjust is 0."""
    if not cfg.logit_adjust:
        return None
    if scfg is not None:
        counts = stream.class_counts(scfg)
    else:
        labels = cache.label[pool] if cfg.model == "stroke" else pool[1]
        counts = np.bincount(labels, minlength=len(cache.classes))
    log_prior = sampled_log_prior(counts, cfg.balance_power)
    return cfg.logit_adjust * torch.tensor(log_prior, dtype=torch.float32)


def validation_sets(cfg: TrainConfig, cache: Cache) -> dict:
    """name -> pool of held-out validation items: simplified drawings, and Google's bitmaps for the CNN."""
    idx = cache.select(Split.VALID, (SIMPLIFIED,))
    if cfg.limit_train:
        idx = idx[: max(cfg.limit_train // 4, 8)]
    if cfg.model == "stroke":
        return {"drawings": idx}
    sets = {"drawings": (cache.raster[idx], cache.label[idx])}
    bm = np.flatnonzero(cache.bm_split == 1)
    if len(bm) and not cfg.limit_train:
        sets["bitmaps"] = (cache.bm_raster[bm], cache.bm_label[bm])
    return sets


# ---------------------------------------------------------------------------------------------------------------
# Streamed data (data_mode "stream": a full download, read per rank by training.stream)

STREAM_VALID = 20_000  # validation drawings held in memory in stream mode (the VALID split's first, on every rank)


def stream_config(cfg: TrainConfig, info) -> stream.StreamConfig:
    """The training stream of this rank: the simplified and raw files of --sources, class-balanced like the cache."""
    if cfg.limit_train or cfg.max_per_class:
        raise ValueError(
            "--limit-train and --max-per-class bound the cached training items; in stream mode use --samples-per-epoch"
        )
    sources = {s.strip() for s in cfg.sources.split(",") if s.strip()}
    if "bitmap" in sources:
        warnings.warn("stream mode reads no numpy_bitmap files; the CNN trains on sketchlab's rasters", stacklevel=2)
    return stream.StreamConfig(
        root=cfg.data,
        classes=tuple(read_categories(cfg.data)),
        kinds=tuple(k for k in ("simplified", "raw") if k in sources) or ("simplified",),
        balance_power=cfg.balance_power,
        shuffle_buffer=cfg.shuffle_buffer,
        rasters=cfg.model == "cnn",
        seed=cfg.seed,
        rank=info.rank,
        world_size=info.world_size,
    )


def stream_inputs(cfg: TrainConfig, scale: float, mirror: np.ndarray | None, batch: list, rng: np.random.Generator):
    """Streamed examples -> (inputs tuple, labels) on the CPU, augmented as `batch_iter` augments (`mirror`: see
    `mirrored_classes`)."""
    y = torch.tensor([e.label for e in batch], dtype=torch.int64)
    if cfg.model == "stroke":
        seqs = []
        for e in batch:
            s = e.stroke3
            if cfg.augment:
                s = augment_stroke3(random_prefix(s, rng, cfg.prefix, bool(cfg.prefix_anywhere)), rng)
                s = random_mirror(s, rng) if (mirror is not None and mirror[e.label]) else s
            seqs.append(stroke_tensor(s, scale, cfg.max_points))
        return collate_strokes(seqs), y
    images = [stream_raster(cfg, e, rng) for e in batch]
    x = torch.from_numpy(np.stack(images)).unsqueeze(1).float().div_(255.0)
    if cfg.augment:
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        x = augment_rasters(x, gen, **RASTER_WARP, mirror=_per_item(mirror, y))
    return (x,), y


def stream_raster(cfg: TrainConfig, example, rng: np.random.Generator) -> np.ndarray:
    """A streamed drawing's (28, 28) uint8 training raster: re-drawn from a prefix of its strokes or from an augmented
    copy of them as `Redraw` does for the cache, or the raster as made."""
    if not cfg.augment:
        return example.raster
    if cfg.prefix > 0 and rng.random() < cfg.prefix:
        return augmented_raster(random_prefix(example.stroke3, rng, 1.0, bool(cfg.prefix_anywhere)), rng)
    if cfg.redraw and rng.random() < cfg.redraw:
        return augmented_raster(example.stroke3, rng)
    return example.raster


def stream_batch_iter(cfg: TrainConfig, scfg: stream.StreamConfig, info, scale: float, epoch: int, n_steps: int):
    """Yield (inputs tuple, labels) on this rank's device, as `batch_iter` does for training, from the stream."""
    transform = functools.partial(stream_inputs, cfg, scale, mirrored_classes(cfg, stream.class_counts(scfg)))
    local = distributed.local_batch(cfg.batch_size, info)
    for inputs, y in stream.loader(scfg, epoch, local, n_steps, transform, cfg.loader_workers):
        inputs = tuple(t.to(info.device) for t in inputs)
        if cfg.model == "cnn":
            inputs = (inputs[0].contiguous(memory_format=torch.channels_last),)
        yield inputs, y.to(info.device)


# ---------------------------------------------------------------------------------------------------------------
# Metrics


def topk_counts(logits: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(C, 4) float64 per-class counts [n, top1, top3, top5] of one batch."""
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (B, 5)
    hit = top == labels.unsqueeze(1)
    out = torch.zeros(n_classes, 4, dtype=torch.float64)
    lab = labels.cpu()
    for col, k in enumerate((None, 1, 3, 5)):
        vals = torch.ones(len(lab), dtype=torch.float64) if k is None else hit[:, :k].any(1).cpu().double()
        out[:, col].index_add_(0, lab, vals)
    return out


def summarize(counts: torch.Tensor, rich: np.ndarray, loss_sum: float) -> dict:
    c = counts.numpy()
    n = c[:, 0]
    has = n > 0
    total = max(n.sum(), 1)
    out = {
        "n": int(n.sum()),
        "loss": loss_sum / total,
        "top1": c[:, 1].sum() / total,
        "top3": c[:, 2].sum() / total,
        "top5": c[:, 3].sum() / total,
        "macro_top1": float(np.mean(c[has, 1] / n[has])) if has.any() else 0.0,
        "macro_top5": float(np.mean(c[has, 3] / n[has])) if has.any() else 0.0,
    }
    r = rich & has
    if r.any():
        out["rich_top1"] = c[r, 1].sum() / n[r].sum()
        out["rich_top3"] = c[r, 2].sum() / n[r].sum()
    return {k: float(v) if not isinstance(v, int) else v for k, v in out.items()}


@torch.no_grad()
def evaluate(cfg, model, cache, pool, info, scale) -> dict:
    model.eval()
    labels = cache.label[pool] if cfg.model == "stroke" else pool[1]
    items = pool if cfg.model == "stroke" else np.arange(len(labels))
    lengths = cache.lengths if cfg.model == "stroke" else None
    batches = global_batches(np.sort(items), cfg.batch_size, lengths) if len(items) >= cfg.batch_size else []
    rest = len(items) % cfg.batch_size if batches else len(items)
    if rest:
        batches.append(np.sort(items)[len(items) - rest :])
    counts = torch.zeros(len(cache.classes), 4, dtype=torch.float64)
    loss_sum = torch.zeros(1, dtype=torch.float64)
    # The plain module, not the DDP wrapper: DDP's forward broadcasts buffers (a collective), and a rank whose share
    # of the last evaluation batch is empty runs one forward fewer, which would leave the ranks' collectives unpaired.
    net = distributed.unwrap(model)
    for inputs, y in batch_iter(cfg, cache, pool, batches, info, scale, train=False, epoch=0):
        if len(y) == 0:
            continue
        logits = net(*inputs).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double().cpu()
        counts += topk_counts(logits, y, len(cache.classes))
    counts = distributed.all_reduce_sum(counts)
    loss_sum = distributed.all_reduce_sum(loss_sum)
    model.train()
    return summarize(counts, cache.rich_classes(), float(loss_sum))


def score(metrics: dict) -> float:
    """One number to keep the best epoch by: accuracy on the common classes and top-5 on the rare ones matter."""
    return 0.5 * (metrics["top1"] + metrics["macro_top5"])


# ---------------------------------------------------------------------------------------------------------------
# Optimisation and checkpoints


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module):
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
    if cfg.scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.gamma, patience=cfg.plateau_patience)
    elif cfg.scheduler == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    elif cfg.scheduler == "cosine":  # stepped once per epoch, reaching 0 after cfg.epochs
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 * (1 + math.cos(math.pi * min(e / cfg.epochs, 1))))
    else:
        sched = None
    return opt, sched


def training_data(root: str, cache: Cache, pool, scfg: stream.StreamConfig | None, scale: float, model: str) -> dict:
    """What export needs to know of the training data, kept in every checkpoint so that exporting never re-reads
    the data (a full download cannot be cached) and may run where the data is not: the classes in output order, the
    offset scale factor the stroke inputs were divided by, the training items, the simplified training drawings per
    class (the class prior of held-out drawings, which `training.fuse` corrects with) and the folder's fingerprint
    (how `training.evaluate` recognises it), and the preprocessing version the drawings went through (the manifest
    stamps this one, so a model trained on older preprocessing is flagged stale at load). Exact from the cache;
    estimated from the file sizes when streamed (`stream.split_class_counts`)."""
    if scfg is None:
        train_items = len(pool) if model == "stroke" else len(pool[1])
        counts = cache.counts(Split.TRAIN, (SIMPLIFIED,))
    else:
        train_items = stream.estimated_examples(scfg)
        counts = stream.split_class_counts(replace(scfg, kinds=("simplified",)))
    return {
        "classes": list(cache.classes),
        "scale": float(scale),
        "train_items": int(round(train_items)),
        "train_counts": [int(round(c)) for c in counts],
        "data_mode": "cache" if scfg is None else "stream",
        "fingerprint": fingerprint(root),
        "preprocessing_version": PREPROCESSING_VERSION if scfg is not None else cache.preprocessing_version,
    }


def init_record(path: str, ckpt: dict | None = None) -> dict | None:
    """Where a fine-tuning phase's weights came from, for its manifest: the checkpoint it started from (`ckpt`, read
    from `path` when not given), that run's recipe and epochs, the preprocessing it trained on (None where the
    checkpoint predates that record) and, in turn, where that one started from. None for no path or no file."""
    if ckpt is None:
        if not path or not Path(path).is_file():
            return None
        ckpt = load_checkpoint(path)
    data = ckpt.get("data") or {}
    return {
        "checkpoint": str(path),
        "recipe": ckpt["config"]["recipe"],
        "epochs": ckpt["epoch"],
        "preprocessing_version": data.get("preprocessing_version"),
        "init": data["init"] if "init" in data else init_record(ckpt["config"].get("init", "")),
    }


def save_checkpoint(path: Path, model, opt, sched, state: dict, cfg: TrainConfig, data: dict) -> None:
    ckpt = {
        "model": distributed.unwrap(model).state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else {},
        "config": asdict(cfg),
        "data": data,  # training_data()
        **state,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by this module (tensors, dicts, lists and numbers only, hence weights_only=True)."""
    return torch.load(path, map_location="cpu", weights_only=True)


# ---------------------------------------------------------------------------------------------------------------
# Training


def mixup_draw(alpha: float, n: int, rng: np.random.Generator) -> tuple[float, torch.Tensor | None]:
    """Mixup (Zhang et al. 2018): the weight lam ~ Beta(alpha, alpha) and the partner of each of the n items; the
    batch becomes lam * x + (1 - lam) * x[perm] and the loss lam * CE(y) + (1 - lam) * CE(y[perm]).
    (1.0, None) when alpha is 0."""
    if not alpha:
        return 1.0, None
    return float(rng.beta(alpha, alpha)), torch.from_numpy(rng.permutation(n))


def load_teachers(cfg: TrainConfig, classes: list[str], device: torch.device) -> tuple[list[torch.nn.Module], list]:
    """The checkpoints of `--teachers` as frozen models in eval mode, each checked to be of this model family and to
    rank the same classes in the same order (knowledge distillation, Hinton et al. 2015: what two runs of a recipe
    agree on, taught to one model of the same size, so serving pays for one); and where each came from
    (`init_record`), for the checkpoint's data."""
    teachers, records = [], []
    for path in filter(None, cfg.teachers.split(",")):
        ckpt = load_checkpoint(path)
        if ckpt["config"]["model"] != cfg.model:
            raise ValueError(f"teacher {path} is a {ckpt['config']['model']} model, not {cfg.model}")
        if list(ckpt.get("data", {}).get("classes", classes)) != list(classes):
            raise ValueError(f"teacher {path} ranks other classes than this training data")
        teacher = build(cfg.model, ckpt["config"]["model_config"]).to(device)
        teacher.load_state_dict(ckpt["model"])
        teachers.append(teacher.eval().requires_grad_(False))
        records.append(init_record(path, ckpt))
    return teachers, records


def distillation_loss(logits: torch.Tensor, inputs: tuple, teachers: list[torch.nn.Module]) -> torch.Tensor:
    """KL(teachers || model) on one batch, the teachers' distribution the normalised mean of their log-probabilities
    (as `fusion_study members` averages them); logits (B, C), the batch's inputs as the model took them."""
    with torch.no_grad():
        target = torch.stack([F.log_softmax(t(*inputs).float(), dim=1) for t in teachers]).mean(0)
        target = F.log_softmax(target, dim=1)  # (B, C)
    return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean", log_target=True)


def train(cfg: TrainConfig) -> dict:
    """Train to the end (epochs, early stopping or time budget); returns the best validation metrics."""
    cfg = resolve(cfg)
    torch.set_num_threads(cfg.threads)
    info = distributed.setup(cfg.device)
    out = Path(cfg.out)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    if cfg.data_mode == "stream":  # training batches streamed per rank; the validation set bounded in memory
        scfg = stream_config(cfg, info)
        cache = stream.validation_cache(replace(scfg, split=Split.VALID), STREAM_VALID)
        scale, pool = stream.estimate_scale(scfg), None
    elif cfg.data_mode == "cache":
        scfg = None
        cache = load_or_build(cfg.data, cfg.cache)
        scale = cache.scale()
        pool = training_pool(cfg, cache)
    else:
        raise ValueError(f"data_mode must be 'cache' or 'stream', got {cfg.data_mode!r}")
    valid = validation_sets(cfg, cache)
    adjust = logit_adjustment(cfg, cache, pool, scfg)
    data = training_data(cfg.data, cache, pool, scfg, scale, cfg.model) if info.is_main else {}
    init = load_checkpoint(cfg.init) if cfg.init else None  # a fine-tuning phase starts from these weights
    if init is not None and info.is_main:
        data["init"] = init_record(cfg.init, init)

    cfg.model_config = {**cfg.model_config, "n_classes": len(cache.classes)}  # one output per class of the data
    torch.manual_seed(cfg.seed)
    model = build(cfg.model, cfg.model_config).to(info.device)
    if cfg.model == "cnn":
        model = model.to(memory_format=torch.channels_last)
    if init is not None:
        model.load_state_dict(init["model"])
    teachers, records = load_teachers(cfg, list(cache.classes), info.device)
    if teachers and info.is_main:
        data["teachers"] = records
    opt, sched = make_optimizer(cfg, model)
    state = {"epoch": 0, "history": [], "best_score": -1.0, "bad_epochs": 0, "elapsed_s": 0.0}
    last = out / "last.pt"
    if cfg.resume and last.exists():
        ckpt = load_checkpoint(last)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt["scheduler"]:
            sched.load_state_dict(ckpt["scheduler"])
        state = {k: ckpt[k] for k in state}
        if info.is_main:
            print(f"resumed from {last} at epoch {state['epoch']}", flush=True)
    model = distributed.wrap(model, info)
    use_amp = bool(cfg.amp) and info.device.type == "cuda"
    start = time.time() - state["elapsed_s"]

    while state["epoch"] < cfg.epochs and state["bad_epochs"] < cfg.patience:
        epoch = state["epoch"]
        torch.manual_seed(cfg.seed * 1000 + epoch * 10 + info.rank)  # dropout
        if cfg.data_mode == "stream":
            n_steps = stream.steps_per_epoch(scfg, cfg.batch_size, cfg.samples_per_epoch)
            source = stream_batch_iter(cfg, scfg, info, scale, epoch, n_steps)
        else:
            batches = batches_for_epoch(cfg, cache, pool, epoch)
            n_steps, source = len(batches), batch_iter(cfg, cache, pool, batches, info, scale, train=True, epoch=epoch)
        bar = tqdm(
            source,
            total=n_steps,
            desc=f"{cfg.model}-{cfg.recipe} epoch {epoch + 1}",
            disable=not (info.is_main and cfg.progress),
            mininterval=10,
            ncols=100,
        )
        t0, seen, loss_sum = time.time(), 0, 0.0
        mix_rng = np.random.default_rng([cfg.seed, epoch, info.rank])
        for inputs, y in bar:
            lam, perm = mixup_draw(cfg.mixup, len(y), mix_rng)
            if perm is not None:
                inputs = (lam * inputs[0] + (1 - lam) * inputs[0][perm.to(inputs[0].device)], *inputs[1:])
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = model(*inputs)
            logits = logits.float() if adjust is None else logits.float() + adjust.to(logits.device)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            if perm is not None:
                mixed = F.cross_entropy(logits, y[perm.to(y.device)], label_smoothing=cfg.label_smoothing)
                loss = lam * loss + (1 - lam) * mixed
            if teachers:
                loss = (1 - cfg.distill) * loss + cfg.distill * distillation_loss(logits, inputs, teachers)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            opt.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            bar.set_postfix(loss=f"{loss_sum / max(seen, 1):.3f}", refresh=False)
        metrics = {name: evaluate(cfg, model, cache, p, info, scale) for name, p in valid.items()}
        val_loss = metrics["drawings"]["loss"]
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(val_loss)
        elif sched is not None:
            sched.step()
        s = score(metrics["drawings"])
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.time() - t0,
            "score": s,
            **{f"{k}_{m}": v for k, d in metrics.items() for m, v in d.items()},
        }
        state["history"].append(record)
        state["epoch"] = epoch + 1
        improved = s > state["best_score"]
        state["best_score"] = max(s, state["best_score"])
        state["bad_epochs"] = 0 if improved else state["bad_epochs"] + 1
        state["elapsed_s"] = time.time() - start
        if info.is_main:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}), flush=True)
            if improved:
                save_checkpoint(out / "best.pt", model, opt, sched, state, cfg, data)
            save_checkpoint(last, model, opt, sched, state, cfg, data)
            (out / "history.json").write_text(json.dumps(state["history"], indent=1))
        if cfg.max_minutes and state["elapsed_s"] > cfg.max_minutes * 60:
            if info.is_main:
                print(f"time budget of {cfg.max_minutes} min reached after epoch {epoch + 1}", flush=True)
            break
    best = max(state["history"], key=lambda r: r["score"]) if state["history"] else {}
    if info.is_main:
        summary = {"best": best, "epochs": state["epoch"], "wall_s": state["elapsed_s"], "config": asdict(cfg)}
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    distributed.cleanup()
    return best


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """argparse built from TrainConfig: one flag per field, its comment as the help text."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "model_config":
            parser.add_argument(flag, type=json.loads, default={}, help="JSON dict of model config overrides")
            continue
        parser.add_argument(flag, type=type(f.default), default=f.default)
    return TrainConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    best = train(parse_args(argv))
    if best and not math.isnan(best.get("score", 0.0)):
        print(f"best epoch {best['epoch']}: score {best['score']:.4f}", flush=True)
    distributed.finish()


if __name__ == "__main__":
    main()
