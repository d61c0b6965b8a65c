"""Copying task (thesis 8.4.1, Table 1): RIMs vs LSTM cross entropy at gaps 50, 200 and 400.

Trains each model with ``rimrl train copy`` on gap 50 and evaluates the copied part at every
gap of ``--gaps``. The thesis reports CE 0.00 at gap 200 for RIMs (K=6, k_A=4, hidden 600)
against 4.32 for an LSTM(300), with no CPU budget stated; here the budget is ``--updates``
updates of 64 sequences each. Seeds run in the outer loop, so a run cut short still holds
matched pairs. Each run lives in ``--runs-dir``/<folder>-s<seed>/ (folder: ``MODELS``); a run
found there is kept: an interrupted one is resumed (``rimrl train copy --resume``; it
checkpoints every 500 updates) and a finished one is read back, so the benchmark can be spread
over sessions.
Wall time is the training time summed over the calls that trained a run.
Usage: python benchmarks/copying.py [--updates N] [--seeds 0 1 2] [--gaps 50 200 400]
       [--runs-dir DIR] [--models "RIMs official" "LSTM 300"]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from rimrl.cli import main as rimrl
from rimrl.runs import RESULTS_FILE

#: label -> (its folder under --runs-dir, without the seed; its overrides)
MODELS = {
    "RIMs 6x100 k_A=4": ("rims", ["core.name=rims", "core.hidden_size=600",
                                  "core.compile=true"]),
    # the official code's communication and input reads (issue #22 item 6)
    "RIMs official": ("rims-official", ["core.name=rims", "core.hidden_size=600",
                                        "core.compile=true", "core.variant=official"]),
    "LSTM 300": ("lstm", ["core.name=lstm", "core.hidden_size=300"]),
}


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f} (n=1)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} (n={len(values)})"


def minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f}"


def train_run(folder: str, seed: int, updates: int, overrides: list[str], runs: Path) -> dict:
    """Train (or finish, or read back) the run under ``runs/<folder>-s<seed>``; its results."""
    root = runs / f"{folder}-s{seed}"
    found = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(found) > 1:
        raise SystemExit(f"{root} holds {len(found)} runs; keep one")
    if not found:
        args = ["train", "copy", "--runs-dir", str(root), "--no-progress"] + [
            x for o in overrides for x in ("--set", o)]
    else:
        done = found[0] / RESULTS_FILE
        if done.exists() and json.loads(done.read_text())["updates"] >= updates:
            return json.loads(done.read_text())
        args = ["train", "copy", "--resume", str(found[0]), "--updates", str(updates),
                "--no-progress"]
    if rimrl(args) != 0:
        raise SystemExit(f"training failed: rimrl {' '.join(args)}")
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return json.loads((run / RESULTS_FILE).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--gaps", type=int, nargs="+", default=[50, 200, 400])
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="copying-bench-"))
    gaps = [str(g) for g in args.gaps]
    rows = []
    for seed in args.seeds:
        for label in args.models:
            folder, settings = MODELS[label]
            overrides = settings + [
                f"train.updates={args.updates}", f"seed={seed}", "train.eval_every=500",
                "train.checkpoint_every=500", f"task.eval_gaps=[{', '.join(gaps)}]"]
            summary = train_run(folder, seed, args.updates, overrides, runs)
            wall = summary.get("seconds")  # None: trained before results.json kept it
            rows.append((label, seed, summary["gaps"], wall))
            print(f"{label:<18} seed {seed}: " + ", ".join(
                f"gap {g} CE {summary['gaps'][g]['ce']:.3f} acc {summary['gaps'][g]['accuracy']:.3f}"
                for g in gaps) + f", {minutes(wall)} min", flush=True)
    print(f"budget: {args.updates} updates x 64 sequences, train gap 50")
    print(f"{'model':<18} {'seed':>4} " + " ".join(f"{'CE@' + g:>8}" for g in gaps)
          + " " + " ".join(f"{'acc@' + g:>8}" for g in gaps) + f" {'wall min':>9}")
    for label, seed, results, wall in rows:
        print(f"{label:<18} {seed:>4} " + " ".join(f"{results[g]['ce']:>8.3f}" for g in gaps)
              + " " + " ".join(f"{results[g]['accuracy']:>8.3f}" for g in gaps)
              + f" {minutes(wall):>9}")
    for label in args.models:
        mine = [r for r in rows if r[0] == label]
        print(f"{label}: " + "; ".join(
            f"gap {g} CE {mean_sd([r[2][g]['ce'] for r in mine])}, "
            f"acc {mean_sd([r[2][g]['accuracy'] for r in mine])}" for g in gaps)
            + f"; wall {mean_sd(walls) if (walls := [r[3] / 60 for r in mine if r[3]]) else 'n/a'}"
            " min")
    print("thesis Table 1, CE at gap 200: RIMs 0.00, LSTM(300) 4.32")


if __name__ == "__main__":
    main()
