"""PPO training throughput on DemonAttack: recurrent cores against SB3's feed-forward PPO.

All variants use the same Atari envs (8, preprocessed, frame stack 4), n_steps 128, batch 256,
4 epochs, Nature CNN; only the policy differs:
  - SB3 PPO("CnnPolicy")                       (the reference: no recurrence)
  - sb3-contrib RecurrentPPO("CnnLstmPolicy")  (its defaults: LSTM 256 plus a critic LSTM)
  - rimrl ChunkedRecurrentPPO, core lstm       (configs/ppo.yaml atari defaults)
  - rimrl ChunkedRecurrentPPO, core rims       (configs/ppo.yaml atari defaults)
  (--extra-variants: lstm at RL Zoo's size 128, rims with 16-step chunks)
Each variant first trains one warm-up rollout (this absorbs torch.compile for RIMs); then the
variants take turns, one rollout (collection + 4 epochs) each, ``--rollouts`` rounds; the
median per variant is reported, and each ratio to the reference as the median of the
per-round ratios with their min-max range. Targets (issue #14): lstm >= 1.0x and rims >= 0.95x
the reference. Each line also splits the median rollout into collection and update seconds.
With ``--load N``, N busy processes share the machine during the measurement (issue #24:
no collapse under contention); ``--rollout-threads`` adds lstm and rims collecting their
rollouts on as many threads as the update (``ppo.rollout_threads=0``; the default is 1).
Usage: python benchmarks/ppo_throughput.py [--rollouts N] [--env DemonAttack] [--load 1]
       [--rollout-threads]
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import time

import torch

from rimrl.sb3.environments import make_env
from rimrl.learners.ppo import LEARNER as PPO_LEARNER
from rimrl.learners.ppo import build_model

N_ENVS, N_STEPS, BATCH, EPOCHS = 8, 128, 256, 4
# --extra-variants: the LSTM at RL Zoo's size (the pipeline's own overhead) and shorter chunks
EXTRA_VARIANTS = [("lstm", ["core.hidden_size=128"]), ("rims", ["ppo.chunk_length=16"])]


PHASES = ("collect_rollouts", "train")


def timed_phases(model) -> dict:
    """Wrap the model's collection and update methods so each call adds its seconds to the
    returned dict (keys: :data:`PHASES`): where a variant loses its time."""
    spent = dict.fromkeys(PHASES, 0.0)

    def timed(name, method):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    for name in PHASES:
        setattr(model, name, timed(name, getattr(model, name)))
    return spent


def interleaved_times(models: dict, rounds: int) -> tuple[dict, dict]:
    """Seconds per rollout of each model in each of ``rounds`` rounds, measured round-robin
    so that the machine's drift (seen here: +-30% between minutes) hits every variant
    alike; and the same split into collection and update (label -> phase -> seconds)."""
    for model in models.values():
        model.learn(N_ENVS * N_STEPS)  # warm-up rollout (+ compilation)
    spent = {label: timed_phases(model) for label, model in models.items()}
    times = {label: [] for label in models}
    phases = {label: {name: [] for name in PHASES} for label in models}
    for _ in range(rounds):
        for label, model in models.items():
            before = dict(spent[label])
            start = time.perf_counter()
            model.learn(N_ENVS * N_STEPS, reset_num_timesteps=False)
            times[label].append(time.perf_counter() - start)
            for name in PHASES:
                phases[label][name].append(spent[label][name] - before[name])
    return times, phases


def _spin() -> None:
    """A CPU-bound neighbour (``--load``): counts until terminated."""
    count = 0
    while True:
        count += 1


def rimrl_model(env_id: str, core: str, overrides: list[str]):
    cfg = PPO_LEARNER.load_config([f"env.id={env_id}", f"core.name={core}"] + overrides)
    return build_model(cfg, make_env(cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="DemonAttack")
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--skip-sb3-contrib", action="store_true")
    parser.add_argument("--extra-variants", action="store_true",
                        help="also time lstm with hidden 128 and rims with 16-step chunks")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config overrides for the rimrl variants, e.g. ppo.chunk_length=16")
    parser.add_argument("--load", type=int, default=0,
                        help="CPU-bound busy processes beside the measurement (a user's machine "
                             "is rarely idle)")
    parser.add_argument("--rollout-threads", action="store_true",
                        help="also time lstm and rims with ppo.rollout_threads=0 (the default "
                             "collects on 1 thread)")
    args = parser.parse_args()
    busy = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.load)]
    for p in busy:
        p.start()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; {args.env}, {N_ENVS} envs x {N_STEPS} steps, batch "
          f"{BATCH}, {EPOCHS} epochs, {args.rollouts} interleaved timed rollouts per variant")

    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO

    cfg = PPO_LEARNER.load_config([f"env.id={args.env}"])
    models = {"SB3 PPO CnnPolicy": PPO("CnnPolicy", make_env(cfg), n_steps=N_STEPS,
                                       batch_size=BATCH, n_epochs=EPOCHS, seed=0, device="cpu")}
    if not args.skip_sb3_contrib:
        models["sb3-contrib RecurrentPPO CnnLstmPolicy"] = RecurrentPPO(
            "CnnLstmPolicy", make_env(cfg), n_steps=N_STEPS, batch_size=BATCH,
            n_epochs=EPOCHS, seed=0, device="cpu")
    variants = [("lstm", []), ("rims", [])] + (EXTRA_VARIANTS if args.extra_variants else [])
    if args.rollout_threads:
        variants += [("lstm", ["ppo.rollout_threads=0"]), ("rims", ["ppo.rollout_threads=0"])]
    for core, extra in variants:
        label = f"rimrl core {core}" + (f" ({', '.join(extra)})" if extra else "")
        models[label] = rimrl_model(args.env, core, args.overrides + extra)
    times, phases = interleaved_times(models, args.rollouts)
    reference = times["SB3 PPO CnnPolicy"]
    ratios = {}
    for label, t in times.items():
        # speed ratio per round: reference time / this time (both measured in that round)
        per_round = [r / x for r, x in zip(reference, t)]
        ratios[label] = statistics.median(per_round)
        split = ", ".join(f"{name.split('_')[0]} {statistics.median(phases[label][name]):.2f} s"
                          for name in PHASES)
        print(f"{label:<55} {N_ENVS * N_STEPS / statistics.median(t):7.1f} steps/s  "
              f"{ratios[label]:5.2f}x [{min(per_round):.2f}-{max(per_round):.2f}]  ({split})")
    for p in busy:
        p.terminate()
    print(f"load beside the measurement: {args.load} busy process(es)")
    print(f"ratio vs feed-forward PPO (median over rounds): lstm "
          f"{ratios['rimrl core lstm']:.2f}x (target >= 1.0), rims "
          f"{ratios['rimrl core rims']:.2f}x (target >= 0.95)")


if __name__ == "__main__":
    main()
