"""Forward+backward time of rimrl.nn.RIMs against torch.nn.LSTM of the same total hidden size.

Shapes: input 512, hidden 6 x 85 = 510, at (T=128, B=2) and (T=32, B=64). The LSTM and every
RIMs variant take turns within each round (``--repeats`` rounds); each ratio is the median of
the per-round ratios with its min-max range. Targets (issue #14): eager RIMs <= 2.0x and
<= 1.2x the LSTM's time; compiled <= 1.5x and <= 1.0x.
Usage: python benchmarks/rims_speed.py [--repeats N] [--no-compile] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from rimrl.nn import RIMs

SHAPES = [(128, 2), (32, 64)]
TARGETS = {"eager": {(128, 2): 2.0, (32, 64): 1.2}, "compiled": {(128, 2): 1.5, (32, 64): 1.0}}


def fwd_bwd_seconds(module: torch.nn.Module, x: torch.Tensor) -> float:
    module.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out, _ = module(x)
    out.sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled variant")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    modes = [("eager", False)] + ([] if args.no_compile else [("compiled", True)])
    summary = []
    for T, B in SHAPES:
        x = torch.randn(T, B, 512)
        modules = {"nn.LSTM(512, 510)": torch.nn.LSTM(512, 510)}
        for dynamics in ("lstm", "gru"):
            for label, compile_ in modes:
                modules[f"RIMs 6x85 {dynamics} {label}"] = RIMs(
                    512, 510, num_units=6, k_active=4, dynamics=dynamics, compile=compile_)
        for module in modules.values():
            for _ in range(3):  # warm-up (and compilation)
                fwd_bwd_seconds(module, x)
        times = {name: [] for name in modules}
        for _ in range(args.repeats):
            for name, module in modules.items():
                times[name].append(fwd_bwd_seconds(module, x))
        base = times["nn.LSTM(512, 510)"]
        for name, t in times.items():
            per_round = [a / b for a, b in zip(t, base)]
            print(f"T={T:<4} B={B:<3} {name:<26} {statistics.median(t) * 1e3:8.1f} ms  "
                  f"{statistics.median(per_round):5.2f}x "
                  f"[{min(per_round):.2f}-{max(per_round):.2f}]", flush=True)
            for mode, _ in modes:
                if name == f"RIMs 6x85 lstm {mode}":
                    summary.append(f"{mode} T={T},B={B}: {statistics.median(per_round):.2f}x "
                                   f"(target <= {TARGETS[mode][(T, B)]}x)")
    print("ratio RIMs (lstm dynamics) / nn.LSTM, median over rounds: " + "; ".join(summary))


if __name__ == "__main__":
    main()
