"""Train and export every shipped model from scratch, with one command:

    python -m training.train_all --data ../shared/quickdraw

Steps (wall time of each written to runs/train_all.json):
  1. the classifier cache (sketchlab preprocessing of every drawing, ~1 min);
  2. the stroke model and the CNN, side by side (one CPU thread each: this machine has 2 cores), each stopping at
     its epoch limit, early stopping or --minutes, then going on to its second phase (recipe "finetune": from the
     first phase's best checkpoint, cosine learning rate to zero, mirrored drawings), which is what ships (wall
     times measured: docs/classifiers.md, "Acceptance figures");
  3. (--baselines) the two baseline recipes, for the README table, exported to runs/baseline_models (no fusion.json:
     the plain sum of the two log-probabilities) and evaluated into runs/eval_baseline.json;
  4. ONNX export (one process per model), fusion tuned on the validation split, held-out evaluation written into
     the manifests, the live guesses replayed stroke by stroke (`training.evaluate_live`), plots;
  5. the generator: `python -m training.train_generator --data DIR --max-minutes M --threads 2` (M: --generator-minutes;
     the classifiers are done by then, so it has both cores), `python -m training.export_generator`, its
     latent prior (`python -m training.generator_prior`), then its evaluation (`training.evaluate_generator`, which
     writes the per-class quality the page shows).
Use --resume to continue interrupted runs instead of starting over.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import threading
import time

from sketchlab.data import default_data_dir
from training.classifier_config import RUNS
from training.classifier_data import DEFAULT_CACHE

PY = sys.executable
# The generator's time bound in make models: its shipped schedule (9,520 steps on the first release, 40 epochs) is
# about 6 h of this 2-core CPU on the second; 190 minutes reached 4,763 steps (docs/generator.md).
GENERATOR_MINUTES = 180.0


def say(message: str) -> None:
    """One line of progress, written in one call so the two training threads' lines never interleave."""
    sys.stdout.write(f"[train_all] {message}\n")
    sys.stdout.flush()


def run(cmd: list[str], log: dict, name: str) -> None:
    say(f"{name}: {' '.join(cmd)}")
    t = time.time()
    subprocess.run(cmd, check=True)
    log[name] = round(time.time() - t, 1)


def run_chains(chains: dict[str, list[list[str]]], log: dict, name: str) -> None:
    """Run each chain's commands one after the other, the chains side by side (one model each, on its own core), so
    the stroke model's second phase overlaps the CNN's longer first one; wait for all."""

    def chain(key: str, cmds: list[list[str]]) -> None:
        for cmd in cmds:
            say(f"{key}: {' '.join(cmd)}")
            t = time.time()
            if subprocess.run(cmd).returncode != 0:
                failed.append(key)
                return
            log[f"{name}_{key}_{cmd[cmd.index('--recipe') + 1]}"] = round(time.time() - t, 1)

    t = time.time()
    failed: list[str] = []
    threads = [threading.Thread(target=chain, args=item) for item in chains.items()]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log[name] = round(time.time() - t, 1)
    if failed:
        raise SystemExit(f"[train_all] failed: {failed}")


def train_cmd(model: str, recipe: str, args) -> list[str]:
    cmd = [
        PY,
        "-m",
        "training.train_classifier",
        "--model",
        model,
        "--recipe",
        recipe,
        "--data",
        args.data,
        "--cache",
        args.cache,
        "--threads",
        str(args.threads),
        "--progress",
        "0",
    ]
    if args.minutes:
        cmd += ["--max-minutes", str(args.minutes)]
    return cmd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(default_data_dir()))
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument(
        "--minutes", type=float, default=80.0, help="time budget of each classifier training (as shipped)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    parser.add_argument("--baselines", action="store_true", help="also train the two baseline recipes")
    parser.add_argument("--skip-generator", action="store_true")
    parser.add_argument(
        "--generator-minutes",
        type=float,
        default=GENERATOR_MINUTES,
        help="wall-time bound of the generator's training (0: its full schedule, hours on a CPU)",
    )
    parser.add_argument("--resume", action="store_true", help="continue runs/<model>-<recipe> instead of restarting")
    args = parser.parse_args(argv)
    log: dict[str, float] = {}
    start = time.time()

    run([PY, "-m", "training.classifier_data", "--data", args.data, "--cache", args.cache], log, "cache")
    recipes = ["shipped", "finetune"] + (["baseline"] if args.baselines else [])
    if not args.resume:
        for model, recipe in itertools.product(("stroke", "cnn"), recipes):
            shutil.rmtree(RUNS / f"{model}-{recipe}", ignore_errors=True)
    run_chains({model: [train_cmd(model, r, args) for r in recipes] for model in ("stroke", "cnn")}, log, "train")

    run([PY, "-m", "training.export_classifier"], log, "export")
    if args.baselines:
        base = RUNS / "baseline_models"
        for model in ("stroke", "cnn"):
            checkpoint = str(RUNS / f"{model}-baseline" / "best.pt")
            cmd = [PY, "-m", "training.export_classifier", "--model", model, "--checkpoint", checkpoint]
            run([*cmd, "--out-dir", str(base)], log, f"export_{model}_baseline")
        out = ["--json", str(RUNS / "eval_baseline.json"), "--summary", str(RUNS / "acceptance_baseline.json")]
        run([PY, "-m", "training.evaluate", "--data", args.data, "--models-dir", str(base), *out], log, "eval_baseline")
    run([PY, "-m", "training.fuse", "--data", args.data], log, "fuse")
    run(
        [
            PY,
            "-m",
            "training.evaluate",
            "--data",
            args.data,
            "--json",
            str(RUNS / "eval_test.json"),
            "--summary",
            str(RUNS / "acceptance.json"),
            "--update-manifests",
        ],
        log,
        "evaluate",
    )
    live = ["--json", str(RUNS / "eval_live.json")]
    run([PY, "-m", "training.evaluate_live", "--data", args.data, *live], log, "evaluate_live")
    run([PY, "-m", "training.plots", "--data", args.data], log, "plots")
    if not args.skip_generator:
        train = ["--data", args.data, "--threads", "2", "--max-minutes", str(args.generator_minutes)]
        train += [] if args.resume else ["--no-resume"]
        run([PY, "-m", "training.train_generator", *train], log, "train_generator")
        run([PY, "-m", "training.export_generator"], log, "export_generator")
        run([PY, "-m", "training.generator_prior", "--data", args.data], log, "generator_prior")
        evaluate = ["--samples", "100", "--temperature", "0.5", "--quality-samples", "10"]
        out = ["--json", str(RUNS / "generator_eval.json")]
        run([PY, "-m", "training.evaluate_generator", "--data", args.data, *evaluate, *out], log, "evaluate_generator")
    log["total"] = round(time.time() - start, 1)
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "train_all.json").write_text(json.dumps(log, indent=1) + "\n")
    say(f"done in {log['total'] / 60:.1f} min: {json.dumps(log)}")


if __name__ == "__main__":
    main()
