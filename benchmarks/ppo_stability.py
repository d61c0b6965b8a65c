"""Why does a recurrent PPO run's KL spike? Replay fidelity, state size and update jumps.

For each checkpoint of a PPO run (``rimrl train ppo``), collects one rollout with the run's
config and reports:

- replay: the largest |difference| between the log-probabilities recorded during the rollout
  and those PPO's training-time forward recomputes (32-step chunks from the stored states)
  before any update; 0 means training sees exactly the policy that acted;
- state: the largest |h| among the rollout's stored policy states (an LSTM's is below 1;
  RIMs on GRU dynamics grow), as ``core/state_abs_max`` logs during training;
- with ``--train-rollouts N``: N further rollouts each followed by a PPO update (nothing is
  saved), printing per update the largest log-ratio of any sample in each minibatch, i.e.
  how far one update moves single actions' probabilities.

The figures behind the pickup default's LSTM dynamics for RIMs (benchmarks/RESULTS.md,
"rims-variants-pickup").
Usage: python benchmarks/ppo_stability.py RUN_DIR CHECKPOINT [CHECKPOINT ...]
       [--train-rollouts N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rimrl.config import load_config
from rimrl.sb3.environments import make_env
from rimrl.learners.ppo import LEARNER, load_model
from rimrl.runs import CONFIG_FILE


def log_ratios(model, record: list) -> list[float]:
    """Per minibatch of ``model.train()``: the largest new-minus-old log-probability."""
    return [float((new - data.old_log_prob).max()) for data, new in record]


def recording(model, record: list) -> None:
    """Wrap the buffer's minibatches and the policy's evaluation so that each minibatch's
    data and recomputed log-probabilities land in ``record`` (in training order)."""
    get, evaluate = model.rollout_buffer.get, model.policy.evaluate_actions

    def recording_get(batch_size=None):
        for data in get(batch_size):
            record.append([data])
            yield data

    def recording_evaluate(*args, **kwargs):
        out = evaluate(*args, **kwargs)
        record[-1].append(out[1].detach())
        return out

    model.rollout_buffer.get, model.policy.evaluate_actions = recording_get, recording_evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--train-rollouts", type=int, default=0)
    args = parser.parse_args()
    cfg = load_config(LEARNER.config_class(), [args.run / CONFIG_FILE])
    env = make_env(cfg)
    for ckpt in args.checkpoints:
        model = load_model(ckpt, env)
        _, callback = model._setup_learn(10**9, None, reset_num_timesteps=False)
        callback.on_training_start(locals(), globals())
        buffer = model.rollout_buffer
        model.collect_rollouts(model.env, callback, buffer, model.n_steps)
        model.policy.set_training_mode(True)
        with torch.no_grad():
            replay = max(float((model.policy.evaluate_actions(
                d.observations, d.actions.long().flatten(), d.lstm_states, d.episode_starts)[1]
                - d.old_log_prob).abs().max()) for d in buffer.get(model.batch_size))
        states = np.abs(buffer.hidden_states_pi)
        print(f"{ckpt.name}: replay |log-prob difference| max {replay:.3g}; state |h| max "
              f"{states.max():.2f} (99.9% {np.quantile(states, 0.999):.2f}, mean "
              f"{states.mean():.3f})", flush=True)
        record: list = []
        recording(model, record)
        for r in range(args.train_rollouts):
            model.collect_rollouts(model.env, callback, buffer, model.n_steps)
            record.clear()
            model.train()
            print(f"  update {r}: largest log-ratio per minibatch " + " ".join(
                f"{v:.2f}" for v in log_ratios(model, record)), flush=True)


if __name__ == "__main__":
    main()
