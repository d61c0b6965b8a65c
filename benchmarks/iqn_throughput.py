"""IQN gradient updates per second, the cost of NFM in the encoder, and replay bytes per
transition, on MsPacman (frame stack 4, 84x84).

1. Updates per second. Every learner fills its replay memory with the same ``--fill`` steps
   of random play (one env), then the learners take turns timing ``--updates`` gradient steps
   each (batch 32), ``--rounds`` rounds; the median per learner is reported (the machine
   drifts +-30% between minutes; round-robin timing hits every variant alike). Only gradient
   steps are timed: env steps and acting cost the same for every learner. Learners (Nature
   CNN):
     - qrdqn:        sb3-contrib QR-DQN, 200 quantiles, SB3's uniform 1-step ReplayBuffer
     - iqn:          rimrl IQN, N = N' = 64, K = 32, uniform 1-step replay, no dueling or
                     double Q (the like-for-like comparison)
     - iqn-rainbow:  rimrl IQN with configs/iqn.yaml's defaults (PER, 3-step, dueling, double)
2. NFM cost: forward+backward time of each encoder on a batch of 32 stacked frames, the
   encoders taking turns, ``--encoder-rounds`` rounds: ``resnet`` vs ``nfm-resnet`` (IMPALA
   stages) and ``resnet18`` vs ``nfm-resnet18`` (the thesis' Table 3 architecture); K = 2
   passes, top-k 4, key 32, value 32, 4 heads; each NFM encoder also without the site of
   its finest stage (``sites``: "skip finest").
3. Replay bytes per transition at 1M Atari transitions.
Targets: iqn / qrdqn >= 0.85; NFM / same ResNet <= 2.2; replay <= 7.2 KB per transition.
Usage: python benchmarks/iqn_throughput.py [--updates 20] [--rounds 3] [--fill 2000]
       [--skip-nfm | --only-nfm]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from rimrl.sb3.environments import make_env
from rimrl.learners.iqn import LEARNER as IQN_LEARNER
from rimrl.learners.iqn import build_model

LIKE_QRDQN = ["iqn.prioritized=false", "iqn.n_step_return=1", "iqn.double_q=false",
              "policy.dueling=false"]


def iqn_model(env_id: str, overrides: list[str], fill: int):
    cfg = IQN_LEARNER.load_config([f"env.id={env_id}", f"iqn.buffer_size={fill + 10}",
                                   f"iqn.learning_starts={fill}"] + overrides)
    return build_model(cfg, make_env(cfg))


def qrdqn_model(env_id: str, fill: int, device: str = "cpu"):
    from sb3_contrib import QRDQN

    cfg = IQN_LEARNER.load_config([f"env.id={env_id}"])
    return QRDQN("CnnPolicy", make_env(cfg), buffer_size=fill + 10, learning_starts=fill,
                 batch_size=32, learning_rate=6.25e-5, seed=0, device=device)


def fill_replay(model, steps: int) -> None:
    """Random play into the model's replay memory (``learning_starts`` = steps: no update)."""
    model.learn(steps)


def ratio_text(base: list[float], other: list[float]) -> str:
    """Median over rounds of ``base / other`` (speed of other relative to base, from times)
    with its min-max range."""
    per_round = [b / o for b, o in zip(base, other)]
    return (f"{statistics.median(per_round):.2f}x "
            f"[{min(per_round):.2f}-{max(per_round):.2f}]")


def interleaved_update_times(models: dict, updates: int, rounds: int) -> dict:
    """Seconds per ``updates`` gradient steps of each model in each round (round-robin)."""
    for model in models.values():
        model.train(gradient_steps=2, batch_size=32)  # warm-up
    times = {label: [] for label in models}
    for _ in range(rounds):
        for label, model in models.items():
            start = time.perf_counter()
            model.train(gradient_steps=updates, batch_size=32)
            times[label].append(time.perf_counter() - start)
    return times


#: label -> (encoder name, its arguments); the ``skip finest`` variants leave out the site of
#: the finest stage (``sites``), the most expensive one
ENCODERS = {
    "resnet": ("resnet", {}), "nfm-resnet": ("nfm-resnet", {}),
    "nfm-resnet skip finest": ("nfm-resnet", {"sites": [1, 2]}),
    "resnet18": ("resnet18", {}), "nfm-resnet18": ("nfm-resnet18", {}),
    "nfm-resnet18 skip finest": ("nfm-resnet18", {"sites": [1, 2, 3]}),
}


def encoder_seconds(labels: list[str], rounds: int) -> dict:
    """Forward+backward seconds per encoder and round, batch 32 of (4, 84, 84), round-robin."""
    import gymnasium as gym

    from rimrl.nn.encoders import encoder_class

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    x = torch.rand(32, 4, 84, 84)
    encoders = {label: encoder_class(ENCODERS[label][0])(space, **ENCODERS[label][1])
                for label in labels}
    names = labels
    for encoder in encoders.values():
        encoder(x).sum().backward()  # warm-up
    times = {name: [] for name in names}
    for _ in range(rounds):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder(x).sum().backward()
            times[name].append(time.perf_counter() - start)
    return times


def replay_bytes() -> tuple[float, float]:
    """Bytes per transition of rimrl's replay at 1M Atari transitions, and of SB3's
    ReplayBuffer with optimize_memory_usage (obs stored once, stacks included)."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    from rimrl.agents.iqn.replay import FrameReplayBuffer

    space, actions = spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(9)
    ours = FrameReplayBuffer(1_000_000, space, actions, "cpu", frame_stack=4)
    sb3 = ReplayBuffer(10_000, space, actions, "cpu", optimize_memory_usage=True,
                       handle_timeout_termination=False)
    sb3_bytes = sum(getattr(sb3, k).nbytes for k in ("observations", "actions", "rewards",
                                                     "dones")) / sb3.buffer_size
    return ours.bytes_per_transition(), sb3_bytes


def update_speed(args) -> str:
    """Part 1 (and the replay bytes of part 3); returns the closing ratio line."""
    variants = {
        "qrdqn": lambda: qrdqn_model(args.env, args.fill),
        "iqn": lambda: iqn_model(args.env, LIKE_QRDQN, args.fill),
        "iqn-rainbow": lambda: iqn_model(args.env, [], args.fill),
    }
    models = {}
    for label, make in variants.items():
        models[label] = make()
        fill_replay(models[label], args.fill)
    times = interleaved_update_times(models, args.updates, args.rounds)
    for label, t in times.items():
        print(f"{label:<16} {args.updates / statistics.median(t):8.2f} updates/s")
    ours, sb3 = replay_bytes()
    print(f"replay bytes per transition: rimrl {ours:,.0f} (target <= 7,200); "
          f"SB3 ReplayBuffer(optimize_memory_usage) {sb3:,.0f}")
    print(f"1M transitions: rimrl {ours * 1e6 / 2**30:.2f} GiB, SB3 {sb3 * 1e6 / 2**30:.2f} GiB")
    return (f"ratio iqn / qrdqn updates per second = {ratio_text(times['qrdqn'], times['iqn'])} "
            f"(target >= 0.95x); rainbow {ratio_text(times['qrdqn'], times['iqn-rainbow'])} "
            "(target >= 0.75x)")


def nfm_cost(args) -> None:
    """Part 2."""
    seconds = encoder_seconds(list(ENCODERS), args.encoder_rounds)
    for name, sec in seconds.items():
        print(f"encoder {name:<24} {1000 * statistics.median(sec):8.1f} ms "
              "forward+backward (batch 32)")
    for base in ("resnet", "resnet18"):
        # time ratio nfm / base = speed ratio base / nfm, per round
        for variant in ("", " skip finest"):
            nfm = f"nfm-{base}{variant}"
            print(f"NFM cost: {nfm} / {base} time = "
                  f"{ratio_text(seconds[nfm], seconds[base])} (target <= 2.2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="MsPacman")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fill", type=int, default=2000)
    parser.add_argument("--encoder-rounds", type=int, default=7)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--skip-nfm", action="store_true", help="skip the encoder timing")
    only.add_argument("--only-nfm", action="store_true", help="only the encoder timing")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    closing = None if args.only_nfm else update_speed(args)
    if not args.skip_nfm:
        nfm_cost(args)
    if closing:
        print(closing)


if __name__ == "__main__":
    main()
