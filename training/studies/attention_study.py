"""Does attention over the encoder's states help the shipped generator? Issue #4, decided by measurement.

    python -m training.studies.attention_study                                          # ~35 min on 2 CPU cores
    python -m training.studies.attention_study --steps 20 --eval-every 10 --completions 1 --scratch 2 \\
        --out runs/attention_probe --json runs/attention_probe.json               # step-rate probe, ~3 min
    python -m training.studies.attention_study --measure-only                           # re-measure arms already tuned

Two arms start from a copy of checkpoints/generator_shipped/last.pt (the original is only read) and are fine-tuned
for the same number of steps with the same seed, batches (the shipped recipe's epochs after its last, augmentation
included), class-dropout and z noise, learning rate (the checkpoint's last, held constant) and Adam moments (the
checkpoint's, for the weights it has; fresh ones for the new attention weights):

    A  no attention: the shipped architecture trained a little longer (the control)
    B  attention on (`generator_model.Attention`), its read-out zero-initialised: at step 0, B computes what A does

Each arm is its own process with one torch thread; the two run in parallel. Measured:

- held-out losses every --eval-every steps on the VALID split, teacher-forced, the same batches and z noise for both:
    full      the training terms (offsets, pen, KL), as `train_generator.evaluate`. Caveat: B attends over the very
              drawing it reconstructs (the encoder's state at row s has read row s), so its `full` loss can fall by
              copying, which neither drawing from scratch nor finishing a drawing can exploit.
    continue  the first half of each drawing's strokes encoded (z = mu; B attends over that half only), the whole
              drawing teacher-forced, the "unknown" class; offsets and pen losses in nats a row over the rows after
              the cut (pen: up to the end-of-drawing row): what "finish my drawing" asks of the model.
- finish my drawing: TEST drawings of the 22 rich classes (--completions a class, >= 2 strokes), cut after half of
  their strokes, prepared as the app prepares them (`from_canvas`), encoded (z = mu), continued by `sketchlab.sampler`
  driving the torch decoder at T = --temperature, half + continuation classified by the shipped fused classifier:
  top-1 agreement with the true class, without a word ("unknown" class) and with the true word.
- from scratch: --scratch samples a class at T = --temperature, z ~ N(0, I). There is no drawing to attend to, so B's
  context is zero (`Decoder.forward(memory=None)`): B then computes A's formula with its own fine-tuned weights.
- the shipped model itself (step 0 of both arms) on the same samples, as a reference for sampling noise.

Writes --json (every number; runs/ is not in git) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sketchlab.data import default_data_dir, rich_words
from sketchlab.errors import DrawingError
from sketchlab.generate import DEFAULT_MAX_LEN, _points, _to_strokes, draw_latents
from sketchlab.prepare import from_canvas
from sketchlab.sampler import StepFn, sample_rows, zero_state
from sketchlab.split import Split
from sketchlab.strokes import from_stroke3
from training.evaluate_generator import _top_ranks
from training.generator_data import batch_stroke5, iter_epoch, load_split
from training.generator_model import GeneratorConfig, SketchRNN, mixture_log_prob, split_params
from training.train_generator import TrainConfig, compute_loss, evaluate, get_lr

SHIPPED = Path("checkpoints/generator_shipped/last.pt")
ARMS = {"A": False, "B": True}  # arm -> attention
EVAL_SEED = 0  # torch seed of the z noise in held-out losses: the same draws for both arms at every evaluation
EVAL_BATCH = 100  # drawings a batch in the continuation loss
TIMED_STEPS = 200  # decoder steps timed per arm (batch 1, a 50-row memory)


# ---------------------------------------------------------------------------------------------------------------
# The two arms


def arm_model(ckpt: dict, attention: bool, seed: int) -> SketchRNN:
    """The shipped weights in a model with or without attention; the attention's new weights keep their init."""
    torch.manual_seed(seed)  # W_a's initial values (W_c is zeros)
    model = SketchRNN(GeneratorConfig(**{**ckpt["model_config"], "attention": attention}))
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    new = [n for n, _ in model.named_parameters() if n.startswith("decoder.attention.")]
    if unexpected or sorted(missing) != sorted(new):
        raise ValueError(f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}")
    return model


def arm_optimizer(ckpt: dict, model: SketchRNN, cfg: TrainConfig, lr: float) -> torch.optim.AdamW:
    """AdamW carrying the checkpoint's moments for the weights it has (new weights start with fresh moments)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    saved = ckpt["optimizer"]
    ids = saved["param_groups"][0]["params"]
    names = list(ckpt["model"])  # state_dict order is parameter order: the model has no buffers
    if len(ids) != len(names):
        raise ValueError(f"{len(ids)} optimiser entries for {len(names)} weights")
    params = dict(model.named_parameters())
    for i, name in zip(ids, names, strict=True):
        optimizer.state[params[name]] = {k: v.clone() for k, v in saved["state"][i].items()}
    return optimizer


def continuation_batches(data, scale: float, max_len: int) -> list[tuple[torch.Tensor, ...]]:
    """(stroke5 (B, T + 1, 5), lengths (B,), cut (B,)) of the drawings with >= 2 strokes, sorted by length; cut =
    rows in the first len(strokes) // 2 strokes (the rows the encoder sees)."""
    kept = []
    for s3 in data.stroke3:
        lifts = np.flatnonzero(s3[:max_len, 2] > 0.5)  # every stroke ends with a pen lift
        if len(lifts) >= 2 and lifts[len(lifts) // 2 - 1] + 1 < min(len(s3), max_len):
            kept.append((s3, int(lifts[len(lifts) // 2 - 1] + 1)))
    kept.sort(key=lambda x: len(x[0]))
    out = []
    for i in range(0, len(kept), EVAL_BATCH):
        chunk = kept[i : i + EVAL_BATCH]
        s5, lens = batch_stroke5([s for s, _ in chunk], scale, max_len, None)
        out.append((torch.from_numpy(s5), torch.from_numpy(lens), torch.tensor([c for _, c in chunk])))
    return out


@torch.no_grad()
def continuation_loss(model: SketchRNN, batches) -> dict[str, float]:
    """Offsets and pen losses (nats a row) on the rows after the cut, the half before it encoded (z = mu)."""
    model.eval()
    off_sum = pen_sum = off_rows = pen_rows = 0.0
    for s5, lens, cut in batches:
        labels = torch.full_like(lens, model.cfg.unknown_class)
        e = model.decoder.class_embedding(labels)
        mu, _, *memory = model.encoder(s5[:, 1:], e, cut, return_memory=model.cfg.attention)  # only the half
        y, _ = model.decoder(s5[:, :-1], mu, labels, memory=memory[0] if memory else None)  # (B, T, 6M + 3)
        p = split_params(y, model.cfg.n_mixtures)
        target = s5[:, 1:]  # (B, T, 5)
        t = torch.arange(target.shape[1])[None, :]  # (1, T)
        off_mask = (t >= cut[:, None]) & (t < lens[:, None])  # (B, T) the points after the cut
        pen_mask = (t >= cut[:, None]) & (t <= lens[:, None])  # ... and the end-of-drawing row
        pen_ce = F.cross_entropy(p.pen_logits.transpose(1, 2), target[..., 2:].argmax(-1), reduction="none")
        off_sum -= float((mixture_log_prob(p, target[..., :2]) * off_mask).sum())
        pen_sum += float((pen_ce * pen_mask).sum())
        off_rows += float(off_mask.sum())
        pen_rows += float(pen_mask.sum())
    model.train()
    return {"offsets": off_sum / off_rows, "pen": pen_sum / pen_rows}


def held_out(model, cfg: TrainConfig, valid, cont_batches, scale: float) -> dict:
    """The `full` and `continue` held-out losses (see the module docstring), with fixed z noise."""
    with torch.random.fork_rng():  # the training noise stream is left as it was
        torch.manual_seed(EVAL_SEED)
        return {
            "full": evaluate(model, cfg, valid, scale, torch.device("cpu"), None),
            "continue": continuation_loss(model, cont_batches),
        }


def fine_tune(arm: str, ckpt: dict, root: Path, steps: int, eval_every: int, log_path: Path) -> tuple[SketchRNN, dict]:
    """Fine-tune one arm from the checkpoint; held-out losses every eval_every steps (and at step 0)."""
    cfg = dataclasses.replace(TrainConfig(**ckpt["config"]), threads=1, device="cpu")
    scale, lr = float(ckpt["scale_factor"]), get_lr(cfg, ckpt["step"])  # the shipped run's last learning rate
    train = load_split(root, ckpt["classes"], Split.TRAIN)
    valid = load_split(root, ckpt["classes"], Split.VALID)
    cont = continuation_batches(valid, scale, cfg.max_len)
    model = arm_model(ckpt, ARMS[arm], cfg.seed)
    optimizer = arm_optimizer(ckpt, model, cfg, lr)
    torch.manual_seed(cfg.seed)  # class dropout and z noise: the same stream in both arms from here on
    model.train()
    log = {"arm": arm, "attention": ARMS[arm], "lr": lr, "batch_size": cfg.batch_size, "seed": cfg.seed, "evals": []}

    def record(step: int, train_seconds: float) -> None:
        log["evals"].append({"step": step, "train_seconds": train_seconds, **held_out(model, cfg, valid, cont, scale)})
        log_path.write_text(json.dumps(log, indent=1) + "\n")
        print(f"[{arm}] step {step} {log['evals'][-1]}", flush=True)

    record(0, 0.0)
    step, epoch, train_seconds = 0, int(ckpt["epoch"]), 0.0
    while step < steps:
        rng = np.random.default_rng([cfg.seed, epoch, 0])  # the epoch's batches, as train_generator draws them
        for s5, lens, labels in iter_epoch(train, cfg.batch_size, scale, cfg.max_len, rng, cfg.augment):
            t0 = time.perf_counter()
            batch = tuple(torch.from_numpy(a) for a in (s5, lens, labels))
            loss, _ = compute_loss(model, cfg, batch, ckpt["step"] + step, epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            train_seconds += time.perf_counter() - t0
            step += 1
            if step % eval_every == 0 or step == steps:
                record(step, train_seconds)
            if step >= steps:
                break
        epoch += 1
    log.update(steps=steps, train_minutes=train_seconds / 60, steps_per_minute=60 * steps / train_seconds)
    return model.eval(), log


# ---------------------------------------------------------------------------------------------------------------
# What users would get: sampling with the torch model through sketchlab.sampler


def torch_step(model: SketchRNN, memory=None) -> StepFn:
    """The decoder step `sketchlab.sampler` drives (as the ONNX DecoderStep), attending over `memory` when given."""

    @torch.no_grad()
    def step(prev, z, label, h, c) -> dict[str, np.ndarray]:
        state = (torch.tensor(h)[None], torch.tensor(c)[None])  # (1, B, Hd) each
        y, (h2, c2) = model.decoder(torch.tensor(prev)[:, None], torch.tensor(z), torch.tensor(label), state, memory)
        p = split_params(y[:, 0:1], model.cfg.n_mixtures)  # T = 1
        out = {"log_pi": p.log_pi, "mu": p.mu, "log_sigma": p.log_sigma, "rho": p.rho, "pen_logits": p.pen_logits}
        return {k: v[:, 0].numpy() for k, v in out.items()} | {"h_out": h2[0].numpy(), "c_out": c2[0].numpy()}

    return step


def finish(model: SketchRNN, scale: float, half: list, label: int, temperature: float, seed: int) -> list:
    """The half drawing (canvas strokes) continued as `Generator.complete` does, returned whole (half + new) in the
    prepared 0..255 frame (the classifier normalises the frame away)."""
    prepared = from_canvas(half)
    user5 = prepared.stroke5(scale)  # (N + 1, 5), start token first
    labels = np.array([label], dtype=np.int64)
    with torch.no_grad():
        e = model.decoder.class_embedding(torch.from_numpy(labels))
        mu, _, *memory = model.encoder(torch.from_numpy(user5[None, 1:]), e, None, return_memory=model.cfg.attention)
    step = torch_step(model, memory[0] if memory else None)
    rng = np.random.default_rng(seed)
    state = zero_state(1, model.cfg.dec_hidden)
    sampled = sample_rows(step, mu.numpy(), labels, state, temperature, rng, DEFAULT_MAX_LEN, prefix=user5[:, None])
    start = prepared.stroke3[:, :2].astype(np.float64).sum(axis=0)  # the half's last point
    new = _to_strokes(list(_points((row[0] for row, _ in sampled), scale, start)), t0=0.0)
    return [[[float(x), float(y), 0.0] for x, y in s] for s in prepared.simplified] + new


def from_scratch(model: SketchRNN, scale: float, label: int, n: int, temperature: float, seed: int) -> list:
    """n drawings of class `label`, z ~ N(0, I), sampled together as `Generator.variations` does."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, model.cfg.z_size)).astype(np.float32)
    return draw_latents(torch_step(model), label, z, model.cfg.dec_hidden, scale, temperature, rng)


def halves_to_finish(root: Path, words: list[str], per_class: int) -> list[tuple[str, list]]:
    """(word, first half of the strokes as canvas strokes) for the first per_class usable TEST drawings a class."""
    out = []
    for word in words:
        kept = 0
        for s3 in load_split(root, [word], Split.TEST).stroke3:
            drawing = from_stroke3(s3)
            half = [[[float(x), float(y), 0.0] for x, y in s] for s in drawing[: len(drawing) // 2]]
            try:
                if len(drawing) < 2 or len(from_canvas(half).stroke3) < 2:
                    continue
            except DrawingError:
                continue  # a half that is a single point
            out.append((word, half))
            kept += 1
            if kept >= per_class:
                break
    return out


@torch.no_grad()
def attention_use(model: SketchRNN, batches) -> dict[str, float]:
    """How much an attention model uses its attention, on VALID drawings teacher-forced whole (memory: the whole
    drawing, as in training) and with only the first half encoded (as in "finish my drawing"): the read-out's size
    next to the head's, and, whole, the mean weight on the encoder row of the point being predicted (the encoder has
    read it: copying) next to the uniform 1 / length."""
    seen = {}
    hook = model.decoder.attention.register_forward_hook(lambda m, inputs, out: seen.update(inputs=inputs))
    sums = dict.fromkeys(["delta_whole", "delta_half", "head", "on_target", "uniform", "rows"], 0.0)
    for s5, lens, cut in batches:
        labels = torch.full_like(lens, model.cfg.unknown_class)
        e = model.decoder.class_embedding(labels)
        rows = (torch.arange(s5.shape[1] - 1)[None, :] < lens[:, None]).float()[..., None]  # (B, T, 1) the drawing
        for key, length in (("delta_whole", lens), ("delta_half", cut)):
            mu, _, memory = model.encoder(s5[:, 1:], e, length, return_memory=True)
            y0, _ = model.decoder(s5[:, :-1], mu, labels)
            y, _ = model.decoder(s5[:, :-1], mu, labels, memory=memory)
            sums[key] += float(((y - y0).abs() * rows).sum())
            if key == "delta_whole":
                w = model.decoder.attention.weights(*seen["inputs"])  # (B, T, S), S = T
                sums["head"] += float((y0.abs() * rows).sum())
                sums["on_target"] += float((torch.diagonal(w, dim1=1, dim2=2) * rows[..., 0]).sum())
                sums["uniform"] += float((rows[..., 0] / lens[:, None]).sum())
                sums["rows"] += float(rows.sum())
    hook.remove()
    return {
        "readout_vs_head_whole": sums["delta_whole"] / sums["head"],  # mean |W_c context| / mean |head(out)|
        "readout_vs_head_half": sums["delta_half"] / sums["head"],
        "weight_on_target_row": sums["on_target"] / sums["rows"],
        "uniform_weight": sums["uniform"] / sums["rows"],
        "read_out_norm": float(model.decoder.attention.read_out.weight.norm()),
        "head_norm": float(model.decoder.head.weight.norm()),
    }


def decoder_step_ms(model: SketchRNN) -> float:
    """Median wall time of one torch decoder step, batch 1, attending over a 50-row drawing when B."""
    g = torch.Generator().manual_seed(0)
    memory = None
    if model.cfg.attention:
        with torch.no_grad():
            e = model.decoder.class_embedding(torch.tensor([0]))
            _, _, memory = model.encoder(torch.randn(1, 50, 5, generator=g), e, None, return_memory=True)
    step, h = torch_step(model, memory), np.zeros((1, model.cfg.dec_hidden), np.float32)
    args = dict(prev=np.zeros((1, 5), np.float32), z=np.zeros((1, model.cfg.z_size), np.float32), h=h, c=h)
    times = []
    for _ in range(TIMED_STEPS):
        t0 = time.perf_counter()
        step(label=np.array([0]), **args)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def measure(model: SketchRNN, ckpt: dict, root: Path, args) -> dict:
    """Completion and from-scratch top-1 (per sample, for paired comparisons), and the decoder step's speed."""
    from sketchlab.classify import Classifier  # the shipped fused classifier

    classifier = Classifier.load(threads=1)
    scale, index = float(ckpt["scale_factor"]), {w: i for i, w in enumerate(ckpt["classes"])}
    words = rich_words(root)
    halves = halves_to_finish(root, words, args.completions)
    result = {"half_alone": [_top_ranks(classifier, h, w) == 0 for w, h in halves], "no_word": [], "with_word": []}
    for i, (word, half) in enumerate(halves):
        for key, label in (("no_word", model.cfg.unknown_class), ("with_word", index[word])):
            drawing = finish(model, scale, half, label, args.temperature, args.seed + i)
            result[key].append(_top_ranks(classifier, drawing, word) == 0)
    scratch = []
    for i, word in enumerate(words):
        for d in from_scratch(model, scale, index[word], args.scratch, args.temperature, args.seed + 1000 * i):
            scratch.append(_top_ranks(classifier, d, word))
    result["scratch_top1"] = [r == 0 for r in scratch]
    result["scratch_top3"] = [r is not None and r < 3 for r in scratch]
    result["decoder_step_ms"] = decoder_step_ms(model)
    if model.cfg.attention:
        valid = load_split(root, ckpt["classes"], Split.VALID)
        result["attention_use"] = attention_use(model, continuation_batches(valid, scale, model.cfg.max_len))
    return result


# ---------------------------------------------------------------------------------------------------------------
# Entry points: one arm (a child process), or the whole study


def run_arm(args, root: Path) -> None:
    torch.set_num_threads(1)
    ckpt = torch.load(args.out / "shipped_copy.pt", map_location="cpu", weights_only=True)
    weights, log_path = args.out / f"{args.arm}.pt", args.out / f"{args.arm}.json"
    if args.measure_only:
        log = json.loads(log_path.read_text())
        model = arm_model(ckpt, ARMS[args.arm], 0).eval()
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    else:
        model, log = fine_tune(args.arm, ckpt, root, args.steps, args.eval_every, log_path)
        torch.save(model.state_dict(), weights)
    t0 = time.time()
    log["measure"] = measure(model, ckpt, root, args)
    log["measure_minutes"] = (time.time() - t0) / 60
    log_path.write_text(json.dumps(log, indent=1) + "\n")


def _sign_test(a: list[bool], b: list[bool]) -> dict:
    """Paired samples (same drawing, same seed): how often only A or only B is right; exact two-sided sign test."""
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    n, k = only_a + only_b, min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {"only_A": only_a, "only_B": only_b, "p": p}


def summarise(arms: dict, reference: dict) -> dict:
    def rate(xs: list[bool]) -> float:
        return sum(xs) / max(1, len(xs))

    keys = ("no_word", "with_word", "scratch_top1", "scratch_top3")
    rates = {
        name: {k: rate(m[k]) for k in keys} | {"n_completions": len(m["no_word"]), "n_scratch": len(m["scratch_top1"])}
        for name, m in [("shipped", reference)] + [(a, arms[a]["measure"]) for a in ARMS]
    }
    rates["half_alone"] = rate(reference["half_alone"])
    paired = {k: _sign_test(arms["A"]["measure"][k], arms["B"]["measure"][k]) for k in keys[:3]}
    return {"top1": rates, "paired_A_vs_B": paired}


def print_table(result: dict) -> None:
    a, b = result["arms"]["A"], result["arms"]["B"]
    print(f"\nheld-out VALID losses (continue: nats a row after the half, unknown class); lr {a['lr']:.3g}")
    print(
        f"{'step':>5} | {'A off':>6} {'pen':>6} {'KL':>6} {'cont':>6} {'cpen':>6} | "
        f"{'B off':>6} {'pen':>6} {'KL':>6} {'cont':>6} {'cpen':>6}"
    )
    for ea, eb in zip(a["evals"], b["evals"], strict=True):
        cells = [
            f"{e['full']['offsets']:6.3f} {e['full']['pen']:6.3f} {e['full']['kl']:6.3f} "
            f"{e['continue']['offsets']:6.3f} {e['continue']['pen']:6.3f}"
            for e in (ea, eb)
        ]
        print(f"{ea['step']:>5} | {cells[0]} | {cells[1]}")
    top1 = result["summary"]["top1"]
    print(f"\nfused top-1 at T={result['temperature']}  (half drawing alone: {top1['half_alone']:.3f})")
    print(
        f"{'model':>8} {'finish, no word':>16} {'finish, word':>13} {'scratch top-1':>14} {'top-3':>6} {'step ms':>8}"
    )
    for name in ("shipped", "A", "B"):
        r = top1[name]
        ms = (result["reference"] if name == "shipped" else result["arms"][name]["measure"])["decoder_step_ms"]
        print(
            f"{name:>8} {r['no_word']:16.3f} {r['with_word']:13.3f} {r['scratch_top1']:14.3f} "
            f"{r['scratch_top3']:6.3f} {ms:8.2f}"
        )
    print(f"(n: {top1['A']['n_completions']} completions, {top1['A']['n_scratch']} scratch samples an arm)")
    print("paired A vs B:", json.dumps(result["summary"]["paired_A_vs_B"]))
    print(f"step rate (steps a minute, training only): A {a['steps_per_minute']:.1f}, B {b['steps_per_minute']:.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=800, help="fine-tuning steps an arm")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between held-out losses")
    parser.add_argument("--completions", type=int, default=10, help="TEST drawings a class to finish")
    parser.add_argument("--scratch", type=int, default=20, help="drawings a class from scratch")
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (the fine-tune uses the checkpoint's)")
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED, help="copied, never written")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/attention_study"), help="arm weights and logs")
    parser.add_argument("--json", type=Path, default=Path("runs/attention_study.json"))
    parser.add_argument("--measure-only", action="store_true", help="measure arms already fine-tuned under --out")
    parser.add_argument("--arm", choices=sorted(ARMS), help="run one arm in this process (used internally)")
    args = parser.parse_args(argv)
    root = args.data or default_data_dir()
    if root is None:
        raise SystemExit("no data folder: pass --data or set SKETCHLAB_DATA")
    if args.arm:
        run_arm(args, Path(root))
        return

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.measure_only:
        shutil.copy2(args.checkpoint, args.out / "shipped_copy.pt")
    t0 = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    forwarded = list(argv if argv is not None else sys.argv[1:])
    procs = {}
    for arm in ARMS:
        cmd = [sys.executable, "-m", "training.studies.attention_study", *forwarded, "--arm", arm, "--data", str(root)]
        with open(args.out / f"{arm}.log", "w") as log:
            procs[arm] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if any(p.wait() for p in procs.values()):
        raise SystemExit(f"an arm failed; see {args.out}/A.log and B.log")
    arms_minutes = (time.time() - t0) / 60
    ckpt = torch.load(args.out / "shipped_copy.pt", map_location="cpu", weights_only=True)
    reference = measure(arm_model(ckpt, False, 0).eval(), ckpt, Path(root), args)
    arms = {arm: json.loads((args.out / f"{arm}.json").read_text()) for arm in ARMS}
    result = {
        "checkpoint": str(args.checkpoint),
        "checkpoint_step": ckpt["step"],
        "model_config": ckpt["model_config"],
        "steps": args.steps,
        "temperature": args.temperature,
        "sampling_seed": args.seed,
        "arms_wall_minutes": arms_minutes,
        "arms": arms,
        "reference": reference,
        "summary": summarise(arms, reference),
        "command": "python -m training.studies.attention_study " + " ".join(forwarded),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print_table(result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
