"""Copying task (thesis 8.4.1): RIMs vs LSTM cross entropy at gaps 50 and 200 after a fixed budget.

Trains each model with ``rimrl.tasks.copying.train_copy`` (the code behind ``rimrl train
copy``) on gap 50 and evaluates the copied part at gaps 50 and 200. The thesis reports CE 0.00
at gap 200 for RIMs (K=6, k_A=4, hidden 600) against 4.32 for an LSTM(300), with no CPU
budget stated; here the budget is ``--updates`` updates of 64 sequences each.
Usage: python benchmarks/copying.py [--updates N] [--seeds 0 1] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rimrl.config import config_dir, load_config
from rimrl.runs import new_run_dir
from rimrl.tasks.copying import CopyConfig, train_copy

MODELS = {
    "RIMs 6x100 k_A=4": ["core.name=rims", "core.hidden_size=600", "core.compile=true"],
    "LSTM 300": ["core.name=lstm", "core.hidden_size=300"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="copying-bench-"))
    rows = []
    for label in args.models:
        for seed in args.seeds:
            overrides = MODELS[label] + [f"train.updates={args.updates}", f"seed={seed}",
                                         "train.eval_every=500", "train.checkpoint_every=500"]
            config = load_config(CopyConfig, [config_dir() / "copy.yaml"], overrides)
            run_dir = new_run_dir(runs, f"{config.core.name}-s{seed}")
            start = time.perf_counter()
            summary = train_copy(config, run_dir, progress=False)
            wall = time.perf_counter() - start
            gaps = summary["gaps"]
            rows.append((label, seed, gaps["50"]["ce"], gaps["200"]["ce"], wall))
            print(f"{label:<18} seed {seed}: CE gap 50 {gaps['50']['ce']:.3f}, "
                  f"gap 200 {gaps['200']['ce']:.3f}, acc gap 200 {gaps['200']['accuracy']:.3f}, "
                  f"{wall / 60:.1f} min ({run_dir})", flush=True)
    print(f"budget: {args.updates} updates x 64 sequences, train gap 50")
    print(f"{'model':<18} {'seed':>4} {'CE@50':>7} {'CE@200':>7} {'wall min':>9}")
    for label, seed, ce50, ce200, wall in rows:
        print(f"{label:<18} {seed:>4} {ce50:>7.3f} {ce200:>7.3f} {wall / 60:>9.1f}")
    by_model = {label: [r[3] for r in rows if r[0] == label] for label in args.models}
    means = {label: sum(v) / len(v) for label, v in by_model.items()}
    print("mean CE at gap 200: " + "; ".join(f"{k}: {v:.3f}" for k, v in means.items())
          + " (thesis: RIMs 0.00, LSTM(300) 4.32)")


if __name__ == "__main__":
    main()
