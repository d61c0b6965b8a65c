"""Forward+backward time of rimrl.nn.RIMs against torch.nn.LSTM of the same total hidden size.

Shapes: input 512, hidden 6 x 85 = 510, at (T=128, B=2), (T=32, B=64) and (T=32, B=8), the
last being PPO's training chunk on Atari (8 envs, 32-step chunks). The LSTM and every RIMs
variant take turns within each round (``--repeats`` rounds); each ratio is the median of the
per-round ratios with its min-max range. Targets (issue #14): eager RIMs <= 2.0x and <= 1.2x
the LSTM's time; compiled <= 1.5x and <= 1.0x. Besides the module's default (thesis) variant,
the PPO defaults: the official variant on GRU dynamics compiled (Atari) and on LSTM eager
(pickup).
``--chunk`` adds an experiment (issue #24 item 4): one ``torch.compile`` graph for a whole
32-step chunk (the step unrolled 32 times, forward and backward each one graph) instead of
one graph per step; only at T=32, as its compilation grows with T.
Usage: python benchmarks/rims_speed.py [--repeats N] [--no-compile] [--threads N] [--chunk]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from rimrl.nn import RIMs
from rimrl.nn.rim_cell import from_units, to_units
from rimrl.nn.rims_settings import VARIANTS, RIMsSettings

SHAPES = [(128, 2), (32, 64), (32, 8)]
CHUNK = 32
TARGETS = {"eager": {(128, 2): 2.0, (32, 64): 1.2}, "compiled": {(128, 2): 1.5, (32, 64): 1.0}}


def _unrolled(cell, keys, inp, h, c, weight, bias):
    outputs = []
    for t in range(len(keys)):
        h, c, _ = cell.step(keys[t], inp[t], h, c, False, weight, bias)
        outputs.append(h)
    return torch.stack(outputs), h, c


class ChunkCompiledRIMs(RIMs):
    """The vector-mode forward of :class:`RIMs` (zero initial state, no episode starts) with
    the whole time loop in one compiled graph: the experiment of ``--chunk``."""

    def forward(self, x, state=None):
        T, B = x.shape[:2]
        cell = self.cell
        h = c = to_units(x.new_zeros(B, self.hidden_size), self.num_units)
        keys, inp = cell.precompute(x)
        if not hasattr(self, "_unrolled"):
            self._unrolled = torch.compile(_unrolled, dynamic=False,
                                           options={"pattern_matcher": False})
        out, h, c = self._unrolled(cell, keys.unbind(0), inp.permute(0, 2, 1, 3, 4).unbind(0),
                                   h, c, cell.recurrent_weight(), cell.recurrent_bias())
        out = out.permute(0, 2, 1, 3).reshape(T, B, self.hidden_size)
        return out, (from_units(h).unsqueeze(0), from_units(c).unsqueeze(0))


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
    parser.add_argument("--chunk", action="store_true",
                        help=f"also time one compiled graph per {CHUNK}-step chunk (T={CHUNK})")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # every module's compiled step shares one code object (RIMCell.step), and each module and
    # requires_grad pattern is one more compilation of it: past torch's default limit (8) the
    # later modules would silently run eager
    torch._dynamo.config.recompile_limit = 64
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
            # the PPO defaults since issue #22 item 7: official variant (Atari: GRU, compiled;
            # pickup: LSTM, eager)
            official = dict(num_units=6, k_active=4, settings=RIMsSettings(**VARIANTS["official"]))
            if dynamics == "gru" and not args.no_compile:
                modules["RIMs 6x85 gru official compiled"] = RIMs(
                    512, 510, dynamics="gru", compile=True, **official)
            if dynamics == "lstm":
                modules["RIMs 6x85 lstm official eager"] = RIMs(512, 510, dynamics="lstm",
                                                                **official)
            if args.chunk and T == CHUNK:
                chunk = ChunkCompiledRIMs(512, 510, num_units=6, k_active=4, dynamics=dynamics)
                reference = modules[f"RIMs 6x85 {dynamics} eager"]
                chunk.load_state_dict(reference.state_dict())
                gap = (chunk(x)[0] - reference(x)[0]).abs().max().item()
                print(f"T={T:<4} B={B:<3} RIMs 6x85 {dynamics} chunk: largest output difference "
                      f"from eager {gap:.1e}", flush=True)
                modules[f"RIMs 6x85 {dynamics} chunk"] = chunk
        for name, module in modules.items():
            start = time.perf_counter()
            for _ in range(3):  # warm-up (and compilation)
                fwd_bwd_seconds(module, x)
            if "compiled" in name or "chunk" in name:
                print(f"T={T:<4} B={B:<3} {name:<26} warm-up with compilation "
                      f"{time.perf_counter() - start:.1f} s", flush=True)
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
                if name == f"RIMs 6x85 lstm {mode}" and (T, B) in TARGETS[mode]:
                    summary.append(f"{mode} T={T},B={B}: {statistics.median(per_round):.2f}x "
                                   f"(target <= {TARGETS[mode][(T, B)]}x)")
    print("ratio RIMs (lstm dynamics) / nn.LSTM, median over rounds: " + "; ".join(summary))


if __name__ == "__main__":
    main()
