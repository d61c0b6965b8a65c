"""Typed config of ``rimrl train iqn``: every default is written once, here or, for the
settings of the IQN class and its policy, in their signatures (read with ``default_of``);
``configs/iqn.yaml`` holds only what an env family changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from rimrl.agents.iqn import IQN, IQNPolicy
from rimrl.config import RunSettings, default_of, require_positive
from rimrl.errors import UserError
from rimrl.sb3.configs import EnvConfig, EvalConfig, TrainConfig


@dataclass
class IQNPolicyConfig:
    """Encoder and head.

    Args:
        encoder: encoder name (``nature``, ``resnet``, ``nfm-resnet``, ``resnet18``,
            ``nfm-resnet18``, ``mlp``, ...).
        features_dim: encoder output size.
        encoder_kwargs: extra encoder arguments, e.g. ``{passes: 2, top_k: 4}`` for NFM.
        embedding_dim: cosines of the tau embedding.
        hidden_size: hidden units of the head.
        dueling: dueling head (Rainbow component).
        noisy: noisy linear layers in the head (Rainbow component; replaces epsilon-greedy).
        noisy_std: sigma_0 of the noisy layers.
        n_policy_quantiles: K, quantiles averaged to act.
    """

    encoder: str = "nature"
    features_dim: int = 512
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    embedding_dim: int = default_of(IQNPolicy, "embedding_dim")
    hidden_size: int = default_of(IQNPolicy, "hidden_size")
    dueling: bool = True  # Rainbow's head; the IQNPolicy class alone is plain IQN's
    noisy: bool = default_of(IQNPolicy, "noisy")
    noisy_std: float = default_of(IQNPolicy, "noisy_std")
    n_policy_quantiles: int = default_of(IQNPolicy, "n_policy_quantiles")


@dataclass
class IQNHyperparameters:
    """IQN hyperparameters (SB3's names where SB3 has them; Dopamine's default values).
    Rainbow components:
    ``n_step_return`` (the n of n-step returns, 1 = off; the older key ``n_steps`` is still
    read: PPO's ``n_steps`` is its rollout length), ``prioritized``, ``double_q``;
    ``alpha``/``beta`` belong to prioritized replay (beta annealed to 1 over the run)."""

    RENAMED: ClassVar[dict[str, str]] = {"n_steps": "n_step_return"}

    learning_rate: float = default_of(IQN, "learning_rate")
    adam_eps: float = 1.5e-4  # the policy's Adam (Rainbow's); IQN has none
    buffer_size: int = default_of(IQN, "buffer_size")
    learning_starts: int = default_of(IQN, "learning_starts")
    batch_size: int = default_of(IQN, "batch_size")
    gamma: float = default_of(IQN, "gamma")
    train_freq: int = default_of(IQN, "train_freq")
    gradient_steps: int = default_of(IQN, "gradient_steps")
    target_update_interval: int = default_of(IQN, "target_update_interval")
    n_quantiles: int = default_of(IQN, "n_quantiles")
    n_target_quantiles: int = default_of(IQN, "n_target_quantiles")
    kappa: float = default_of(IQN, "kappa")
    n_step_return: int = default_of(IQN, "n_steps")
    prioritized: bool = default_of(IQN, "prioritized")
    alpha: float = default_of(IQN, "alpha")
    beta: float = default_of(IQN, "beta")
    double_q: bool = default_of(IQN, "double_q")
    exploration_initial_eps: float = default_of(IQN, "exploration_initial_eps")
    exploration_final_eps: float = default_of(IQN, "exploration_final_eps")
    exploration_steps: int = default_of(IQN, "exploration_steps")
    max_grad_norm: Optional[float] = default_of(IQN, "max_grad_norm")


@dataclass
class IQNTrainConfig(TrainConfig):
    """Budget and bookkeeping; ``save_replay`` also checkpoints the replay memory
    (``replay_<step>.npz``, up to ~7 GB at 1M Atari transitions) so a resumed run keeps it.
    The budget is short; Dopamine trains for 50M frames (12.5M steps)."""

    keep_checkpoints: int = 2
    log_interval: int = 10  # episodes (Atari: lives) between logged rows
    print_interval: int = 1
    save_replay: bool = False


@dataclass
class IQNRunConfig(RunSettings):
    """Everything ``rimrl train iqn`` needs."""

    env: EnvConfig = field(default_factory=lambda: EnvConfig(id="MsPacman", n_envs=1))
    policy: IQNPolicyConfig = field(default_factory=IQNPolicyConfig)
    iqn: IQNHyperparameters = field(default_factory=IQNHyperparameters)
    train: IQNTrainConfig = field(default_factory=IQNTrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        super().__post_init__()
        q = self.iqn
        require_positive({
            "env.n_envs": self.env.n_envs, "env.frame_stack": self.env.frame_stack,
            "iqn.learning_rate": q.learning_rate, "iqn.adam_eps": q.adam_eps,
            "iqn.buffer_size": q.buffer_size, "iqn.batch_size": q.batch_size,
            "iqn.train_freq": q.train_freq, "iqn.gradient_steps": q.gradient_steps,
            "iqn.target_update_interval": q.target_update_interval,
            "iqn.n_quantiles": q.n_quantiles, "iqn.n_target_quantiles": q.n_target_quantiles,
            "iqn.kappa": q.kappa, "iqn.n_step_return": q.n_step_return,
            "iqn.exploration_steps": q.exploration_steps,
            "policy.features_dim": self.policy.features_dim,
            "policy.embedding_dim": self.policy.embedding_dim,
            "policy.hidden_size": self.policy.hidden_size,
            "policy.n_policy_quantiles": self.policy.n_policy_quantiles,
        })
        if not 0 < q.gamma <= 1:
            raise UserError(f"iqn.gamma must be in (0, 1], got {q.gamma}")
        if q.learning_starts < 0:
            raise UserError(f"iqn.learning_starts must be >= 0, got {q.learning_starts}")
        for key in ("alpha", "beta", "exploration_initial_eps", "exploration_final_eps"):
            if not 0 <= getattr(q, key) <= 1:
                raise UserError(f"iqn.{key} must be in [0, 1], got {getattr(q, key)}")
        if q.buffer_size < q.batch_size:
            raise UserError(f"iqn.buffer_size ({q.buffer_size}) must be at least "
                            f"iqn.batch_size ({q.batch_size})")
        from rimrl.nn.encoders import check_encoder_kwargs, encoder_class  # heavy
        check_encoder_kwargs(encoder_class(self.policy.encoder), self.policy.encoder_kwargs,
                             "policy.encoder_kwargs")
