"""The RIMs variants side by side on finished pickup runs (issue #22, items 2 and 3): state
size and update size over training, success per split, the memory gain and per-RIM drops.

Reads run directories only (train them with ``benchmarks/distractors.py``, probe them with
``rimrl evaluate RUN --probe memoryless --distractors all`` and ``--probe ablate-rims``):
  - ``core/state_abs_max`` (the largest |h| of a rollout) and ``train/approx_kl`` from
    ``tb/progress.csv``: the running maximum at 100k, 250k, 500k and 1M steps, and the median
    KL over training, mean over seeds (and the largest single value);
  - success per split from ``distractors.json`` (mean ± sd over seeds);
  - the memory gain per split (normal - memoryless success, ``probe_memoryless.json``) and
    the largest per-RIM drop on the training split (``probe_ablate_rims.json``).
Usage: python benchmarks/rims_variants.py LABEL=GLOB [LABEL=GLOB ...]
  e.g. official='/work/bench/official/rims-s*/*/' thesis='/work/bench/thesis/rims-s*/*/'
"""

from __future__ import annotations

import csv
import glob
import json
import statistics
import sys
from pathlib import Path

MARKS = (100_000, 250_000, 500_000, 1_000_000)
SPLITS = ("train", "novel-color", "novel-type", "more", "novel")


def series(run: Path, column: str) -> list[tuple[int, float]]:
    with open(run / "tb" / "progress.csv", newline="") as handle:
        return [(int(float(r["time/total_timesteps"])), float(r[column]))
                for r in csv.DictReader(handle) if r.get(column)]


def running_max(points: list[tuple[int, float]], step: int):
    values = [v for s, v in points if s <= step]
    return max(values) if values else None


def mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def describe(label: str, runs: list[Path]) -> None:
    state = [series(r, "core/state_abs_max") for r in runs]
    kl = [series(r, "train/approx_kl") for r in runs]
    steps = [s[-1][0] if s else 0 for s in state]
    print(f"\n{label}: {len(runs)} runs, {min(steps):,}-{max(steps):,} steps")
    cells = []
    for mark in MARKS:
        values = [v for v in (running_max(s, mark) for s in state) if v is not None]
        cells.append(f"{mark // 1000}k {statistics.mean(values):.3g}" if values else "")
    print("  largest |h| so far (mean over seeds): " + ", ".join(c for c in cells if c)
          + f"; largest of any run {max(v for s in state for _, v in s):.3g}")
    medians = [statistics.median(v for _, v in k) for k in kl if k]
    print(f"  approx_kl: median over training {statistics.mean(medians):.3g} (mean over seeds), "
          f"largest {max(v for k in kl for _, v in k):.3g}")
    evals = [read_json(r / "distractors.json") for r in runs]
    evals = [e for e in evals if e]
    if evals:
        print("  success: " + "; ".join(
            f"{s} {mean_sd([e['splits'][s]['success_rate'] for e in evals])}"
            for s in SPLITS) + f" ({len(evals)} runs, {evals[0]['episodes_per_split']} "
            "episodes per split)")
    probes = [p for p in (read_json(r / "probe_memoryless.json") for r in runs) if p]
    if probes:
        print("  memory gain (normal - memoryless): " + "; ".join(
            f"{s} {mean_sd([p['rows'][s]['memoryless']['drop'] for p in probes])}"
            for s in SPLITS if all(s in p["rows"] for p in probes)) + f" ({len(probes)} runs)")
    for r in runs:
        p = read_json(r / "probe_ablate_rims.json")
        if p is None:
            continue
        row = next(iter(p["rows"].values()))
        drops = {k: v["drop"] for k, v in row.items() if k != "normal"}
        worst = max(drops, key=drops.get)
        print(f"  per-RIM drop ({r.parent.name}): " + ", ".join(
            f"{k.split()[-1]} {v:+.3f}" for k, v in drops.items())
            + f"; largest: {worst} ({drops[worst]:+.3f})")


def main() -> None:
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        raise SystemExit(__doc__.split("Usage: ")[1])
    for arg in sys.argv[1:]:
        label, pattern = arg.split("=", 1)
        runs = sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "tb").is_dir())
        if not runs:
            raise SystemExit(f"{label}: no run directories match {pattern}")
        describe(label, runs)


if __name__ == "__main__":
    main()
