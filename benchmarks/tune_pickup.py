"""The best configuration a search finds against the default, at the same budget.

1. runs (or resumes) the search of a sweep file (``rimrl sweep``; default: the worked pickup
   example, RIMs' k_active, num_units and learning rate);
2. trains the winner (its ``best_config.yaml``) and the default (the sweep's overrides alone)
   with each seed, to the same ``train.timesteps`` (a run already finished is kept);
3. evaluates every run on the metric's split and on the other splits its evaluations played
   (``rimrl evaluate --distractors``, ``--episodes`` per split);
4. prints success per split and setting (mean and 95% t-interval over seeds), the paired
   difference winner - default per split, and last, the ratio winner / default on the
   metric's split.

Usage: python benchmarks/tune_pickup.py [--sweep FILE] [--runs-dir DIR] [--seeds 0 1 2]
       [--episodes 200] [--num-cpus N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def rimrl(*args: str) -> None:
    print("$ rimrl " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "rimrl", *args], check=True)


def train(run: Path, config: Path | None, overrides: list[str], seed: int) -> None:
    """Train (or resume, or keep) one run of the comparison."""
    from rimrl.learners.ppo import PPOLearner

    if (run / "run.json").is_file():
        if not PPOLearner().finished(run):
            rimrl("train", "ppo", "--resume", str(run), "--no-progress")
        return
    extra = ["--config", str(config)] if config else []
    sets = [a for o in overrides for a in ("--set", o)]
    rimrl("train", "ppo", "--run-dir", str(run), "--no-progress", *extra, *sets,
          "--set", f"seed={seed}")


def evaluate(run: Path, splits: list[str], episodes: int) -> dict:
    path = run / "distractors.json"
    if not path.is_file():
        rimrl("evaluate", str(run), "--distractors", *splits, "--episodes", str(episodes))
    return json.loads(path.read_text())["splits"]


def interval(values: list[float]) -> str:
    from rimrl.report.stats import seed_mean_ci

    mean, lo, hi = (float(x) for x in seed_mean_ci(np.array(values)))
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", type=Path, default=ROOT / "configs/sweeps/pickup_rims_search.yaml")
    p.add_argument("--runs-dir", type=Path, help="where the search and the runs go (default: "
                                                 "the sweep file's runs_dir)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--num-cpus", type=int)
    args = p.parse_args()

    from rimrl.config import override_text
    from rimrl.sweeps.plan import load_sweep

    data = yaml.safe_load(args.sweep.read_text())
    if args.runs_dir:
        data["runs_dir"] = str(args.runs_dir.resolve())
    sweep_file = Path(data["runs_dir"]) / f"{data['name']}.sweep.yaml"
    sweep_file.parent.mkdir(parents=True, exist_ok=True)
    sweep_file.write_text(yaml.safe_dump(data, sort_keys=False))
    sweep = load_sweep(sweep_file)
    search = sweep.search
    cpus = ["--num-cpus", str(args.num_cpus)] if args.num_cpus else []
    rimrl("sweep", str(sweep_file), *cpus)  # exits 1 when a trial failed: then stop here
    status = json.loads((sweep.root / "sweep.json").read_text())
    best = next(t for t in status["trials"] if t["name"] == status["best"])
    print(f"best: {best['name']} {best['values']}, {search.metric} {best['metric']:.3f} "
          f"(its last evaluation during training)")

    overrides = [override_text(k, v) for k, v in sweep.overrides.items()]
    splits = [search.split] + [s for s in (sweep.overrides.get("eval.distractors") or [])
                               if s != search.split]
    scores: dict[str, dict[str, list[float]]] = {"default": {}, "best": {}}
    for seed in args.seeds:
        for label, config in (("default", None), ("best", sweep.root / "best_config.yaml")):
            run = sweep.root.parent / f"{sweep.name}-{label}" / f"s{seed}"
            train(run, config, overrides if config is None else [], seed)
            for split, result in evaluate(run, splits, args.episodes).items():
                scores[label].setdefault(split, []).append(result["success_rate"])

    steps = sweep.overrides.get("train.timesteps")
    print(f"\nsuccess after {steps:,} steps, {args.episodes} episodes per split, seeds "
          f"{' '.join(map(str, args.seeds))} (mean [95% t-interval over seeds])")
    print(f"{'split':<12} {'default':<24} {'best':<24} best - default (paired)")
    for split in splits:
        d, b = scores["default"][split], scores["best"][split]
        print(f"{split:<12} {interval(d):<24} {interval(b):<24} "
              f"{interval([x - y for x, y in zip(b, d)])}")
    ratio = np.mean(scores["best"][search.split]) / max(np.mean(scores["default"][search.split]),
                                                        1e-9)
    print(f"ratio best / default, {search.split} success: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
