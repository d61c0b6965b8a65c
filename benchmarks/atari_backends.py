"""Atari training envs, ``env.backend: sb3`` against ``ale-vector`` (issue #24 item 2).

Two figures per backend, measured in turns so that the machine's drift hits both alike:
  1. env steps/s alone: ``--n-envs`` games, random actions, as a PPO rollout steps them
     (agent steps over all envs per second; 4 frames each);
  2. ``rimrl train ppo`` steps/s: one PPO rollout (collection + 4 epochs) of the Atari
     defaults with the given core, built by the same code as the CLI.
The last line is the ratio ale-vector / sb3 of each figure (median over rounds).
Usage: python benchmarks/atari_backends.py [--env DemonAttack] [--n-envs 8] [--rounds 3]
       [--core lstm] [--steps 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from rimrl.sb3.environments import make_env
from rimrl.learners.ppo import LEARNER as PPO_LEARNER
from rimrl.learners.ppo import build_model

BACKENDS = ("sb3", "ale-vector")


def config(backend: str, args):
    return PPO_LEARNER.load_config([f"env.id={args.env}", f"env.n_envs={args.n_envs}",
                                    f"env.backend={backend}", f"core.name={args.core}"])


def env_speed(env, steps: int, rng) -> float:
    """Agent steps (over all envs) per second with random actions."""
    env.reset()
    n = env.num_envs
    start = time.perf_counter()
    for _ in range(steps // n):
        env.step(rng.integers(env.action_space.n, size=n))
    return (steps // n) * n / (time.perf_counter() - start)


def rollout_speed(model) -> float:
    """Agent steps per second of one PPO rollout and its update."""
    steps = model.n_steps * model.n_envs
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="DemonAttack")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--core", default="lstm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000, help="env steps per env figure")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); {args.env}, "
          f"{args.n_envs} envs, core {args.core}")
    rng = np.random.default_rng(0)
    envs = {b: make_env(config(b, args)) for b in BACKENDS}
    models = {b: build_model(config(b, args), envs[b]) for b in BACKENDS}
    for model in models.values():  # warm-up rollout (allocations, first-call costs)
        rollout_speed(model)
    env_fig = {b: [] for b in BACKENDS}
    train_fig = {b: [] for b in BACKENDS}
    for r in range(args.rounds):
        for b in BACKENDS:
            env_fig[b].append(env_speed(envs[b], args.steps, rng))
        for b in BACKENDS:
            train_fig[b].append(rollout_speed(models[b]))
        print(f"round {r + 1}: env " + ", ".join(f"{b} {env_fig[b][-1]:.0f}" for b in BACKENDS)
              + " steps/s; train " + ", ".join(f"{b} {train_fig[b][-1]:.0f}" for b in BACKENDS)
              + " steps/s", flush=True)
    for b in BACKENDS:
        print(f"{b:>10}: env alone {statistics.median(env_fig[b]):.0f} steps/s, "
              f"rimrl train ppo {statistics.median(train_fig[b]):.0f} steps/s")
    ratio_env = statistics.median(a / s for a, s in zip(env_fig["ale-vector"], env_fig["sb3"]))
    ratio_train = statistics.median(a / s for a, s in zip(train_fig["ale-vector"],
                                                          train_fig["sb3"]))
    print(f"ratio ale-vector / sb3: env alone {ratio_env:.2f}x, train {ratio_train:.2f}x")


if __name__ == "__main__":
    main()
