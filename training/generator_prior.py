"""Build the generator's latent prior: the exported encoder's posteriors of training drawings, per class.

    python -m training.generator_prior --data ../shared/quickdraw          # after training.export_generator

For each class, up to `per_class` drawings of the TRAIN split (a seeded random choice; every drawing of a class that
has fewer) go through the SHIPPED encoder (models/generator_encoder.onnx, through sketchlab, exactly as the app
feeds a drawing to finish: `sketchlab.strokes.normalize` by the manifest's scale factor, `to_stroke5`, the class
as label). Their (mu, sigma) make the mixture `sketchlab.latent_prior.AggregatePosterior` draws z from.
Writes models/generator_prior.npz and generator_prior.json (2.6 MB for 345 classes; no drawing is stored, only
its 128-number posterior).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sketchlab.data import default_data_dir, provenance
from sketchlab.latent_prior import PRIOR_NAME, file_sha256, save
from sketchlab.runtime import MODELS_DIR, Manifest, load_onnx
from sketchlab.split import Split
from sketchlab.strokes import normalize, to_stroke5

from .export_classifier import git_commit
from .generator_data import MAX_LEN, load_split


@dataclass
class PriorConfig:
    per_class: int = 32  # components a class: 32 measured as good as 300 (docs/generator.md)
    seed: int = 0  # which training drawings are chosen


def encode_class(encoder, stroke3s: list[np.ndarray], label: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) stroke-3 drawings of one class -> mu (K, Z), sigma (K, Z) of q(z | drawing, class), one at a time
    (the encoder graph takes no lengths, so a batch would have to be padded; 32 drawings take ~0.1 s)."""
    mus, sigmas = [], []
    for s3 in stroke3s:
        s5 = to_stroke5(normalize(s3[:MAX_LEN], scale))  # (N + 1, 5), start token first
        out = encoder.run(strokes=s5[None, 1:], label=np.array([label], np.int64))
        mus.append(out["mu"][0])
        sigmas.append(np.exp(out["sigma_hat"][0] / 2))  # log variance -> standard deviation
    return np.array(mus), np.array(sigmas)


def build(data_root: Path, models_dir: Path, cfg: PriorConfig) -> Path:
    encoder = load_onnx("generator_encoder", models_dir, threads=1)
    classes, scale = list(encoder.manifest.classes), float(encoder.manifest.scale_factor)
    rng = np.random.default_rng(cfg.seed)
    mus, sigmas, labels, counts = [], [], [], {}
    for label, word in enumerate(classes):
        train = load_split(data_root, [word], Split.TRAIN)  # one class in memory at a time (a full download too)
        chosen = np.sort(rng.permutation(len(train.stroke3))[: cfg.per_class])
        counts[word] = len(chosen)
        if not len(chosen):
            continue
        mu, sigma = encode_class(encoder, [train.stroke3[i] for i in chosen], label, scale)
        mus.append(mu)
        sigmas.append(sigma)
        labels.append(np.full(len(chosen), label))
    mu, sigma, label = np.concatenate(mus), np.concatenate(sigmas), np.concatenate(labels)
    z = mu.shape[1]
    manifest = Manifest(
        name=PRIOR_NAME,
        kind=PRIOR_NAME,
        classes=classes,
        inputs={},
        outputs={"mu": ["K", z], "sigma": ["K", z], "label": ["K"]},
        input_format=(
            "Not a graph: the mixture z is drawn from when drawing from scratch (sketchlab.latent_prior). "
            "mu, sigma: mean and standard deviation of q(z | drawing, class) for K training drawings; label: class."
        ),
        preprocessing_version=encoder.manifest.preprocessing_version,
        scale_factor=scale,
        config={**asdict(cfg), "z_size": z, "encoder_sha256": file_sha256(encoder.path)},
        data={
            **provenance(data_root),
            "split": Split.TRAIN.value,
            "components": len(mu),
            "classes_without_drawings": [w for w, n in counts.items() if n == 0],
            "components_per_class": {"min": min(counts.values()), "max": max(counts.values())},
        },
        metrics={
            "mean_kl_per_dim": float(np.mean(-0.5 * (1 + np.log(sigma**2) - mu**2 - sigma**2))),
            "mean_sigma": float(sigma.mean()),
        },
        git_commit=git_commit(),
    )
    return save(models_dir, mu, sigma, label, manifest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    for name, value in asdict(PriorConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    if args.data is None:
        raise SystemExit("no data folder: pass --data DIR (the official Quick, Draw! layout)")
    t0 = time.perf_counter()
    cfg = PriorConfig(**{k: getattr(args, k) for k in asdict(PriorConfig())})
    path = build(args.data, args.models_dir, cfg)
    manifest = Manifest.load(path.with_suffix(".json"))
    print(
        f"{path}: {manifest.data['components']} components, {path.stat().st_size / 1e6:.2f} MB, "
        f"{time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
