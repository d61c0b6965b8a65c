"""Do RIMs' defaults learn on the pickup suite, and does the input choose the active RIMs?

Trains ``rimrl train ppo --env rimrl/Pickup-v0`` (the ``grid`` section of configs/ppo.yaml)
for the default budget (or ``--timesteps``) and several seeds per variant, and reports per run:

- success: the share of the last 100 training episodes that picked up the target (reward
  > 0), with its Wilson 95% interval; a run has "learned" when the interval's lower end is
  above a random policy's success rate (``RANDOM_SUCCESS``, 0.131: uniform random actions
  pick up the target in 131 of 1,000 episodes, seeds 0-999; picking up the nearest object
  reaches about 0.25-0.3 without reading the mission);
- selection (last logged rollout, :mod:`rimrl.nn.selection`): entropy of the active set,
  share of the most frequent set, and the entropy at episode starts (zero state: the set is
  a function of the observation, so this is the mutual information between the two).

Variants: the defaults (``encoder auto``: the vector path, ``grid``, since round 3), the
spatial path (``--encoder grid-set``) with the query bias and without it (what rimrl did
before: the state after a reset gives every RIM the query 0), and the LSTM.
``--measure RUN ...`` reads the same figures from finished runs instead of training (e.g.
the rims runs of ``benchmarks/distractors.py``, which use the defaults).
Usage: python benchmarks/rims_defaults.py [--timesteps N] [--seeds 0 1 2 3 4]
       [--variants default spatial spatial-no-query-bias lstm] [--runs-dir DIR]
       python benchmarks/rims_defaults.py --measure RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

from rimrl.cli import main as rimrl
from rimrl.report.stats import wilson_ci

#: success rate of uniform random actions on rimrl/Pickup-v0 (1,000 episodes, seeds 0-999)
RANDOM_SUCCESS = 0.131

VARIANTS = {
    "default": ["--core", "rims"],
    "spatial": ["--core", "rims", "--encoder", "grid-set"],
    "spatial-no-query-bias": ["--core", "rims", "--encoder", "grid-set", "--set",
                              "core.query_bias=false"],
    "lstm": ["--core", "lstm"],
}
SELECTION = ("rims/set_entropy_bits", "rims/top_set_share", "rims/start_set_entropy_bits")


def train(variant: str, seed: int, timesteps: int | None, runs: Path) -> dict:
    run = runs / f"{variant}-s{seed}"
    budget = [] if timesteps is None else ["--timesteps", str(timesteps)]
    args = (["train", "ppo", "--env", "rimrl/Pickup-v0", "--seed", str(seed), "--run-dir",
             str(run), "--quiet"] + budget + VARIANTS[variant])
    if rimrl(args) != 0:
        raise SystemExit(f"training failed: {' '.join(args)}")
    return measure(run)


def measure(run: Path) -> dict:
    """Success over the last 100 training episodes and the last logged selection figures."""
    summary = json.loads((run / "train_summary.json").read_text())
    scores = summary["recent_episode_scores"]
    rows = list(csv.DictReader(open(run / "tb" / "progress.csv")))
    last = next((r for r in reversed(rows) if r.get(SELECTION[0])), {})
    _, low, _ = wilson_ci(sum(s > 0 for s in scores), len(scores))
    return {"success": sum(s > 0 for s in scores) / len(scores), "success_low": low,
            "minutes": summary["seconds"] / 60,  # the last training call's
            **{k: float(last[k]) for k in SELECTION if last.get(k)}}


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f} (n=1)" if values else "n/a"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=None,
                        help="training budget (default: the config's, 1M steps here)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                        default=["default", "spatial", "spatial-no-query-bias", "lstm"])
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--measure", type=Path, nargs="+", default=None, metavar="RUN",
                        help="report on these finished runs instead of training")
    args = parser.parse_args()
    if args.measure:
        report({"given runs": [dict(measure(run), seed=str(run)) for run in args.measure]},
               per_run=True)
        return
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="rims-defaults-"))
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    for seed in args.seeds:
        for variant in args.variants:
            r = dict(train(variant, seed, args.timesteps, runs), seed=f"seed {seed}")
            results[variant].append(r)
            print(run_line(variant, r), flush=True)
    print(f"budget {args.timesteps or 'the default'} steps, seeds {args.seeds}, runs in {runs}")
    report(results)


def run_line(variant: str, r: dict) -> str:
    parts = [f"success {r['success']:.3f} (Wilson low {r['success_low']:.3f})"]
    parts += [f"{k.split('/')[1]} {r[k]:.2f}" for k in SELECTION if k in r]
    return f"{variant} {r['seed']}: " + ", ".join(parts + [f"{r['minutes']:.1f} min"])


def report(results: dict[str, list[dict]], per_run: bool = False) -> None:
    """Per variant (and per run if asked): success, how many runs learned, selection."""
    for variant, rs in results.items():
        for r in rs if per_run else []:
            print(run_line(variant, r))
    width = max(len(v) for v in results)
    for variant, rs in results.items():
        learned = sum(r["success_low"] > RANDOM_SUCCESS for r in rs)
        print(f"{variant:<{width}} success {mean_sd([r['success'] for r in rs])}; learned in "
              f"{learned} of {len(rs)} (Wilson low > random {RANDOM_SUCCESS}); " + "; ".join(
                  f"{k.split('/')[1]} {mean_sd([r[k] for r in rs if k in r])}"
                  for k in SELECTION if any(k in r for r in rs)))


if __name__ == "__main__":
    main()
