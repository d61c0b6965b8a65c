"""Does PPO act and learn with one policy? The first minibatch of the first update epoch,
before any optimiser step, against the log-probabilities stored at collection.

For each seed, one rollout of ``rimrl train ppo --env ENV --core rims`` as configured (the
default: RIMs without dropout), then the same with the official code's dropout (0.1 on the
read and on the communication write) switched back on in the built model, which is what PPO
ran before it refused dropout. Prints, per variant, the largest |log-prob difference|, the
approx KL and the clip fraction that the first minibatch measures although the policy has
not changed yet (all three are 0 for one policy), and last the difference of the two.

With ``--runs RUN...`` the models are trained runs' ``model.zip`` instead of fresh ones (a
trained policy reads its input more sharply, so dropout moves it more).

Usage: python benchmarks/one_policy.py [--env rimrl/Pickup-v1] [--seeds 0 1 2] [--set K=V]
       [--runs RUN ...]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Optional

import torch

from rimrl.learners import get
from rimrl.learners.base import saved_config
from rimrl.sb3.environments import make_env
from rimrl.learners.ppo import build_model, load_model
from rimrl.runs import MODEL_ZIP


def first_minibatch(overrides: list[str], dropout: float, run: Optional[Path] = None) -> dict:
    """One rollout and the first minibatch's view of it, from a fresh model or, with ``run``,
    from that run's trained ``model.zip``."""
    if run is None:
        cfg = get("ppo").load_config(overrides)
        model = build_model(cfg, make_env(cfg))
    else:
        cfg = saved_config(get("ppo").config_class(), run)
        model = load_model(run / MODEL_ZIP, make_env(cfg))
    if dropout:
        for core in (model.policy.core_actor, model.policy.core_critic):
            if core is not None:
                core.cell.input_dropout = core.cell.comm_dropout = dropout
    seen = {}
    buffer_get, evaluate = model.rollout_buffer.get, model.policy.evaluate_actions

    def recording_get(*args, **kwargs):
        for batch in buffer_get(*args, **kwargs):
            seen.setdefault("batch", batch)
            yield batch

    def recording_evaluate(*args, **kwargs):
        values, log_prob, entropy = evaluate(*args, **kwargs)
        if "gap" not in seen:
            with torch.no_grad():
                diff = log_prob - seen["batch"].old_log_prob
                ratio = torch.exp(diff)
                clip = model.clip_range(1.0)
                seen.update(gap=diff.abs().max().item(),
                            kl=((ratio - 1) - diff).mean().item(),
                            clip=((ratio - 1).abs() > clip).float().mean().item())
        return values, log_prob, entropy

    model.rollout_buffer.get = recording_get
    model.policy.evaluate_actions = recording_evaluate
    model.learn(total_timesteps=cfg.ppo.n_steps * cfg.env.n_envs, reset_num_timesteps=True)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="rimrl/Pickup-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--runs", type=Path, nargs="+", default=None,
                        help="trained RIMs runs (no dropout) to measure instead of fresh "
                             "models, one per seed")
    args = parser.parse_args()
    base = [f"env.id={args.env}", "core.name=rims"] + args.overrides
    rows = {}
    for label, dropout in (("one policy (no dropout, default)", 0.0),
                           ("dropout 0.1 (before the fix)", 0.1)):
        runs = ([first_minibatch([], dropout, run) for run in args.runs] if args.runs else
                [first_minibatch(base + [f"seed={seed}"], dropout) for seed in args.seeds])
        rows[label] = {k: statistics.mean(r[k] for r in runs) for k in ("gap", "kl", "clip")}
        what = f"{len(args.runs)} trained runs" if args.runs else f"seeds {args.seeds}"
        print(f"{label}: first minibatch before any step, mean over {what}: "
              f"max |log-prob diff| {rows[label]['gap']:.2e}, approx KL "
              f"{rows[label]['kl']:.2e}, clip fraction {rows[label]['clip']:.3f}", flush=True)
    one, two = rows.values()
    print(f"dropout - one policy, at the first minibatch before any step: approx KL "
          f"{two['kl'] - one['kl']:+.4f}, clip fraction {two['clip'] - one['clip']:+.3f} "
          f"(PPO reads both as the size of its update)")


if __name__ == "__main__":
    main()
