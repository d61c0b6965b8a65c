"""The main job as a new user types it: ``rimrl train ppo --env DemonAttack --core rims`` on
its default budget, then the same with ``--core lstm``, then ``rimrl compare`` of the two.

Measures, per core: wall time of the whole command (start-up, torch.compile, training,
saving), finished games in the final summary and in ``tb/progress.csv`` (the
``rollout/games`` column), the last logged raw score; then whether ``rimrl compare`` draws a
learning curve for both. The reference is the target of 15 minutes per default run on 2 CPU
cores; the last line prints the rims run's wall time as a ratio of it (<= 1.0 meets it).

Usage: python benchmarks/default_run.py [--cores rims lstm] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 15 * 60


def run_default(core: str, runs_dir: Path) -> dict:
    run_dir = runs_dir / f"default-{core}"
    command = ["rimrl", "train", "ppo", "--env", "DemonAttack", "--core", core,
               "--run-dir", str(run_dir)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("steps ")]
    summary = json.loads((run_dir / "train_summary.json").read_text())
    with open(run_dir / "tb" / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    games_csv = max((int(float(r["rollout/games"])) for r in rows if r.get("rollout/games")),
                    default=0)
    scores = [float(r["rollout/ep_rew_mean"]) for r in rows if r.get("rollout/ep_rew_mean")]
    return {"core": core, "seconds": seconds, "timesteps": summary["timesteps"],
            "games_summary": len(summary["recent_episode_scores"]), "games_csv": games_csv,
            "score_rows": len(scores), "last_score": scores[-1] if scores else None,
            "progress_lines": len(lines), "run_dir": str(run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", nargs="+", default=["rims", "lstm"])
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temp dir)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="rimrl-default-"))
    print(f"{platform.node()}, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}; runs in {root}")
    results = []
    for core in args.cores:
        r = run_default(core, root)
        results.append(r)
        print(f"{core}: {r['seconds'] / 60:.1f} min for {r['timesteps']} steps; "
              f"{r['games_summary']} games in the summary, {r['games_csv']} in progress.csv; "
              f"{r['score_rows']} logged scores, last {r['last_score']}; "
              f"{r['progress_lines']} progress lines")
    compared = subprocess.run(["rimrl", "compare", str(root), "--quiet"], capture_output=True,
                              text=True)
    curves = sorted((root / "report" / "figures").glob("curve_*.png"))
    print(f"rimrl compare: exit {compared.returncode}, curve figures: "
          f"{[p.name for p in curves]}")
    print(compared.stdout.strip())
    first = results[0]
    print(f"{first['core']} default run wall time / 15-minute target: "
          f"{first['seconds'] / TARGET_SECONDS:.2f}")


if __name__ == "__main__":
    main()
