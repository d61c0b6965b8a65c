"""The config sections every SB3 learner's run config shares: ``env`` (which environment
and how it is built), ``train`` (budget and bookkeeping) and ``eval`` (evaluations during
training)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from rimrl.config import MAX_ENVS, require_episodes, require_positive
from rimrl.errors import UserError


@dataclass
class EnvConfig:
    """Which environment and how it is built.

    Args:
        id: an Atari short name (``DemonAttack``), an ALE id, or a registered gymnasium id.
        n_envs: parallel environments.
        frame_stack: stacked frames (Atari).
        sticky_actions: Atari: repeat the last action with probability 0.25.
        terminal_on_life_loss: Atari: end learning episodes at a life loss.
        subprocess: run envs in worker processes (off: on 2 cores the network, not the
            emulator, is the bottleneck).
        backend: Atari training envs: ``sb3`` (SB3's ``AtariWrapper`` in Python, one env at
            a time) or ``ale-vector`` (ale-py's C++ vector env, every game in a thread pool;
            :mod:`rimrl.envs.ale_vector`). Evaluation always uses ``sb3`` (same
            preprocessing; video and distractor overlays need its Python frames).
        distractors: distractor split used in training: for the pickup suite the split its
            episodes come from (``train`` by default), for Atari an overlay split drawn on the
            frames as augmentation (none by default). ``rimrl evaluate --distractors`` picks
            the splits for evaluation.
    """

    id: str = "DemonAttack"
    n_envs: int = 8
    frame_stack: int = 4
    sticky_actions: bool = False
    terminal_on_life_loss: bool = True
    subprocess: bool = False
    backend: str = "sb3"
    distractors: Optional[str] = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.n_envs, int) and self.n_envs > MAX_ENVS:
            raise UserError(f"env.n_envs must be at most {MAX_ENVS:,} (each env is built and "
                            f"stepped in this process), got {self.n_envs}")


@dataclass
class TrainConfig:
    """Budget and bookkeeping.

    Args:
        timesteps: env steps over all envs (``--timesteps``).
        checkpoint_every: env steps between checkpoints.
        checkpoint_minutes: wall-clock minutes between checkpoints, whichever comes first.
        keep_checkpoints: newest checkpoints kept.
        log_interval: rollouts (PPO) or episodes (IQN) between logged rows.
        print_interval: logged rows between progress lines on stdout.
        track: send the run to Weights & Biases (``--track``; offline without a login).
        wandb_project: its W&B project.
    """

    timesteps: int = 50_000
    checkpoint_every: int = 5_000
    checkpoint_minutes: float = 10.0
    keep_checkpoints: int = 3
    log_interval: int = 1
    print_interval: int = 4
    track: bool = False
    wandb_project: str = "rimrl"

    def __post_init__(self):
        require_positive({f"train.{key}": getattr(self, key) for key in (
            "timesteps", "checkpoint_every", "checkpoint_minutes", "keep_checkpoints",
            "log_interval", "print_interval")})


@dataclass
class EvalConfig:
    """Evaluation during training (config section ``eval``; ``--eval-every`` sets ``every``).

    Args:
        every: env steps between evaluations; 0 (the default) evaluates only with
            ``rimrl evaluate`` after training.
        episodes: episodes per row and evaluation.
        distractors: distractor splits to evaluate besides the setting the run trains on
            (``[all]``: every split of the env; the default ``[]``: that setting only).
        deterministic: greedy actions (default: sampled, as the policy acts in training).
    """

    every: int = 0
    episodes: int = 20
    distractors: list[str] = field(default_factory=list)
    deterministic: bool = False

    def __post_init__(self):
        if self.every < 0:
            raise UserError(f"eval.every must be 0 (off) or a positive step count, "
                            f"got {self.every}")
        require_episodes("eval.episodes", self.episodes)
