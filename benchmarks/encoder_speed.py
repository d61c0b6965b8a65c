"""Encoder speed by memory format: the Nature CNN as SB3 computes it (``NatureCNN``) against
rimrl's ``nature`` encoder (``NatureEncoder``: channels_last), same weights.

Measured where PPO spends encoder time: forward at rollout batch size (8 envs) and forward
plus backward at training batch size (256), at 1 and 2 torch threads. Variants take turns
within each round; every figure is the median ratio over rounds with its min-max range.
Usage: python benchmarks/encoder_speed.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import NatureCNN

from rimrl.nn.encoders import NatureEncoder


def timed(model, x, train: bool, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        if train:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, torch {torch.__version__}; {args.rounds} rounds")
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch, train, repeats in ((8, False, 40), (256, True, 3)):
            torch.manual_seed(0)
            sb3 = NatureCNN(space)
            ours = NatureEncoder(space)
            ours.load_state_dict(sb3.state_dict())
            x = torch.rand(batch, 4, 84, 84)
            timed(sb3, x, train, 1), timed(ours, x, train, 1)  # warm-up (and conversion)
            ratios = []
            for _ in range(args.rounds):
                base = timed(sb3, x, train, repeats)
                ratios.append(timed(ours, x, train, repeats) / base)
            what = "forward+backward" if train else "forward"
            print(f"threads {threads}, batch {batch:>3} {what:<16} channels_last / SB3 time: "
                  f"median {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]",
                  flush=True)


if __name__ == "__main__":
    main()
