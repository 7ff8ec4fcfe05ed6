"""Where the generator's latent z comes from when it draws a class from scratch.

sketch-rnn samples z from the VAE's prior N(0, I). With a KL floor, the encoder's posteriors q(z | drawing, class)
need not fill N(0, I) (the shipped model's average posterior keeps its 128 dimensions at a KL of 0.16 nats each,
~21 nats in all), and a z drawn where no training drawing's posterior lies decodes to a vaguer drawing. The shipped
generator draws z from the class's aggregate posterior instead, estimated on K_c training drawings x_k of the class:

    q(z | c) ~= 1/K_c sum_k N(z | mu_k, diag(sigma_k^2)),   (mu_k, log sigma_k^2) = encoder(x_k, c)

that is: pick one of the class's components at random, then z = mu_k + sigma_k * N(0, I). This is the VampPrior's
mixture of posteriors (Tomczak & Welling 2018) with real drawings as the pseudo-inputs, fitted after training
(ex-post density estimation, Ghosh et al. 2020). Each z keeps the posterior's full spread (sigma^2 ~ 0.9 in most
dimensions), so a sample is a new drawing in the style of one training drawing, not a copy of it: the evaluation's
memorisation check (training/evaluate_generator.py) measures that. Measured effect: docs/generator.md.

File format (written by `save`, built by `python -m training.generator_prior`):
    models/generator_prior.npz   mu (K, Z) float16, sigma (K, Z) float16 (standard deviations), label (K,) int16
    models/generator_prior.json  Manifest; config["encoder_sha256"] ties it to the generator_encoder.onnx it came from
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import ModelError
from .runtime import Manifest

PRIOR_NAME = "generator_prior"
NORMAL = "N(0, I)"
AGGREGATE = "aggregate posterior"


class NormalPrior:
    """sketch-rnn's prior: z ~ N(0, I) whatever the class."""

    name = NORMAL

    def __init__(self, z_size: int):
        self.z_size = int(z_size)

    def sample(self, label: int, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.z_size)).astype(np.float32)


class AggregatePosterior:
    """A mixture of the encoder's posteriors of training drawings, per class (see the module docstring)."""

    name = AGGREGATE

    def __init__(self, mu: np.ndarray, sigma: np.ndarray, labels: np.ndarray, n_classes: int):
        self.mu = np.asarray(mu, np.float32)  # (K, Z)
        self.sigma = np.asarray(sigma, np.float32)  # (K, Z)
        labels = np.asarray(labels, np.int64)  # (K,)
        self.z_size = self.mu.shape[1]
        self.components = [np.flatnonzero(labels == c) for c in range(n_classes)]  # class -> rows of mu / sigma
        self._normal = NormalPrior(self.z_size)

    def sample(self, label: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, Z) float32 latents for class `label`; N(0, I) for a class without components."""
        rows = self.components[label] if 0 <= label < len(self.components) else ()
        if len(rows) == 0:
            return self._normal.sample(label, n, rng)
        k = rows[rng.integers(0, len(rows), n)]  # one component each
        return (self.mu[k] + self.sigma[k] * rng.standard_normal((n, self.z_size))).astype(np.float32)

    @classmethod
    def load(cls, models_dir: str | Path, classes: list[str], z_size: int, encoder_path: Path) -> AggregatePosterior:
        """Read models/generator_prior.npz|json. Raises ModelError when a file is missing or corrupt, or when it was
        made for other classes, another latent size or another encoder export."""
        path = Path(models_dir) / f"{PRIOR_NAME}.npz"
        fix = "run `python -m training.generator_prior` (or restore it from git)"
        if not path.exists():
            raise ModelError(f"{path} is missing; {fix}")
        manifest = Manifest.load(path.with_suffix(".json"))
        try:
            with np.load(path) as f:
                mu, sigma, labels = f["mu"], f["sigma"], f["label"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise ModelError(f"{path} cannot be read ({type(e).__name__}: {e}); {fix}") from e
        if manifest.classes != list(classes):
            raise ModelError(f"{path} was made for other classes than the generator's; {fix}")
        if mu.ndim != 2 or mu.shape[1] != z_size or sigma.shape != mu.shape or labels.shape != (len(mu),):
            raise ModelError(f"{path}: arrays of shapes {mu.shape}, {sigma.shape}, {labels.shape} for z of {z_size}")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all() and (sigma > 0).all()):
            raise ModelError(f"{path} holds non-finite or non-positive values; {fix}")
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(classes):
            raise ModelError(f"{path} has labels outside 0..{len(classes) - 1}; {fix}")
        if manifest.config.get("encoder_sha256") != file_sha256(encoder_path):
            raise ModelError(f"{path} was made with another {encoder_path.name}; {fix}")
        return cls(mu, sigma, labels, len(classes))


def save(
    models_dir: str | Path,
    mu: np.ndarray,
    sigma: np.ndarray,
    labels: np.ndarray,
    manifest: Manifest,
) -> Path:
    """Write models/generator_prior.npz (float16, compressed) and its manifest; returns the .npz path."""
    path = Path(models_dir) / f"{PRIOR_NAME}.npz"
    np.savez_compressed(
        path, mu=np.asarray(mu, np.float16), sigma=np.asarray(sigma, np.float16), label=np.asarray(labels, np.int16)
    )
    manifest.save(path.with_suffix(".json"))
    return path


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
