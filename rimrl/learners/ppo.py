"""PPO with a recurrent core (lstm, gru, rims) on Atari, MiniGrid/BabyAI, the pickup suite
and any gymnasium env: ties ``envs`` and ``rimrl.agents.ppo`` together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rimrl.errors import UserError
from rimrl.runs import MODEL_ZIP
from rimrl.learners.base import Flag, Learner, prepare_run, short_env_name
from rimrl.learners.probes import PROBES
from rimrl.learners.requests import EvalRequest, PolicyEvalOptions, TrainRequest, option


@dataclass(frozen=True)
class PPOEvalOptions(PolicyEvalOptions):
    """``rimrl evaluate`` options of PPO runs: those of every policy, and the memory probes
    of :mod:`rimrl.learners.probes` (recurrent policies only)."""

    probe: Optional[str] = option(None, "reset the state before every step (memoryless) or "
                                  "zero each RIM's state in turn (ablate-rims), beside the "
                                  "normal policy", kind=str, choices=PROBES)

    def __post_init__(self):
        super().__post_init__()
        if self.probe and self.video:
            raise UserError("--video records a normal evaluation; run it without --probe")


class PPOLearner(Learner):
    """``rimrl train ppo``: :class:`rimrl.agents.ppo.ChunkedRecurrentPPO` (thesis ch. 8)."""

    name = "ppo"
    summary = "PPO with a recurrent core (lstm, gru, rims)"
    defaults_file = "ppo.yaml"
    budget_keys = ("train.timesteps",)
    group_key = "core.name"
    sweepable = True
    final_file = MODEL_ZIP
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
        from rimrl.learners.ppo_config import PPORunConfig
        return PPORunConfig

    def section(self, requested: dict) -> Optional[str]:
        from rimrl.learners.environments import family_section
        return family_section(requested)

    def check(self, config) -> None:
        from rimrl.learners.checks import check_run, observation_bytes

        # SB3's rollout buffer keeps n_steps float32 observations per env
        check_run(config, encoder_of,
                  lambda space: config.ppo.n_steps * observation_bytes(space, 4),
                  core_hidden=config.core.hidden_size)

    def tags(self, config) -> dict:
        return {"core": config.core.name}

    def run_name(self, config) -> str:
        return f"ppo-{short_env_name(config.env.id)}-{config.core.name}-s{config.seed}"

    def train(self, request: TrainRequest) -> int:
        from rimrl.agents.callbacks import CoreActivityCallback
        from rimrl.config import save_config
        from rimrl.learners.environments import make_env
        from rimrl.learners.sb3_training import learn_and_save
        from rimrl.runs import CONFIG_FILE, verify_checksum

        cfg, run_dir, commit, lock = prepare_run(request, self)
        with lock:  # this process is the run's only writer until it ends
            env = make_env(cfg)
            # a run interrupted before its first commit starts over
            ckpt = commit.path(run_dir, commit.checkpoint)
            if ckpt is not None:
                verify_checksum(run_dir, ckpt, trust=request.trust)
            model = (load_model(ckpt, env, cfg.device) if ckpt is not None
                     else build_model(cfg, env))
            model.rollout_threads = cfg.ppo.rollout_threads  # a resume may change it
            if request.resume is not None:
                save_config(cfg, run_dir / CONFIG_FILE)
            return learn_and_save(model, env, cfg, run_dir, request, self.name,
                                  self.tags(cfg), commit,
                                  extra_callbacks=[CoreActivityCallback(run_dir)])

    def evaluate(self, request: EvalRequest) -> int:
        from rimrl.learners.evaluation import evaluate_run

        return evaluate_run(request, self.config_class(), load_model,
                            describe=self.tags)


def build_model(cfg, env):
    """A fresh :class:`rimrl.agents.ppo.ChunkedRecurrentPPO` from a run config."""
    import dataclasses

    from stable_baselines3.common.utils import LinearSchedule

    from rimrl.agents.ppo import ChunkedRecurrentPPO, RecurrentCorePolicy
    from rimrl.nn.encoders import encoder_arguments

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
    from rimrl.nn.encoders import encoder_class, encoder_for_space

    name = cfg.policy.encoder
    return encoder_for_space(observation_space) if name == "auto" else encoder_class(name)


def load_model(path: Path, env=None, device: str = "cpu"):
    """Load a saved ChunkedRecurrentPPO; a one-line error for a missing or corrupt file."""
    from rimrl.agents.ppo import ChunkedRecurrentPPO
    from rimrl.learners.sb3_training import load_sb3_model

    return load_sb3_model(ChunkedRecurrentPPO, "PPO", path, env, device)


LEARNER = PPOLearner()
