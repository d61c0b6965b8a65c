"""What ChunkedRecurrentPPO adds over sb3-contrib's plain RecurrentPPO, in speed: the same
policy (rimrl's RecurrentCorePolicy with the run config's core and encoder), the same env,
rollout, minibatch and epochs; only the algorithm class differs. Plain RecurrentPPO splits the
rollout at episode starts, pads every piece and loops over time steps in Python for each
padded minibatch; ChunkedRecurrentPPO trains fixed 32-step chunks from their stored states.

The two take turns, one rollout (collection + update epochs) each, ``--rounds`` rounds after
a warm-up rollout; prints each one's steps/s (median) and, last, the speed ratio chunked /
plain (median over rounds, min-max).
Usage: python benchmarks/chunked_vs_plain.py [--env rimrl/Pickup-v0] [--core lstm] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    from sb3_contrib import RecurrentPPO

    from rimrl.sb3.environments import make_env
    from rimrl.learners.ppo import LEARNER, build_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="rimrl/Pickup-v0")
    parser.add_argument("--core", default="lstm")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cfg = LEARNER.load_config([f"env.id={args.env}", f"core.name={args.core}"])
    chunked = build_model(cfg, make_env(cfg))
    p = cfg.ppo
    plain = RecurrentPPO(type(chunked.policy), make_env(cfg), n_steps=p.n_steps,
                         batch_size=p.batch_size, n_epochs=p.n_epochs,
                         learning_rate=p.learning_rate, clip_range=p.clip_range,
                         ent_coef=p.ent_coef, gamma=p.gamma, gae_lambda=p.gae_lambda,
                         seed=cfg.seed, policy_kwargs=chunked.policy_kwargs)
    models = {"ChunkedRecurrentPPO": chunked, "RecurrentPPO (plain)": plain}
    steps = cfg.env.n_envs * p.n_steps
    print(f"{args.env}, core {args.core}, {torch.get_num_threads()} threads, {steps} steps per "
          f"rollout, batch {p.batch_size}, {p.n_epochs} epochs, {args.rounds} rounds")
    times = {label: [] for label in models}
    for r in range(args.rounds + 1):
        for label, model in models.items():
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=not r)
            if r:  # round 0 warms up
                times[label].append(time.perf_counter() - start)
    for label, t in times.items():
        print(f"{label:<22} {steps / statistics.median(t):8.1f} steps/s")
    ratios = [b / a for a, b in zip(times["ChunkedRecurrentPPO"], times["RecurrentPPO (plain)"])]
    print(f"speed ratio ChunkedRecurrentPPO / RecurrentPPO: {statistics.median(ratios):.2f}x "
          f"[{min(ratios):.2f}-{max(ratios):.2f}]")


if __name__ == "__main__":
    main()
