"""Pickup with distractors (thesis 8.4.2, Fig. 4): LSTM vs RIMs success per distractor split.

Trains ``rimrl train ppo --env rimrl/Pickup-v1`` (``--env``) with ``--core lstm`` and ``--core rims``
(both with the default ``grid`` encoder; ``--set policy.encoder=grid-set`` gives RIMs the
set path) for a fixed budget and several seeds, with the defaults and the ``grid`` section
of ``configs/ppo.yaml``, then runs ``rimrl evaluate RUN --distractors all``. Prints success per split
(mean ± sd over seeds, and each run's Wilson interval over its episodes), the
differences RIMs - LSTM, RIMs - none and LSTM - none per split, paired by seed, with a 95%
Student-t interval and a sign-flip p-value, and training steps per second. The last line compares the speed
with torch-ac's MiniGrid PPO (~850 frames/s; targets: lstm >= 1500, rims >= 1000).
Runs already in ``--runs-dir`` are kept: an interrupted or shorter one is resumed, an
evaluation with the same episode count is read back; so a long benchmark can be spread
over several sessions (or cores: ``--cores lstm`` in one process, ``--cores rims`` in
another, then both together to print the paired table).
``--deterministic`` evaluates greedy actions instead of sampled ones (an evaluation in the
other mode is not read back but redone, and replaces the run's ``distractors.json``).
Usage: python benchmarks/distractors.py [--timesteps N] [--seeds 0 1 2] [--episodes 200]
       [--runs-dir DIR] [--cores lstm rims] [--set KEY=VALUE] [--deterministic]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rimrl.envs.pickup import SPLITS
from rimrl.cli import main as rimrl
from rimrl.runs import DISTRACTORS_FILE, SUMMARY_FILE

TORCH_AC_FPS = 850.0


def train_and_evaluate(core: str, seed: int, timesteps: int, episodes: int, runs: Path,
                       extra: list[str], deterministic: bool = False,
                       env: str = "rimrl/Pickup-v1") -> dict:
    """Train (or finish training) and evaluate one run under ``runs/<core>-s<seed>``.

    What a run directory already holds is kept: an interrupted or shorter run is resumed to
    ``timesteps``, and an evaluation with the same episode count is read, not repeated, so
    the benchmark can be stopped and started again (across sessions) with the same
    ``--runs-dir``."""
    root = runs / f"{core}-s{seed}"
    found = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(found) > 1:
        raise SystemExit(f"{root} holds {len(found)} runs; keep one")
    fresh = not found  # steps/s only for a run trained start to end by this call
    if not found:
        args = ["train", "ppo", "--env", env, "--core", core, "--seed",
                str(seed), "--timesteps", str(timesteps), "--runs-dir", str(root),
                "--no-progress"] + extra
        if rimrl(args) != 0:
            raise SystemExit(f"training failed: {' '.join(args)}")
        (run,) = [p for p in root.iterdir() if p.is_dir()]
    else:
        (run,) = found
        done = run / SUMMARY_FILE
        if not done.exists() or json.loads(done.read_text())["timesteps"] < timesteps:
            args = ["train", "ppo", "--resume", str(run), "--timesteps", str(timesteps),
                    "--no-progress"]
            if rimrl(args) != 0:
                raise SystemExit(f"resuming failed: {' '.join(args)}")
            (run / DISTRACTORS_FILE).unlink(missing_ok=True)  # evaluated an earlier model
    summary = json.loads((run / SUMMARY_FILE).read_text())
    evaluated = run / DISTRACTORS_FILE
    wanted = {"episodes_per_split": episodes, "deterministic": deterministic}
    found_eval = json.loads(evaluated.read_text()) if evaluated.exists() else {}
    if any(found_eval.get(k) != v for k, v in wanted.items()):
        if rimrl(["evaluate", str(run), "--distractors", "all", "--episodes", str(episodes)]
                 + ["--deterministic"] * deterministic) != 0:
            raise SystemExit(f"evaluation failed for {run}")
    result = json.loads(evaluated.read_text())
    speed = timesteps / summary["seconds"] if fresh else None
    return {"run": str(run), "seed": seed, "steps_per_second": speed,
            "success": {s: result["splits"][s]["success_rate"] for s in SPLITS},
            "wilson": {s: result["splits"][s]["success_ci95"] for s in SPLITS}}


def difference(a: list[dict], b: list[dict], split: str) -> dict:
    """Mean ``a - b`` success over the seeds both cores ran, paired by seed, with a 95%
    Student-t interval (bootstrap from 10 seeds) and a sign-flip p-value
    (:func:`rimrl.report.stats.paired_difference`)."""
    from rimrl.report.stats import paired_difference

    by_seed = {r["seed"]: r["success"][split] for r in b}
    pairs = [(r["success"][split], by_seed[r["seed"]]) for r in a if r["seed"] in by_seed]
    return paired_difference([x for x, _ in pairs], [y for _, y in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=150_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--cores", nargs="+", default=["lstm", "rims"],
                        help="lstm, gru, rims, none (the memoryless floor)")
    parser.add_argument("--env", default="rimrl/Pickup-v1",
                        help="rimrl/Pickup-v1 (leak-free splits) or rimrl/Pickup-v0 (the old "
                             "results)")
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--deterministic", action="store_true",
                        help="evaluate greedy actions (default: sampled, as in training)")
    args = parser.parse_args()
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="distractors-bench-"))
    extra = [x for o in args.overrides for x in ("--set", o)]
    start = time.perf_counter()
    results = {core: [] for core in args.cores}
    for seed in args.seeds:
        for core in args.cores:
            r = train_and_evaluate(core, seed, args.timesteps, args.episodes, runs, extra,
                                   args.deterministic, args.env)
            results[core].append(r)
            speed = (f"{r['steps_per_second']:.0f} steps/s" if r["steps_per_second"]
                     else "resumed or read back (no steps/s)")
            print(f"{core} seed {seed}: {speed}; success "
                  + ", ".join(f"{s} {v:.3f} [{r['wilson'][s][0]:.3f}, {r['wilson'][s][1]:.3f}]"
                              for s, v in r["success"].items()), flush=True)
    print(f"budget {args.timesteps} steps per run, seeds {args.seeds}, {args.episodes} "
          f"{'greedy' if args.deterministic else 'sampled'} episodes per split; total {(time.perf_counter() - start) / 60:.1f} min; runs: {runs}")
    print(f"{'core':<6} " + " ".join(f"{s:>17}" for s in SPLITS))
    for core, rs in results.items():
        cells = []
        for split in SPLITS:
            values = [r["success"][split] for r in rs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} +- {spread:.3f}")
        print(f"{core:<6} " + " ".join(f"{c:>17}" for c in cells))
    pairs = [(x, y) for x, y in (("rims", "lstm"), ("rims", "none"), ("lstm", "none"))
             if {x, y} <= set(results)]
    for x, y in pairs if len(args.seeds) > 1 else ():
        diffs = {split: difference(results[x], results[y], split) for split in SPLITS}
        excluding = sum(d["ci95"][0] > 0 or d["ci95"][1] < 0 for d in diffs.values())
        print(f"{x} - {y} success, paired over seeds [95% t-interval] (sign-flip p); "
              f"{excluding} of {len(SPLITS)} intervals exclude 0: " + "; ".join(
                  f"{split} {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] "
                  f"(p {d['p']:.2f})" for split, d in diffs.items()))
    speed = {core: statistics.mean(r["steps_per_second"] for r in rs if r["steps_per_second"])
             for core, rs in results.items() if any(r["steps_per_second"] for r in rs)}
    print("training steps/s: " + ("; ".join(
        f"{core} {v:.0f} ({v / TORCH_AC_FPS:.2f}x torch-ac's ~850; target "
        f"{'1500' if core == 'lstm' else '1000'})" for core, v in speed.items())
        or "n/a (every run resumed or read back)"))


if __name__ == "__main__":
    main()
