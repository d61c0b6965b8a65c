"""PPO training throughput on DemonAttack: recurrent cores against SB3's feed-forward PPO.

All variants use the same Atari envs (8, preprocessed, frame stack 4), n_steps 128, batch 256,
4 epochs, Nature CNN; only the policy differs:
  - SB3 PPO("CnnPolicy")                       (the reference: no recurrence)
  - sb3-contrib RecurrentPPO("CnnLstmPolicy")  (its defaults: LSTM 256 plus a critic LSTM)
  - rimrl ChunkedRecurrentPPO, core lstm       (configs/ppo.yaml atari defaults)
  - rimrl ChunkedRecurrentPPO, core rims       (configs/ppo.yaml atari defaults)
Each variant first trains one warm-up rollout (this absorbs torch.compile for RIMs), then is
timed over ``--rollouts`` rollouts. Targets: lstm >= 0.95x and rims >= 0.85x the reference.
Usage: python benchmarks/ppo_throughput.py [--rollouts N] [--env DemonAttack]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from rimrl.cli.ppo import build_model, make_env
from rimrl.cli.ppo_config import PPORunConfig
from rimrl.config import config_dir, load_config

N_ENVS, N_STEPS, BATCH, EPOCHS = 8, 128, 256, 4


def steps_per_second(model, rollouts: int) -> float:
    model.learn(N_ENVS * N_STEPS)  # warm-up rollout (+ compilation)
    start = time.perf_counter()
    model.learn(rollouts * N_ENVS * N_STEPS, reset_num_timesteps=False)
    return rollouts * N_ENVS * N_STEPS / (time.perf_counter() - start)


def rimrl_model(env_id: str, core: str, overrides: list[str]):
    cfg = load_config(PPORunConfig, [config_dir() / "ppo.yaml"],
                      [f"env.id={env_id}", f"core.name={core}"] + overrides, section="atari")
    return build_model(cfg, make_env(cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="DemonAttack")
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--skip-sb3-contrib", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config overrides for the rimrl variants, e.g. ppo.chunk_length=16")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; {args.env}, {N_ENVS} envs x {N_STEPS} steps, batch "
          f"{BATCH}, {EPOCHS} epochs, {args.rollouts} timed rollouts")

    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO

    cfg = load_config(PPORunConfig, [config_dir() / "ppo.yaml"], [f"env.id={args.env}"],
                      section="atari")
    results = {}
    results["SB3 PPO CnnPolicy"] = steps_per_second(PPO(
        "CnnPolicy", make_env(cfg), n_steps=N_STEPS, batch_size=BATCH, n_epochs=EPOCHS,
        seed=0, device="cpu"), args.rollouts)
    print(f"{'SB3 PPO CnnPolicy':<40} {results['SB3 PPO CnnPolicy']:7.1f} steps/s", flush=True)
    if not args.skip_sb3_contrib:
        label = "sb3-contrib RecurrentPPO CnnLstmPolicy"
        results[label] = steps_per_second(RecurrentPPO(
            "CnnLstmPolicy", make_env(cfg), n_steps=N_STEPS, batch_size=BATCH,
            n_epochs=EPOCHS, seed=0, device="cpu"), args.rollouts)
        print(f"{label:<40} {results[label]:7.1f} steps/s", flush=True)
    for core in ("lstm", "rims"):
        label = f"rimrl ChunkedRecurrentPPO core {core}"
        results[label] = steps_per_second(rimrl_model(args.env, core, args.overrides),
                                          args.rollouts)
        print(f"{label:<40} {results[label]:7.1f} steps/s", flush=True)
    ref = results["SB3 PPO CnnPolicy"]
    for label, value in results.items():
        print(f"{label:<40} {value / ref:5.2f}x")
    lstm = results["rimrl ChunkedRecurrentPPO core lstm"] / ref
    rims = results["rimrl ChunkedRecurrentPPO core rims"] / ref
    print(f"ratio vs feed-forward PPO: lstm {lstm:.2f}x (target >= 0.95), "
          f"rims {rims:.2f}x (target >= 0.85)")


if __name__ == "__main__":
    main()
