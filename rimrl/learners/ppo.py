"""PPO with a recurrent core (lstm, gru, rims) on Atari, MiniGrid/BabyAI, the pickup suite
and any gymnasium env: ties ``envs`` and ``rimrl.agents.ppo`` together."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rimrl.errors import UserError
from rimrl.learners.base import Flag, SB3Learner, saved_config, short_env_name
from rimrl.learners.ppo_probes import PROBES
from rimrl.learners.requests import EvalRequest, PolicyEvalOptions, option
from rimrl.sb3.environments import training_setting


@dataclass(frozen=True)
class PPOEvalOptions(PolicyEvalOptions):
    """``rimrl evaluate`` options of PPO runs: those of every policy, and the memory probes
    of :mod:`rimrl.learners.ppo_probes` (recurrent policies only)."""

    probe: Optional[str] = option(None, "reset the state before every step (memoryless) or "
                                  "zero each RIM's state in turn (ablate-rims), beside the "
                                  "normal policy", kind=str, choices=PROBES)

    def __post_init__(self):
        super().__post_init__()
        if self.probe and self.video:
            raise UserError("--video records a normal evaluation; run it without --probe")


class PPOLearner(SB3Learner):
    """``rimrl train ppo``: :class:`rimrl.agents.ppo.ChunkedRecurrentPPO` (thesis ch. 8)."""

    name = "ppo"
    summary = "PPO with a recurrent core (lstm, gru, rims)"
    defaults_file = "ppo.yaml"
    group_key = "core.name"
    set_example = "ppo.learning_rate=3e-4"
    eval_options = PPOEvalOptions
    flags = (
        Flag("env", "env.id", "Atari game (DemonAttack, MsPacman, ...) or gymnasium id"),
        Flag("core", "core.name", "recurrent core: lstm, gru, rims or none (no memory: the floor)"),
        Flag("encoder", "policy.encoder", "observation encoder: auto, nature, resnet, "
             "nfm-resnet, mlp, flatten, combined, grid, grid-set, ..."),
        Flag("n_envs", "env.n_envs", "parallel environments", int),
        Flag("timesteps", "train.timesteps", "training budget in env steps", int),
        Flag("eval_every", "eval.every", "evaluate every STEPS env steps during training "
             "(evaluations.csv, best_model.zip; section eval)", int),
        Flag("track", "train.track", "send the run to Weights & Biases (offline without a "
             "login; needs the track extra)", bool),
    )

    def config_class(self) -> type:
        from rimrl.learners.ppo_config import PPORunConfig  # heavy
        return PPORunConfig

    def check(self, config) -> None:
        from rimrl.sb3.checks import check_run, observation_bytes  # heavy

        # SB3's rollout buffer keeps n_steps float32 observations per env
        check_run(config, encoder_of,
                  lambda space: config.ppo.n_steps * observation_bytes(space, 4),
                  core_hidden=config.core.hidden_size)

    def tags(self, config) -> dict:
        return {"core": config.core.name}

    def run_name(self, config) -> str:
        return f"ppo-{short_env_name(config.env.id)}-{config.core.name}-s{config.seed}"

    def build_model(self, cfg, env):
        return build_model(cfg, env)

    def load_model(self, path: Path, env=None, device: str = "cpu"):
        return load_model(path, env, device)

    def ready(self, model, cfg) -> None:
        model.rollout_threads = cfg.ppo.rollout_threads  # a resume may change it

    def callbacks(self, cfg, run_dir: Path) -> list:
        from rimrl.sb3.callbacks import CoreActivityCallback  # heavy
        return [CoreActivityCallback(run_dir)]

    def evaluate(self, request: EvalRequest) -> int:
        """``rimrl evaluate``, and with ``--probe`` the memory probes of
        :mod:`rimrl.learners.ppo_probes` instead."""
        if not request.options.probe:
            return super().evaluate(request)
        from rimrl.learners.ppo_probes import run_probe  # heavy
        from rimrl.sb3.evaluation import load_evaluation  # heavy

        cfg = saved_config(self.config_class(), request.run_dir)
        e = load_evaluation(request, cfg, self.load_model, self.tags(cfg))
        rows = e.splits or [training_setting(cfg.env.id, cfg.env.distractors)]
        return run_probe(request, cfg, e.model, e.path, rows, e.seed, e.tags)


def build_model(cfg, env):
    """A fresh :class:`rimrl.agents.ppo.ChunkedRecurrentPPO` from a run config."""
    from stable_baselines3.common.utils import LinearSchedule  # heavy

    from rimrl.agents.ppo import ChunkedRecurrentPPO, RecurrentCorePolicy  # heavy
    from rimrl.nn.encoders import encoder_arguments  # heavy

    extractor = encoder_of(cfg, env.observation_space)
    extractor_kwargs = encoder_arguments(extractor, cfg.policy.encoder_kwargs,
                                         cfg.policy.features_dim)
    p = cfg.ppo

    def schedule(value: float, kind: str):
        return LinearSchedule(value, 0.0, 1.0) if kind == "linear" else value

    return ChunkedRecurrentPPO(
        RecurrentCorePolicy, env,
        n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs,
        learning_rate=schedule(p.learning_rate, p.lr_schedule),
        clip_range=schedule(p.clip_range, p.clip_schedule),
        ent_coef=p.ent_coef, vf_coef=p.vf_coef, gamma=p.gamma, gae_lambda=p.gae_lambda,
        max_grad_norm=p.max_grad_norm, normalize_advantage=p.normalize_advantage,
        target_kl=p.target_kl, chunk_length=p.chunk_length,
        rollout_threads=p.rollout_threads, seed=cfg.seed, device=cfg.device,
        policy_kwargs=dict(
            core=dataclasses.asdict(cfg.core), features_extractor_class=extractor,
            features_extractor_kwargs=extractor_kwargs, net_arch=list(cfg.policy.net_arch),
            enable_critic_lstm=cfg.policy.enable_critic_lstm, ortho_init=cfg.policy.ortho_init,
            # SB3's Adam eps for PPO; fused: one kernel for all parameters, ~7x faster on CPU
            optimizer_kwargs=dict(eps=1e-5, fused=True),
        ),
        verbose=0,
    )


def encoder_of(cfg, observation_space):
    """The encoder class a PPO run config names (``auto``: chosen by the space and core)."""
    from rimrl.nn.encoders import encoder_class, encoder_for_space  # heavy

    name = cfg.policy.encoder
    return encoder_for_space(observation_space) if name == "auto" else encoder_class(name)


def load_model(path: Path, env=None, device: str = "cpu"):
    """Load a saved ChunkedRecurrentPPO; a one-line error for a missing or corrupt file."""
    from rimrl.agents.ppo import ChunkedRecurrentPPO  # heavy
    from rimrl.sb3.training import load_sb3_model  # heavy

    return load_sb3_model(ChunkedRecurrentPPO, "PPO", path, env, device)


LEARNER = PPOLearner()
