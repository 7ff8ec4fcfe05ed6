"""Where should z come from when the generator draws from scratch? Measures the candidates side by side.

    python -m training.studies.prior_study --samples 60 --json runs/prior_study.json

For each of the 22 rich classes, up to 200 TRAIN drawings go through the shipped encoder (as
`training.generator_prior` does); then `--samples` drawings a class are sampled at T = 0.5 with z from each source
below (same decoder, same seeds) and classified by the shipped fused classifier:

    normal            z ~ N(0, I), sketch-rnn's prior
    gaussian_diag     a diagonal Gaussian a class, moment-matched to its aggregate posterior
                      (mean of the mu_k; variance var(mu_k) + mean(sigma_k^2))
    gaussian_full     the same with a full covariance: cov(mu_k) + diag(mean(sigma_k^2))
    mixture_32        the shipped prior: one of 32 posteriors N(mu_k, sigma_k^2) a class, then a draw from it
    mixture_200       the same over all (up to 200) encoded drawings
    mixture_32_recognized   32 posteriors of drawings Google's game recognised (`recognized: true`)
    posterior_means   z = mu_k of the 32 drawings, no noise: decoding the training drawings' own codes

and reports top-1 / top-3 agreement and the nearest-training-drawing distances (`evaluate_generator.memorisation`).
Sampling is unguided unless `--guidance` says otherwise (the study predates guidance; docs/generator.md, "Guidance").
Results: docs/generator.md, "Latent prior".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sketchlab.classify import Classifier
from sketchlab.data import default_data_dir, iter_drawings, rich_words
from sketchlab.generate import Generator
from sketchlab.split import Split
from sketchlab.strokes import to_stroke3
from training.evaluate_generator import _top_ranks, memorisation
from training.generator_data import MIN_POINTS
from training.generator_prior import encode_class

ENCODED_PER_CLASS = 200
COMPONENTS = 32
TEMPERATURE = 0.5
SOURCES = (
    "normal",
    "gaussian_diag",
    "gaussian_full",
    "mixture_32",
    "mixture_200",
    "mixture_32_recognized",
    "posterior_means",
)


def encoded(gen: Generator, root: Path, word: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mu (K, Z), sigma (K, Z) and Google's `recognized` flag (K,) of up to ENCODED_PER_CLASS TRAIN drawings."""
    drawings, recognized = [], []
    for r in iter_drawings(root, "simplified", words=[word], split=Split.TRAIN, limit_per_word=ENCODED_PER_CLASS):
        s3 = to_stroke3(r.drawing)
        if len(s3) >= MIN_POINTS:
            drawings.append(s3)
            recognized.append(bool(r.recognized))
    mu, sigma = encode_class(gen.encoder, drawings, gen.label(word), gen.scale)
    return mu, sigma, np.array(recognized)


def latents(source: str, mu, sigma, recognized, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, Z) latents from one source (see the module docstring)."""
    z_size = mu.shape[1]
    eps = rng.standard_normal((n, z_size))
    if source == "normal":
        return eps
    if source == "gaussian_diag":
        return mu.mean(0) + np.sqrt(mu.var(0) + (sigma**2).mean(0)) * eps
    if source == "gaussian_full":
        cov = np.cov(mu.T) + np.diag((sigma**2).mean(0))
        return mu.mean(0) + eps @ np.linalg.cholesky(cov).T
    pool = np.flatnonzero(recognized) if source == "mixture_32_recognized" else np.arange(len(mu))
    if source != "mixture_200":
        pool = rng.choice(pool, min(COMPONENTS, len(pool)), replace=False)
    k = pool[rng.integers(0, len(pool), n)]
    return mu[k] if source == "posterior_means" else mu[k] + sigma[k] * eps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=60, help="drawings a class and source")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--json", type=Path, default=Path("runs/prior_study.json"))
    parser.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance scale (0 = none)")
    args = parser.parse_args(argv)
    gen, classifier = Generator.load(), Classifier.load(threads=1)
    words = rich_words(args.data)
    hits = {s: {"top1": 0, "top3": 0, "n": 0} for s in SOURCES}
    samples: dict[str, dict[str, list]] = {s: {} for s in SOURCES}
    for i, word in enumerate(words):
        mu, sigma, recognized = encoded(gen, args.data, word)
        for source in SOURCES:
            z = latents(source, mu, sigma, recognized, args.samples, np.random.default_rng(100 + i))
            rng = np.random.default_rng(7 + i)
            drawings = samples[source][word] = gen.decode(gen.label(word), z, TEMPERATURE, rng, guidance=args.guidance)
            ranks = [_top_ranks(classifier, d, word) for d in drawings]
            hits[source]["top1"] += sum(r == 0 for r in ranks)
            hits[source]["top3"] += sum(r is not None and r < 3 for r in ranks)
            hits[source]["n"] += len(ranks)
        print(f"{word:>14} done", flush=True)
    result = {}
    for source in SOURCES:
        h, mem = hits[source], memorisation(args.data, words, samples[source])
        result[source] = {"top1": h["top1"] / h["n"], "top3": h["top3"] / h["n"], "n": h["n"], "nearest": mem}
        s = mem["samples"]
        print(
            f"{source:>22}: top-1 {result[source]['top1']:.3f}  top-3 {result[source]['top3']:.3f}  "
            f"nearest training drawing min {s['min']:.3f} / p1 {s['p1']:.3f} / median {s['median']:.3f}  "
            f"copies {mem['copies']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
