"""Typed config of ``rimrl train ppo``: every default is written here, once;
``configs/ppo.yaml`` holds only what an env family changes (Atari, gym, MiniGrid)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from rimrl.config import MAX_ENVS, MAX_THREADS, RunSettings, require_positive
from rimrl.errors import UserError
from rimrl.learners.periodic_evaluation import EvalConfig
from rimrl.nn.cores import CoreConfig
from rimrl.nn.rims_settings import ATARI_RIMS


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
class PPOHyperparameters:
    """PPO hyperparameters (names as in SB3). ``lr_schedule``/``clip_schedule``: ``linear``
    decays to 0 over training (as in the RIMs paper's PPO), ``constant`` keeps the value.
    ``chunk_length``: BPTT chunk (:class:`~rimrl.agents.ppo.ChunkedRecurrentPPO`);
    ``rollout_threads``: torch threads while collecting rollouts (0: as many as the update;
    a compute setting, so ``--resume`` may change it). Default 1: a rollout step's forward
    passes are small, and beside one busy process one thread collected about 2x faster than
    two, while on an idle machine it cost the LSTM at most ~5% and RIMs nothing (figures:
    benchmarks/RESULTS.md "CPU speed, one interleaved session"). With many envs on many
    cores, 0 lets the encoder use them."""

    n_steps: int = 128
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 2.5e-4
    lr_schedule: str = "linear"
    clip_range: float = 0.1
    clip_schedule: str = "linear"
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    max_grad_norm: float = 0.5
    normalize_advantage: bool = True
    target_kl: Optional[float] = None
    chunk_length: int = 32
    rollout_threads: int = 1


@dataclass
class PolicyConfig:
    """Network around the core.

    Args:
        encoder: encoder name (``nature``, ``mlp``, ``flatten``, ``combined``) or ``auto``
            (image -> nature, dict -> combined, else mlp).
        features_dim: encoder output size where the encoder takes one.
        encoder_kwargs: extra encoder arguments, e.g. ``{passes: 2, top_k: 4}`` for
            ``nfm-resnet``.
        net_arch: hidden layers of the actor and critic heads after the core.
        enable_critic_lstm: a second core for the critic (sb3-contrib's default); off as in
            RL Zoo's Atari settings, the critic then reads the encoder features.
        ortho_init: orthogonal initialisation of encoder and heads.
    """

    encoder: str = "auto"
    features_dim: int = 512
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    net_arch: list[int] = field(default_factory=list)
    enable_critic_lstm: bool = False
    ortho_init: bool = True


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
class PPORunConfig(RunSettings):
    """Everything ``rimrl train ppo`` needs."""

    env: EnvConfig = field(default_factory=EnvConfig)
    core: CoreConfig = field(default_factory=lambda: CoreConfig(**ATARI_RIMS))
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOHyperparameters = field(default_factory=PPOHyperparameters)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        super().__post_init__()
        require_positive({
            "env.n_envs": self.env.n_envs, "env.frame_stack": self.env.frame_stack,
            "ppo.n_steps": self.ppo.n_steps, "ppo.batch_size": self.ppo.batch_size,
            "ppo.n_epochs": self.ppo.n_epochs, "ppo.chunk_length": self.ppo.chunk_length,
            "policy.features_dim": self.policy.features_dim,
            "ppo.learning_rate": self.ppo.learning_rate, "ppo.clip_range": self.ppo.clip_range,
        })
        if any(not isinstance(n, int) or n < 1 for n in self.policy.net_arch):
            raise UserError(f"policy.net_arch must list positive layer sizes, got "
                            f"{self.policy.net_arch}")
        if not 0 <= self.ppo.rollout_threads <= MAX_THREADS:
            raise UserError(f"ppo.rollout_threads must be 0 (as the update) or a count up to "
                            f"{MAX_THREADS}, got {self.ppo.rollout_threads}")
        if not 0 < self.ppo.gamma <= 1 or not 0 <= self.ppo.gae_lambda <= 1:
            raise UserError("ppo.gamma must be in (0, 1] and ppo.gae_lambda in [0, 1]")
        if self.ppo.n_steps % self.ppo.chunk_length:
            raise UserError(
                f"ppo.n_steps ({self.ppo.n_steps}) must be a multiple of ppo.chunk_length "
                f"({self.ppo.chunk_length})"
            )
        rollout = self.ppo.n_steps * self.env.n_envs
        if 0 < self.eval.every < rollout:
            raise UserError(f"eval.every ({self.eval.every}) is less than one rollout "
                            f"(ppo.n_steps x env.n_envs = {rollout} steps), and PPO evaluates "
                            f"after an update: use {rollout} or more")
        from rimrl.agents.ppo.policies import check_one_policy
        try:
            check_one_policy(self.core)
        except ValueError as exc:
            raise UserError(f"core.{exc}") from None
        from rimrl.nn.encoders import check_encoder_kwargs, encoder_class
        if self.policy.encoder != "auto":
            check_encoder_kwargs(encoder_class(self.policy.encoder), self.policy.encoder_kwargs,
                                 "policy.encoder_kwargs")
        for key in ("lr_schedule", "clip_schedule"):
            if getattr(self.ppo, key) not in ("linear", "constant"):
                raise UserError(f"ppo.{key} must be 'linear' or 'constant', "
                                f"got {getattr(self.ppo, key)!r}")
