"""Forward+backward time of rimrl.nn.RIMs against torch.nn.LSTM of the same total hidden size.

Shapes from issue 2: input 512, hidden 6 x 85 = 510, at (T=128, B=2) and (T=32, B=64).
Targets: RIMs <= 3x and <= 1.5x the LSTM's time. Both are measured in this run; the last line
prints the ratios. Usage: python benchmarks/rims_speed.py [--repeats N] [--no-compile]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from rimrl.nn import RIMs

SHAPES = [(128, 2), (32, 64)]
TARGETS = {(128, 2): 3.0, (32, 64): 1.5}


def time_fwd_bwd(module: torch.nn.Module, T: int, B: int, repeats: int) -> float:
    """Median seconds of one forward+backward over a (T, B, 512) sequence."""
    x = torch.randn(T, B, 512)
    for _ in range(3):  # warm-up (and compilation for compiled modules)
        out, _ = module(x)
        out.sum().backward()
    times = []
    for _ in range(repeats):
        module.zero_grad(set_to_none=True)
        start = time.perf_counter()
        out, _ = module(x)
        out.sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled variant")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    variants = [("eager", False)] + ([] if args.no_compile else [("compiled", True)])
    ratios = {}
    for T, B in SHAPES:
        lstm = torch.nn.LSTM(512, 510)
        base = time_fwd_bwd(lstm, T, B, args.repeats)
        print(f"T={T:<4} B={B:<3} nn.LSTM(512, 510)            {base * 1e3:8.1f} ms")
        for dynamics in ("lstm", "gru"):
            for label, compile_ in variants:
                rims = RIMs(512, 510, num_units=6, k_active=4, dynamics=dynamics,
                            compile=compile_)
                t = time_fwd_bwd(rims, T, B, args.repeats)
                ratios[(T, B, dynamics, label)] = t / base
                print(f"T={T:<4} B={B:<3} RIMs 6x85 {dynamics:<4} {label:<9}     "
                      f"{t * 1e3:8.1f} ms  {t / base:5.2f}x")
    best = "compiled" if not args.no_compile else "eager"
    parts = []
    for T, B in SHAPES:
        r = ratios[(T, B, "lstm", best)]
        parts.append(f"T={T},B={B}: {r:.2f}x (target <= {TARGETS[(T, B)]}x)")
    print(f"ratio RIMs({best}, lstm dynamics) / nn.LSTM: " + "; ".join(parts))


if __name__ == "__main__":
    main()
