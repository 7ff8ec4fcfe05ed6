"""Measure the generator: recognisability, memorisation, completion, speed, reproducibility, and sample grids.

    python -m training.evaluate_generator --samples 100 --temperature 0.5 --json runs/generator_eval.json
    python -m training.evaluate_generator --recipe baseline --checkpoint checkpoints/generator_baseline/last.pt \\
        --samples 100 --temperature 0.5 --json runs/generator_baseline_eval.json

- recognisability: N drawings a class (the classes with >= 440 drawings unless --words), each classified by the
  SHIPPED fused classifier (`sketchlab.classify.Classifier`); top-1 and top-3 agreement with the requested class,
  per class and overall. `--quality-samples K` also samples K drawings of every other class and writes the per-class
  table the app shows (models/generator_quality.json).
- diversity: mean pairwise distance (same raster metric as below) between the samples of a class, next to the same
  for as many held-out real drawings of the class: guidance and low temperatures trade variety for typicality.
- memorisation: each sample's distance to its nearest TRAINING drawing of the class (mean absolute difference of the
  28x28 rasters, 0..1), next to the same distance for held-out real drawings (two different drawings); a copy
  would sit near 0.
- completion: held-out (TEST split) drawings cut after half of their strokes; the fused classifier's top-1 on the
  half drawing alone vs on the half plus the generator's continuation: without a word (the "unknown" class), with
  the classifier's top guess for the half drawing as the word (what the app does), and with the true word.
- guidance: the classifier-free guidance scale of the shipped sampler (`--guidance`, default
  sketchlab.generate.DEFAULT_GUIDANCE; 0 = plain conditional sampling). It is used for every drawing with a class.
- speed: median wall time of a whole drawing and of the first streamed point, batch 1, on this machine's CPU.
- reproducibility: the same seed twice gives the same drawing.
- a grid image of samples per class (models/plots/generator_<recipe>_samples.png by default).

The baseline (a torch checkpoint; it has no ONNX export) is sampled with torch; everything else uses only the
shipped runtime (`sketchlab.generate.Generator`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sketchlab.data import default_data_dir, rich_words
from sketchlab.errors import DrawingError
from sketchlab.generate import DEFAULT_GUIDANCE
from sketchlab.prepare import from_canvas, from_simplified
from sketchlab.runtime import MODELS_DIR
from sketchlab.split import Split
from sketchlab.strokes import from_stroke3

from .evaluate_completion import GUESS, held_out_cases, run_cases, summarise
from .generator_data import load_split

COPY_DISTANCE = 0.01  # raster mean absolute difference below which two drawings count as the same drawing
GRID_COLUMNS = 8  # samples shown a class in the grid image
COMPLETION_PER_CLASS = 30  # held-out drawings a class for the completion check
TIMING_DRAWS = 100  # whole drawings timed
DIVERSITY_DRAWINGS = 50  # samples a class compared pairwise (50 -> 1,225 pairs)
RASTER_CACHE = Path("runs/cache/generator_eval")  # rasters of the real drawings, reused by later evaluations
NEAREST_CHUNK = 10_000_000  # floats in the temporary of one nearest-neighbour block (40 MB)
Sampler = Callable[[str, int, float, int], list]  # (word, n, temperature, seed) -> n drawings (canvas strokes)


# ---------------------------------------------------------------------------------------------------------------
# Samplers: the shipped runtime, or the baseline checkpoint through torch


def runtime_sampler(
    models_dir: Path, prior: str = "shipped", guidance: float = DEFAULT_GUIDANCE
) -> tuple[Sampler, object]:
    """The shipped runtime; prior "normal" draws z from N(0, I) instead of the shipped latent prior (to compare);
    `guidance` is the classifier-free guidance scale."""
    from sketchlab.generate import Generator
    from sketchlab.latent_prior import NormalPrior

    gen = Generator.load(models_dir)
    if prior == "normal":
        gen.prior = NormalPrior(gen.z_size)

    def sample(word: str, n: int, temperature: float, seed: int) -> list:
        out = []
        for start in range(0, n, 50):  # batches of 50 variations
            out += gen.variations(word, min(50, n - start), temperature, seed + start, guidance=guidance)
        return out

    return sample, gen


def baseline_sampler(checkpoint: Path) -> Sampler:
    import torch

    from .train_generator import load_model

    torch.set_num_threads(1)
    model, ckpt = load_model(checkpoint)
    index = {w: i for i, w in enumerate(ckpt["classes"])}
    scale = float(ckpt["scale_factor"])
    cache: dict[str, list] = {}

    def sample(word: str, n: int, temperature: float, seed: int) -> list:
        if word not in cache:  # deterministic: the same drawing whatever the seed (see generator_baseline)
            rows = model.draw(torch.tensor([index[word]]), model.cfg.max_len)[0].numpy()  # (T, 5)
            pen = rows[:, 2:].argmax(-1)
            end = int(np.argmax(pen == 2)) if (pen == 2).any() else len(rows)
            stroke3 = np.column_stack([rows[:end, :2] * scale, pen[:end] == 1]).astype(np.float32)
            drawing = from_stroke3(stroke3) if len(stroke3) else []
            cache[word] = [[[float(x), float(y), 16.0 * i] for i, (x, y) in enumerate(s)] for s in drawing]
        return [cache[word]] * n

    return sample


# ---------------------------------------------------------------------------------------------------------------
# Measurements


def _raster(drawing) -> np.ndarray | None:
    """Canvas strokes -> 28x28 float raster in 0..1, or None for an empty or degenerate drawing."""
    try:
        return from_canvas(drawing).raster.astype(np.float32).ravel() / 255
    except DrawingError:
        return None


def _top_ranks(classifier, drawing, word: str) -> int | None:
    """Rank (0-based) of `word` among the fused classifier's top 5 guesses, None if absent or no drawing."""
    if not drawing:
        return None
    try:
        guesses = classifier.classify(drawing, top_k=5).fused
    except DrawingError:
        return None
    words = [g.word for g in guesses]
    return words.index(word) if word in words else None


def recognisability(sample: Sampler, classifier, words, n, temperature, seed) -> tuple[dict, dict]:
    """Per class: top-1 / top-3 agreement of the fused classifier with the requested class. Returns the table and
    the samples (for the memorisation check and the grid)."""
    table, samples = {}, {}
    for i, word in enumerate(words):
        drawings = sample(word, n, temperature, seed + 1000 * i)
        ranks = [_top_ranks(classifier, d, word) for d in drawings]
        table[word] = {
            "n": n,
            "top1": sum(r == 0 for r in ranks) / n,
            "top3": sum(r is not None and r < 3 for r in ranks) / n,
            "empty": sum(not d for d in drawings),
            "mean_points": float(np.mean([sum(len(s) for s in d) for d in drawings])),
        }
        samples[word] = drawings
        print(f"  {word:>14}: top-1 {table[word]['top1']:.2f} top-3 {table[word]['top3']:.2f}", flush=True)
    return table, samples


def _nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of a (n, 784), the smallest mean absolute difference to a row of b (m, 784)."""
    out = np.empty(len(a))
    rows = max(1, NEAREST_CHUNK // max(1, b.size))  # bounds the (rows, m, 784) temporary
    for i in range(0, len(a), rows):
        out[i : i + rows] = np.abs(a[i : i + rows, None, :] - b[None, :, :]).mean(-1).min(-1)
    return out


def _split_rasters(root: Path, word: str, split: Split) -> np.ndarray:
    """(n, 784) float32 rasters (0..1) of a class's drawings in one split, cached under runs/cache (not in git)."""
    cache = RASTER_CACHE / f"{word}.{split.value}.npy"
    if cache.exists():
        return np.load(cache)
    data = load_split(root, [word], split)
    rasters = np.stack([from_simplified(from_stroke3(s)).raster.ravel() for s in data.stroke3]).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, rasters / 255)
    return rasters / 255


def _mean_pairwise(rasters: np.ndarray) -> float:
    """Mean absolute difference over all pairs of rows of (n, 784) rasters."""
    d = np.abs(rasters[:, None, :] - rasters[None, :, :]).mean(-1)
    return float(d[np.triu_indices(len(rasters), 1)].mean())


def diversity(root: Path, words: list[str], samples: dict) -> dict:
    """Mean pairwise raster distance within each class's samples vs within as many held-out real drawings (VALID),
    averaged over the classes (at most DIVERSITY_DRAWINGS of each)."""
    gen_d, real_d = [], []
    for word in words:
        gen_r = [r for r in (_raster(d) for d in samples[word][:DIVERSITY_DRAWINGS]) if r is not None]
        real_r = _split_rasters(root, word, Split.VALID)[: max(2, len(gen_r))]
        if len(gen_r) >= 2 and len(real_r) >= 2:
            gen_d.append(_mean_pairwise(np.stack(gen_r)))
            real_d.append(_mean_pairwise(real_r))
    return {
        "metric": "mean absolute difference of 28x28 rasters (0..1) between two drawings of the same class",
        "samples": float(np.mean(gen_d)),
        "held_out_real": float(np.mean(real_d)),
        "classes": len(gen_d),
    }


def memorisation(root: Path, words: list[str], samples: dict) -> dict:
    """Nearest-training-drawing distances of the samples vs of held-out real drawings (see the module docstring)."""
    gen_d, real_d = [], []
    for word in words:
        train_r = _split_rasters(root, word, Split.TRAIN)
        valid_r = _split_rasters(root, word, Split.VALID)
        gen_r = [r for r in (_raster(d) for d in samples[word]) if r is not None]
        if gen_r:
            gen_d.append(_nearest(np.stack(gen_r), train_r))
        real_d.append(_nearest(valid_r, train_r))
    gen_d, real_d = np.concatenate(gen_d), np.concatenate(real_d)
    return {
        "metric": "mean absolute difference of 28x28 rasters (0..1) to the nearest TRAIN drawing of the class",
        "samples": {
            "n": len(gen_d),
            "min": float(gen_d.min()),
            "p1": float(np.percentile(gen_d, 1)),
            "median": float(np.median(gen_d)),
        },
        "held_out_real": {
            "n": len(real_d),
            "min": float(real_d.min()),
            "p1": float(np.percentile(real_d, 1)),
            "median": float(np.median(real_d)),
        },
        "copy_threshold": COPY_DISTANCE,
        "copies": int((gen_d < COPY_DISTANCE).sum()),
    }


def completion(
    root: Path, gen, classifier, words: list[str], temperature: float, seed: int, guidance: float = DEFAULT_GUIDANCE
) -> dict:
    """Top-1 of the half drawing alone vs half + continuation, on the first COMPLETION_PER_CLASS TEST drawings with
    >= 2 strokes of each word (`training.evaluate_completion`, pooled over drawings): without a word, as the true word
    (guided at `guidance`) and as the classifier's guess for the half (unguided, as sketchlab.service does)."""
    modes = {"no word": "completed_no_word", "word": "completed_with_word", GUESS: "completed_with_guess"}
    cases = held_out_cases(root, words, COMPLETION_PER_CLASS)
    cases = run_cases(cases, gen.complete, classifier, temperature, seed, guidance, False, tuple(modes))
    summary = summarise(cases)
    return {
        "n": summary["n"],
        "split": "test",
        "cut": "first len(strokes) // 2 strokes",
        "top1_half": summary.get("top1_half_pooled", 0.0),
        **{
            f"top1_{key}": summary["modes"].get(mode, {}).get("top1_completed_pooled", 0.0)
            for mode, key in modes.items()
        },
    }


def speed(gen, words: list[str], temperature: float, guidance: float = DEFAULT_GUIDANCE) -> dict:
    whole, first, points = [], [], []
    gen.generate(words[0], temperature, 0, guidance=guidance)  # warm-up
    for i in range(TIMING_DRAWS):
        word = words[i % len(words)]
        t0 = time.perf_counter()
        d = gen.generate(word, temperature, seed=i, guidance=guidance)
        whole.append(time.perf_counter() - t0)
        points.append(sum(len(s) for s in d))
        t0 = time.perf_counter()
        next(gen.stream(word, temperature, seed=i, guidance=guidance), None)
        first.append(time.perf_counter() - t0)
    return {
        "draws": TIMING_DRAWS,
        "median_ms": 1000 * statistics.median(whole),
        "p90_ms": 1000 * float(np.percentile(whole, 90)),
        "first_point_median_ms": 1000 * statistics.median(first),
        "median_points": statistics.median(points),
        "max_points": max(points),
        "provider": gen.provider,
    }


def reproducible(gen, word: str, temperature: float, guidance: float = DEFAULT_GUIDANCE) -> bool:
    def one():
        return gen.generate(word, temperature, seed=7, guidance=guidance)

    def three():
        return gen.variations(word, 3, temperature, seed=7, guidance=guidance)

    return one() == one() and three() == three()


def grid(samples: dict, path: Path, title: str, table: dict | None = None) -> None:
    """One row of GRID_COLUMNS drawings per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = list(samples)
    fig, axes = plt.subplots(len(words), GRID_COLUMNS, figsize=(GRID_COLUMNS * 1.1, len(words) * 1.15))
    axes = np.atleast_2d(axes)
    for r, word in enumerate(words):
        for c in range(GRID_COLUMNS):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.invert_yaxis()
            ax.set_aspect("equal")
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(samples[word]):
                for stroke in samples[word][c]:
                    xy = np.asarray(stroke)[:, :2]
                    ax.plot(xy[:, 0], xy[:, 1], "k-", lw=0.8)
        label = word if table is None else f"{word}\n{table[word]['top1']:.0%}"
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _overall(table: dict) -> dict:
    n = sum(v["n"] for v in table.values())
    return {k: sum(v[k] * v["n"] for v in table.values()) / n for k in ("top1", "top3")} | {"samples": n}


def record_in_manifest(models_dir: Path, result: dict) -> None:
    """Store the headline figures in the decoder's manifest (`metrics.evaluation`), so the model carries them."""
    from sketchlab.runtime import Manifest

    path = Path(models_dir) / "generator_decoder.json"
    manifest = Manifest.load(path)
    manifest.metrics["evaluation"] = {
        k: result[k]
        for k in (
            "temperature",
            "guidance",
            "prior",
            "samples_per_class",
            "overall",
            "diversity",
            "completion",
            "speed",
        )
        if k in result
    } | {"copies": result["memorisation"]["copies"], "classes": "the 22 classes with >= 440 simplified drawings"}
    manifest.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="drawings sampled a class")
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--recipe", choices=["shipped", "baseline"], default="shipped")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("checkpoints/generator_baseline/last.pt"),
        help="baseline recipe only: the torch checkpoint to sample",
    )
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--words", default="rich", help='"rich" (>= 440 drawings) or a comma-separated list')
    parser.add_argument(
        "--quality-samples",
        type=int,
        default=0,
        help="also sample this many drawings of every other class and write generator_quality.json",
    )
    parser.add_argument(
        "--prior",
        choices=["shipped", "normal"],
        default="shipped",
        help="where z comes from when drawing from scratch: the shipped models/generator_prior.npz, or N(0, I) "
        "(for comparison: nothing is then written into the models folder)",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        default=DEFAULT_GUIDANCE,
        help="classifier-free guidance scale (0 = none); only the default writes into the models folder",
    )
    parser.add_argument("--grid", type=Path, default=None, help="grid image path (default models/plots/...)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from sketchlab.classify import Classifier  # the shipped fused classifier

    root = args.data or default_data_dir()
    if root is None:
        raise SystemExit("no data folder: pass --data or set SKETCHLAB_DATA")
    words = rich_words(root) if args.words == "rich" else [w.strip() for w in args.words.split(",")]
    classifier = Classifier.load(args.models_dir)
    gen = None
    if args.recipe == "baseline":
        sample = baseline_sampler(args.checkpoint)
    else:
        sample, gen = runtime_sampler(args.models_dir, args.prior, args.guidance)
        print(f"latent prior: {gen.prior.name}, guidance {args.guidance:g}", *gen.problems, flush=True)
    # only the shipped sampler's own settings write into the models folder
    shipped = args.recipe == "shipped" and args.prior == "shipped" and args.guidance == DEFAULT_GUIDANCE
    guidance = args.guidance if gen is not None else None  # the baseline has no unconditional pass to guide with

    t0 = time.time()
    print(f"recognisability: {len(words)} classes x {args.samples} samples at T={args.temperature}", flush=True)
    table, samples = recognisability(sample, classifier, words, args.samples, args.temperature, args.seed)
    result = {
        "recipe": args.recipe,
        "temperature": args.temperature,
        "guidance": guidance,
        "samples_per_class": args.samples,
        "classifier": "sketchlab.classify.Classifier fused",
        "prior": gen.prior.name if gen is not None else None,
        "overall": _overall(table),
        "per_class": table,
    }
    print(f"overall {result['overall']}", flush=True)
    default_grid = args.models_dir / "plots" / f"generator_{args.recipe}_samples.png"
    grid_path = args.grid or (default_grid if args.recipe == "baseline" or shipped else args.json.with_suffix(".png"))
    grid(
        {w: s[:GRID_COLUMNS] for w, s in samples.items()},
        grid_path,
        f"{args.recipe} generator{f', z from {gen.prior.name}, guidance {guidance:g}' if gen else ''}, "
        f"T={args.temperature}, fused top-1",
        table,
    )
    result["grid"] = str(grid_path)
    result["diversity"] = diversity(root, words, samples)
    print(result["diversity"], flush=True)
    print("memorisation", flush=True)
    result["memorisation"] = memorisation(root, words, samples)
    print(result["memorisation"], flush=True)
    if gen is not None:
        result["reproducible"] = reproducible(gen, words[0], args.temperature, args.guidance)
        result["speed"] = speed(gen, words, args.temperature, args.guidance)
        print(result["speed"], flush=True)
        print("completion", flush=True)
        result["completion"] = completion(root, gen, classifier, words, args.temperature, args.seed, args.guidance)
        print(result["completion"], flush=True)
    if args.quality_samples and shipped:
        others = [w for w in gen.classes if w not in table]
        print(f"quality table: {len(others)} more classes x {args.quality_samples}", flush=True)
        more, _ = recognisability(sample, classifier, others, args.quality_samples, args.temperature, args.seed)
        quality = {
            w: {"top1": round(v["top1"], 3), "top3": round(v["top3"], 3), "n": v["n"]}
            for w, v in {**table, **more}.items()
        }
        (args.models_dir / "generator_quality.json").write_text(
            json.dumps(
                {
                    "temperature": args.temperature,
                    "guidance": args.guidance,
                    "classifier": result["classifier"],
                    "note": "fraction of generated drawings the shipped fused classifier names as the requested class",
                    "per_class": quality,
                },
                indent=1,
            )
            + "\n"
        )
        result["all_classes_overall"] = _overall({w: {**v} for w, v in {**table, **more}.items()})
    result["wall_minutes"] = (time.time() - t0) / 60
    if shipped:
        record_in_manifest(args.models_dir, result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
