"""The part of ``rimrl train`` that every SB3 learner shares: logging, checkpoints, the
budget left after a resume, the final model and the run summary."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rimrl.errors import UserError


def learn_and_save(model, env, cfg, run_dir: Path, args, tags: dict, extra_callbacks=(),
                   save_replay: bool = False) -> int:
    """Train ``model`` up to ``cfg.train.timesteps`` env steps (what a resumed run has done
    counts), checkpointing atomically; then write ``model.zip`` and ``train_summary.json``.

    Args:
        model: an SB3 model, fresh or loaded from the run's latest checkpoint.
        env: its env (closed at the end).
        cfg: the run config (``train`` section: timesteps, checkpoint_every,
            keep_checkpoints, log_interval).
        run_dir: the run directory.
        args: the command's flags (``--no-progress``).
        tags: fields naming the model in the summary, e.g. ``{"core": "rims"}``.
        extra_callbacks: more SB3 callbacks (e.g. RIM activity logging).
        save_replay: checkpoints also write the replay memory (off-policy learners).
    """
    import numpy as np
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import configure

    from rimrl.agents.callbacks import CheckpointCallback, save_model_atomically

    model.set_logger(configure(str(run_dir / "tb"), ["tensorboard", "csv"]))
    done = model.num_timesteps
    remaining = cfg.train.timesteps - done
    print(f"run directory: {run_dir}" + (f" (resuming at {done} steps)" if done else ""))
    checkpoints = CheckpointCallback(run_dir, cfg.train.checkpoint_every,
                                     cfg.train.keep_checkpoints, save_replay=save_replay)
    start = time.perf_counter()
    if remaining > 0:
        model.learn(remaining, callback=CallbackList([checkpoints, *extra_callbacks]),
                    log_interval=cfg.train.log_interval, reset_num_timesteps=done == 0,
                    progress_bar=not args.no_progress)
        checkpoints.save()
    save_model_atomically(model, run_dir / "model.zip")
    env.close()
    scores = [float(e["r"]) for e in model.ep_info_buffer]
    summary = {"timesteps": int(model.num_timesteps), "env": cfg.env.id, **tags,
               "seconds": round(time.perf_counter() - start, 1),
               "recent_episode_scores": scores}
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    mean = f"{np.mean(scores):.1f} over the last {len(scores)} episodes" if scores else "n/a"
    label = ", ".join(f"{k} {v}" for k, v in tags.items())
    print(f"trained on {cfg.env.id} ({label}) to {model.num_timesteps} steps; "
          f"raw score {mean}; model: {run_dir / 'model.zip'}")
    return 0


def load_sb3_model(cls, label: str, path: Path, env=None, device: str = "cpu"):
    """``cls.load(path)``; a one-line error for a missing or corrupt file."""
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    try:
        return cls.load(path, env=env, device=device)
    except Exception as exc:  # zip, pickle and torch errors of many types
        raise UserError(f"{path} is corrupt or not a rimrl {label} model "
                        f"({type(exc).__name__}); delete it to resume from an earlier "
                        "checkpoint") from None


def short_env_name(env_id: str) -> str:
    """An env id as it appears in run directory names."""
    return env_id.replace("ALE/", "").replace("/", "-")
