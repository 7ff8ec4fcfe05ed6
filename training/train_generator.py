"""Train the class-conditioned sketch-rnn generator (or the MSE baseline) on Quick, Draw! simplified drawings.

    python -m training.train_generator --data ../shared/quickdraw                    # the shipped recipe
    python -m training.train_generator --data ../shared/quickdraw --recipe baseline  # the MSE baseline
    torchrun --nproc-per-node 2 -m training.train_generator --data ../shared/quickdraw   # DDP (gloo on CPU)
    python -m training.export_generator                                              # then export to ONNX

Checkpoints go to `--out` (`last.pt`, rewritten every `--save-every` steps and at the end); a run started again with
the same `--out` resumes from `last.pt` (`--no-resume` starts over). `--max-minutes` bounds the wall time: the run
stops cleanly, saved, when it is reached. Every field of `TrainConfig` is a command-line flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from sketchlab.data import default_data_dir, provenance, read_categories, rich_words
from sketchlab.prepare import PREPROCESSING_VERSION
from sketchlab.split import Split

from . import distributed, stream
from .generator_baseline import BaselineConfig, BaselineSeq2Seq, baseline_loss, teacher_prob
from .generator_data import (
    MAX_LEN,
    MIN_POINTS,
    batch_stroke5,
    iter_epoch,
    load_split,
    shard_data,
    train_scale_factor,
)
from .generator_model import GeneratorConfig, SketchRNN, kl_loss, reconstruction_loss

RECIPES = ("shipped", "baseline")


@dataclass
class TrainConfig:
    data: str = ""  # Quick, Draw! folder in the official layout (default: sketchlab.data.default_data_dir())
    recipe: str = (
        "shipped"  # "shipped" (mixture density sketch-rnn) or "baseline" (MSE seq2seq, see generator_baseline)
    )
    out: str = ""  # checkpoint folder (default: checkpoints/generator_<recipe>)
    words: str = "all"  # "all" (categories.txt), "rich" (>= 440 drawings) or a comma-separated list of words
    limit_per_word: int = 0  # at most this many training drawings a word (0: all); for quick runs and tests
    batch_size: int = 100  # global batch (sketch-rnn: 100); split over ranks. Baseline recipe: 32
    epochs: int = 40  # passes over the training split. Baseline recipe: 10
    max_minutes: float = 0.0  # stop (saved) after this much wall time; 0 = no bound
    lr: float = 1e-3  # Adam learning rate (sketch-rnn: 1e-3)
    lr_decay: float = 0.9999  # per-step multiplicative decay (sketch-rnn: 0.9999)
    min_lr: float = 1e-5  # floor of the decay (sketch-rnn: 1e-5)
    lr_milestones: str = "4800,7000"  # comma-separated steps where the rate is multiplied by lr_gamma ("": none)
    lr_gamma: float = 0.25  # at 4,800 steps the held-out offset loss had flattened (0.50); x0.25 took it to 0.41 in 200
    weight_decay: float = 0.0  # AdamW weight decay; the baseline recipe uses 1e-5
    grad_clip: float = 1.0  # gradient norm clip (sketch-rnn: 1.0)
    kl_weight: float = 1.0  # w_KL (sketch-rnn: 0.5 to 1.0); higher makes samples from the prior closer to real drawings
    kl_min: float = 0.1  # KL floor (eq. 12), nats a dimension free of the KL gradient (sketch-rnn: 0.2; lower: the prior fits better)
    kl_eta_min: float = 0.01  # annealing start: w_KL is scaled by 1 - (1 - eta_min) R^step (eq. 13)
    kl_decay: float = 0.9995  # R: the KL weight reaches 90% of w_KL after ~4.6k steps
    enc_hidden: int = 192  # encoder LSTM size per direction
    dec_hidden: int = 384  # decoder LSTM size (512 is ~1.5x slower on one CPU core, 1.7 ms vs 1.3 a sample step)
    z_size: int = 128  # latent size
    class_embed: int = 64  # class embedding size
    n_mixtures: int = 20  # Gaussians in the offset mixture
    class_dropout: float = 0.1  # chance a class is replaced by "unknown" (for completions without a word)
    max_len: int = MAX_LEN  # longest drawing in points; longer ones are cut
    attention: bool = False  # decoder attends over the encoder's states (training/studies/); no ONNX export
    augment: bool = True  # sketch-rnn stroke augmentation (point dropping) plus rotation and scaling
    save_every: int = 200  # steps between checkpoints
    seed: int = 1234  # seeds torch and the numpy Generator of the batches
    threads: int = 1  # torch CPU threads (the machine is shared: keep 1 unless it is yours)
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    resume: bool = True  # continue from <out>/last.pt when it exists
    init: str = ""  # start from this checkpoint's weights and scale factor (new optimiser, schedule from step 0), e.g.
    # the shipped generator rebuilt by training.generator_from_onnx; ignored when resuming from <out>/last.pt
    data_mode: str = "cache"  # "cache" (the split's stroke-3 held in memory) | "stream" (training.stream, per rank)
    shuffle_buffer: int = 10_000  # stream mode: drawings held per rank for shuffling
    steps_per_epoch: int = 0  # stream mode: optimiser steps an epoch (0: one pass, estimated from file sizes)
    loader_workers: int = 0  # stream mode: DataLoader processes preprocessing a rank's drawings (0: the rank itself)

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {RECIPES}, got {self.recipe!r}")
        if not self.out:
            self.out = f"checkpoints/generator_{self.recipe}"


# The baseline recipe as first described: batch 32, 10 epochs, AdamW weight decay 1e-5, a constant learning rate.
BASELINE_DEFAULTS = {"batch_size": 32, "epochs": 10, "weight_decay": 1e-5, "lr_decay": 1.0, "lr_milestones": ""}


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """argparse built from TrainConfig: one flag per field; the baseline recipe changes the defaults it fixes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(flag, type=kind, default=None)
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    defaults = BASELINE_DEFAULTS if given.get("recipe") == "baseline" else {}
    return TrainConfig(**{**defaults, **given})


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def get_lr(cfg: TrainConfig, step: int) -> float:
    """sketch-rnn's per-step exponential decay, times lr_gamma at each milestone passed, floored at min_lr."""
    drops = sum(step >= int(m) for m in cfg.lr_milestones.split(",") if m.strip())
    return max(cfg.min_lr, cfg.lr * cfg.lr_decay**step * cfg.lr_gamma**drops)


def kl_eta(cfg: TrainConfig, step: int) -> float:
    """KL annealing of sketch-rnn (eq. 13): 1 - (1 - eta_min) R^step, rising from eta_min towards 1."""
    return 1 - (1 - cfg.kl_eta_min) * cfg.kl_decay**step


def select_words(cfg: TrainConfig, root: Path) -> list[str]:
    if cfg.words == "all":
        return read_categories(root)
    if cfg.words == "rich":
        return rich_words(root)
    return [w.strip() for w in cfg.words.split(",") if w.strip()]


def build_model(cfg: TrainConfig, n_classes: int) -> tuple[torch.nn.Module, dict]:
    """The model of the recipe and its config as a dict (stored in checkpoints and manifests)."""
    if cfg.recipe == "baseline":
        mcfg = BaselineConfig(n_classes=n_classes, max_len=cfg.max_len)
        return BaselineSeq2Seq(mcfg), asdict(mcfg)
    mcfg = GeneratorConfig(
        n_classes=n_classes,
        enc_hidden=cfg.enc_hidden,
        dec_hidden=cfg.dec_hidden,
        z_size=cfg.z_size,
        class_embed=cfg.class_embed,
        n_mixtures=cfg.n_mixtures,
        class_dropout=cfg.class_dropout,
        max_len=cfg.max_len,
        attention=cfg.attention,
    )
    return SketchRNN(mcfg), asdict(mcfg)


def stored_model_config(ckpt: dict) -> dict:
    """A checkpoint's model config, with the fields it predates at their defaults (`attention`: off)."""
    kind = BaselineConfig if ckpt["config"]["recipe"] == "baseline" else GeneratorConfig
    return asdict(kind(**ckpt["model_config"]))


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """A trained model (eval mode) and its checkpoint dict from a checkpoint file (loaded with weights_only)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt["config"]["recipe"] == "baseline":
        model = BaselineSeq2Seq(BaselineConfig(**ckpt["model_config"]))
    else:
        model = SketchRNN(GeneratorConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def compute_loss(model, cfg: TrainConfig, batch, step: int, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
    """The training objective of the recipe for one batch and the numbers worth logging."""
    s5, lengths, labels = batch
    if cfg.recipe == "baseline":
        pred = model(s5, lengths, labels, teacher_prob(epoch))
        loss = baseline_loss(pred.float(), s5[:, 1:], lengths)
        return loss, {"mse": loss.item()}
    params, mu, sigma_hat = model(s5, lengths, labels)
    l_s, l_p = reconstruction_loss(params, s5[:, 1:], lengths)
    kl, kl_floored = kl_loss(mu, sigma_hat, cfg.kl_min)
    loss = l_s + l_p + cfg.kl_weight * kl_eta(cfg, step) * kl_floored
    return loss, {"offsets": l_s.item(), "pen": l_p.item(), "kl": kl.item()}


@torch.no_grad()
def evaluate(model, cfg: TrainConfig, data, scale: float, device, info) -> dict[str, float]:
    """Mean loss terms on held-out drawings (no augmentation, no class dropout, KL weight 1 for comparability)."""
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    rng = np.random.default_rng(0)
    batch_size = max(1, min(100, len(data)))
    for s5, lens, labels in iter_epoch(data, batch_size, scale, cfg.max_len, rng, augment=False):
        batch = (
            torch.from_numpy(s5).to(device),
            torch.from_numpy(lens).to(device),
            torch.from_numpy(labels).to(device),
        )
        _, terms = compute_loss(distributed.unwrap(model), cfg, batch, step=10**9, epoch=cfg.epochs)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
    model.train()
    totals = distributed.all_reduce_sum(torch.tensor([*sums.values(), float(n)], dtype=torch.float64))
    return {k: float(v / totals[-1]) for k, v in zip(sums, totals[:-1].tolist(), strict=True)}


STREAM_VALID_PER_WORD = 100  # stream mode: held-out drawings a word kept in memory for the validation loss


def stream_config(cfg: TrainConfig, root: Path, classes: list[str], info) -> stream.StreamConfig:
    """This rank's stream of simplified training drawings (stroke-3 only, no rasters)."""
    return stream.StreamConfig(
        root=str(root),
        classes=tuple(classes),
        rasters=False,
        min_points=MIN_POINTS,
        shuffle_buffer=cfg.shuffle_buffer,
        seed=cfg.seed,
        rank=info.rank,
        world_size=info.world_size,
    )


def stream_arrays(cfg: TrainConfig, scale: float, examples: list, rng: np.random.Generator):
    """Streamed examples -> (stroke5 (B, T + 1, 5), lengths (B,), labels (B,)), as `iter_epoch` yields them."""
    s5, lens = batch_stroke5([e.stroke3 for e in examples], scale, cfg.max_len, rng if cfg.augment else None)
    return s5, lens, np.array([e.label for e in examples], np.int64)


def stream_epoch(cfg: TrainConfig, scfg: stream.StreamConfig, batch: int, scale: float, epoch: int, skip: int, n):
    """One epoch's batches from the stream; the first `skip` are read and dropped (a resumed epoch continues)."""
    transform = functools.partial(stream_arrays, cfg, scale)
    return itertools.islice(stream.loader(scfg, epoch, batch, n, transform, cfg.loader_workers), skip, None)


def save_checkpoint(path: Path, model, optimizer, cfg: TrainConfig, mcfg: dict, meta: dict) -> None:
    """Everything to resume or export: weights, optimiser, both configs, classes, scale factor, progress."""
    state = {
        "model": distributed.unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": asdict(cfg),
        "model_config": mcfg,
        **meta,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a run killed while saving leaves the previous checkpoint intact


def train(cfg: TrainConfig) -> Path:
    info = distributed.setup(cfg.device)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + info.rank)
    root = Path(cfg.data) if cfg.data else default_data_dir()
    if root is None:
        raise SystemExit("no data folder: pass --data or set SKETCHLAB_DATA")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "last.pt"

    classes = select_words(cfg, root)
    limit = cfg.limit_per_word or None
    local_bs = distributed.local_batch(cfg.batch_size, info)
    if cfg.data_mode == "stream":  # training drawings streamed per rank; a bounded validation set in memory
        scfg = stream_config(cfg, root, classes, info)
        scale = stream.estimate_scale(scfg)  # from a fixed sample of the TRAIN split, identical on every rank
        n_valid = max(1, limit // 8) if limit else STREAM_VALID_PER_WORD
        valid = shard_data(load_split(root, classes, Split.VALID, n_valid), info.rank, info.world_size)
        n_train = int(stream.estimated_examples(scfg))
        n_batches = stream.steps_per_epoch(scfg, cfg.batch_size, cfg.steps_per_epoch * cfg.batch_size)
    elif cfg.data_mode == "cache":
        train_all = load_split(root, classes, Split.TRAIN, limit)
        scale = train_scale_factor(train_all)  # from the whole TRAIN split, identical on every rank
        train_data = shard_data(train_all, info.rank, info.world_size)
        valid = shard_data(
            load_split(root, classes, Split.VALID, limit and max(1, limit // 8)), info.rank, info.world_size
        )
        n_train = len(train_all)
        n_batches = torch.tensor(len(train_data) // local_bs)
        if dist.is_initialized():  # DDP needs the same number of steps on every rank
            dist.all_reduce(n_batches, op=dist.ReduceOp.MIN)
        n_batches = int(n_batches)
    else:
        raise SystemExit(f"--data-mode must be 'cache' or 'stream', got {cfg.data_mode!r}")
    if n_batches == 0:
        raise SystemExit(f"{n_train // info.world_size} training drawings a rank is less than one batch of {local_bs}")

    model, mcfg = build_model(cfg, len(classes))
    model.to(info.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, epoch, batch_in_epoch, history, prior_minutes = 0, 0, 0, [], 0.0
    init_from = None  # what the weights started from, when not from scratch

    def load_weights(path, fix: str) -> dict:
        ckpt = torch.load(path, map_location=info.device, weights_only=True)
        if ckpt["classes"] != classes or stored_model_config(ckpt) != mcfg:
            raise SystemExit(f"{path} has other classes or another model config than this run's flags; {fix}")
        model.load_state_dict(ckpt["model"])
        return ckpt

    if cfg.resume and ckpt_path.exists():
        ckpt = load_weights(ckpt_path, "use --no-resume or --out")
        optimizer.load_state_dict(ckpt["optimizer"])
        step, epoch, batch_in_epoch, history = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["history"]
        init_from = ckpt.get("init_from")
        prior_minutes = ckpt.get("train_minutes", history[-1]["minutes"] if history else 0.0)  # to the last save
        scale = ckpt["scale_factor"]  # keep the normalisation the weights were trained with
    elif cfg.init:
        ckpt = load_weights(cfg.init, "give the flags of the model it holds")
        scale = ckpt["scale_factor"]  # the weights' normalisation, not this data's
        init_from = {"checkpoint": cfg.init, "step": ckpt.get("step"), "data": ckpt.get("data")}
    model = distributed.wrap(model, info)
    model.train()
    use_amp = info.device.type == "cuda"

    def meta(elapsed_now: float) -> dict:
        return {
            "classes": classes,
            "scale_factor": scale,
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "history": history,
            "train_minutes": elapsed_now / 60,
            "git_commit": git_commit(),
            "init_from": init_from,
            "preprocessing_version": PREPROCESSING_VERSION,
            "data": {
                **provenance(root),
                "words": cfg.words,
                "n_classes": len(classes),
                "train": n_train,
                "limit_per_word": cfg.limit_per_word,
                "split": "sketchlab.split TRAIN (scale factor too); VALID for loss",
            },
        }

    start = time.time()
    stop = False
    if info.is_main:
        print(
            f"{cfg.recipe}: {len(classes)} classes, {n_train} train drawings, scale {scale:.3f}, "
            f"{sum(p.numel() for p in model.parameters()):,} parameters, {n_batches} steps an epoch",
            flush=True,
        )
    while epoch < cfg.epochs and not stop:
        rng = np.random.default_rng([cfg.seed, epoch, info.rank])  # the epoch's batches, reproducible on resume
        if cfg.data_mode == "stream":
            batches = stream_epoch(cfg, scfg, local_bs, scale, epoch, batch_in_epoch, n_batches)
        else:
            batches = iter_epoch(train_data, local_bs, scale, cfg.max_len, rng, cfg.augment, batch_in_epoch, n_batches)
        bar = tqdm(
            batches, total=n_batches - batch_in_epoch, desc=f"epoch {epoch}", disable=not info.is_main, mininterval=30
        )
        for s5, lens, labels in bar:
            for group in optimizer.param_groups:
                group["lr"] = get_lr(cfg, step)
            batch = tuple(torch.from_numpy(a).to(info.device) for a in (s5, lens, labels))
            with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, terms = compute_loss(model, cfg, batch, step, epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            batch_in_epoch += 1
            bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()}, refresh=False)
            elapsed = time.time() - start
            stop = bool(cfg.max_minutes) and prior_minutes + elapsed / 60 >= cfg.max_minutes
            if info.is_main and (step % cfg.save_every == 0 or stop):
                save_checkpoint(ckpt_path, model, optimizer, cfg, mcfg, meta(prior_minutes * 60 + elapsed))
            if stop:
                break
        if not stop:
            epoch += 1
            batch_in_epoch = 0
        held_out = evaluate(model, cfg, valid, scale, info.device, info)
        history.append(
            {"epoch": epoch, "step": step, "minutes": prior_minutes + (time.time() - start) / 60, "valid": held_out}
        )
        if info.is_main:
            print(f"epoch {epoch} step {step} valid {held_out} ({history[-1]['minutes']:.1f} min)", flush=True)
            save_checkpoint(ckpt_path, model, optimizer, cfg, mcfg, meta(history[-1]["minutes"] * 60))
    distributed.cleanup()
    return ckpt_path


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    path = train(cfg)
    print(f"saved {path}")
    distributed.finish()


if __name__ == "__main__":
    main()
