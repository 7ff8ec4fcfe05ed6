"""How strongly should the generator guide its drawings towards the class? Sweeps the classifier-free guidance scale.

    python -m training.studies.guidance_study --scales 0 0.5 1 1.5 2 3 --samples 30 --json runs/guidance_study.json

For each scale w, `--samples` drawings of each of the 22 rich classes are sampled at T = 0.5 by the shipped runtime
(z from the shipped latent prior; `sketchlab.sampler.guide`) and measured as `training.evaluate_generator` does:
the shipped fused classifier's top-1 / top-3 agreement with the requested class, the diversity within a class and
the nearest-training-drawing distances (copies). The seeds (`--seed`, default 555) differ from the evaluation's
(0), so the scale the app uses (sketchlab.generate.DEFAULT_GUIDANCE) is not chosen on the samples that report it.
Results: docs/generator.md, "Guidance".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sketchlab.classify import Classifier
from sketchlab.data import default_data_dir, rich_words
from sketchlab.runtime import MODELS_DIR
from training.evaluate_generator import _overall, diversity, memorisation, recognisability, runtime_sampler

TEMPERATURE = 0.5


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0, 0.5, 1, 1.5, 2, 3])
    parser.add_argument("--samples", type=int, default=30, help="drawings a class and scale")
    parser.add_argument("--seed", type=int, default=555)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--json", type=Path, default=Path("runs/guidance_study.json"))
    args = parser.parse_args(argv)
    if args.data is None:
        raise SystemExit("no data folder: pass --data or set SKETCHLAB_DATA")
    classifier = Classifier.load(args.models_dir, threads=1)
    words = rich_words(args.data)
    results = {}
    for scale in args.scales:
        t0 = time.perf_counter()
        sample, _ = runtime_sampler(args.models_dir, "shipped", scale)
        table, samples = recognisability(sample, classifier, words, args.samples, TEMPERATURE, args.seed)
        mem, div = memorisation(args.data, words, samples), diversity(args.data, words, samples)
        results[scale] = {
            "overall": _overall(table),
            "per_class_top1": {w: v["top1"] for w, v in table.items()},
            "diversity": div,
            "nearest": mem["samples"],
            "copies": mem["copies"],
            "seconds": time.perf_counter() - t0,
        }
        o, s = results[scale]["overall"], mem["samples"]
        print(
            f"guidance {scale:g}: top-1 {o['top1']:.3f}  top-3 {o['top3']:.3f}  diversity {div['samples']:.3f} "
            f"(real {div['held_out_real']:.3f})  nearest training drawing min {s['min']:.3f} / p1 {s['p1']:.3f} / "
            f"median {s['median']:.3f}  copies {mem['copies']}",
            flush=True,
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"temperature": TEMPERATURE, "samples_per_class": args.samples, "seed": args.seed, "scales": results}
    args.json.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
