"""Typed config of ``rimrl train ppo``: every default is written here, once;
``configs/ppo.yaml`` holds only what an env family changes (Atari, gym, MiniGrid)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from rimrl.config import MAX_THREADS, RunSettings, require_positive
from rimrl.errors import UserError
from rimrl.nn.cores import CoreConfig
from rimrl.nn.rims_settings import ATARI_RIMS
from rimrl.sb3.configs import EnvConfig, EvalConfig, TrainConfig


@dataclass
class PPOHyperparameters:
    """PPO hyperparameters (names as in SB3). ``lr_schedule``/``clip_schedule``: ``linear``
    decays to 0 over training (as in the RIMs paper's PPO), ``constant`` keeps the value.
    ``chunk_length``: BPTT chunk (:class:`~rimrl.agents.ppo.ChunkedRecurrentPPO`);
    ``rollout_threads``: torch threads while collecting rollouts (0: as many as the update;
    a compute setting, so ``--resume`` may change it). Default 1: a rollout step's forward
    passes are small, and beside a busy process one thread collects faster than two, while
    on an idle machine it costs little (benchmarks/RESULTS.md, "ppo-throughput"). With many
    envs on many cores, 0 lets the encoder use them."""

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
        from rimrl.agents.ppo.policies import check_one_policy  # heavy
        try:
            check_one_policy(self.core)
        except ValueError as exc:
            raise UserError(f"core.{exc}") from None
        from rimrl.nn.encoders import check_encoder_kwargs, encoder_class  # heavy
        if self.policy.encoder != "auto":
            check_encoder_kwargs(encoder_class(self.policy.encoder), self.policy.encoder_kwargs,
                                 "policy.encoder_kwargs")
        for key in ("lr_schedule", "clip_schedule"):
            if getattr(self.ppo, key) not in ("linear", "constant"):
                raise UserError(f"ppo.{key} must be 'linear' or 'constant', "
                                f"got {getattr(self.ppo, key)!r}")
