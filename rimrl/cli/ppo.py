"""``rimrl train ppo`` and the evaluation of PPO runs: ties ``envs`` and ``agents`` together."""

from __future__ import annotations

from pathlib import Path

from rimrl.cli.common import add_common_train_args, prepare_run, requested_value
from rimrl.cli.environments import env_family, make_env

FLAGS = {"env": "env.id", "core": "core.name", "encoder": "policy.encoder", "seed": "seed",
         "timesteps": "train.timesteps", "n_envs": "env.n_envs", "runs_dir": "runs_dir",
         "device": "device"}


def register(tasks) -> None:
    p = tasks.add_parser("ppo", help="PPO with a recurrent core (lstm, gru, rims)")
    p.add_argument("--env", help="Atari game (DemonAttack, MsPacman, ...) or gymnasium id")
    p.add_argument("--core", help="recurrent core: lstm, gru or rims")
    p.add_argument("--encoder", help="observation encoder: auto, nature, resnet, nfm-resnet, "
                                     "mlp, flatten, combined, grid, grid-set, ...")
    p.add_argument("--n-envs", type=int, help="parallel environments")
    add_common_train_args(p, ["timesteps"], set_example="ppo.learning_rate=3e-4")
    p.set_defaults(handler=train)


# ----------------------------------------------------------------------------------- model
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
        target_kl=p.target_kl, chunk_length=p.chunk_length, seed=cfg.seed, device=cfg.device,
        policy_kwargs=dict(
            core=dataclasses.asdict(cfg.core), features_extractor_class=extractor,
            features_extractor_kwargs=extractor_kwargs, net_arch=list(cfg.policy.net_arch),
            enable_critic_lstm=cfg.policy.enable_critic_lstm, ortho_init=cfg.policy.ortho_init,
            # SB3's Adam eps for PPO; fused: one kernel for all parameters, ~7x faster on CPU
            optimizer_kwargs=dict(eps=1e-5, fused=True),
        ),
        verbose=0,
    )


def check(cfg) -> None:
    """What a new PPO run needs beyond its config: see :mod:`rimrl.cli.checks`."""
    from rimrl.cli.checks import check_run, observation_bytes

    # SB3's rollout buffer keeps n_steps float32 observations per env
    check_run(cfg, encoder_of, lambda space: cfg.ppo.n_steps * observation_bytes(space, 4),
              core_hidden=cfg.core.hidden_size)


def encoder_of(cfg, observation_space):
    """The encoder class a PPO run config names (``auto``: chosen by the space and core)."""
    from rimrl.nn.encoders import encoder_class, encoder_for_space

    name = cfg.policy.encoder
    return (encoder_for_space(observation_space, cfg.core.name) if name == "auto"
            else encoder_class(name))


def load_model(path: Path, env=None, device: str = "cpu"):
    """Load a saved ChunkedRecurrentPPO; a one-line error for a missing or corrupt file."""
    from rimrl.agents.ppo import ChunkedRecurrentPPO
    from rimrl.cli.training import load_sb3_model

    return load_sb3_model(ChunkedRecurrentPPO, "PPO", path, env, device)


# ----------------------------------------------------------------------------------- train
def train(args) -> int:
    from rimrl.agents.callbacks import CoreActivityCallback
    from rimrl.cli.ppo_config import PPORunConfig
    from rimrl.cli.training import learn_and_save, short_env_name
    from rimrl.config import save_config
    from rimrl.runs import verify_checksum

    section = None
    if args.resume is None:
        section = env_family(requested_value(args, args.env, "env.id", "ppo.yaml"))
    cfg, run_dir, ckpt, lock = prepare_run(
        args, PPORunConfig, "ppo.yaml", "ppo",
        name=lambda c: f"ppo-{short_env_name(c.env.id)}-{c.core.name}-s{c.seed}", flags=FLAGS,
        resume_flags=("timesteps",), section=section, check=check,
    )
    with lock:  # this process is the run's only writer until it ends
        env = make_env(cfg)
        # a run interrupted before its first checkpoint starts over
        if ckpt is not None:
            verify_checksum(run_dir, ckpt, trust=args.trust)
        model = load_model(ckpt, env, cfg.device) if ckpt is not None else build_model(cfg, env)
        if args.resume is not None:
            save_config(cfg, run_dir / "config.yaml")
        return learn_and_save(model, env, cfg, run_dir, args, {"core": cfg.core.name},
                              extra_callbacks=[CoreActivityCallback(run_dir)])


# -------------------------------------------------------------------------------- evaluate
def evaluate(args, run_dir: Path) -> int:
    """``rimrl evaluate`` of a PPO run (see :func:`rimrl.cli.evaluation.evaluate_run`)."""
    from rimrl.cli.evaluation import evaluate_run
    from rimrl.cli.ppo_config import PPORunConfig

    return evaluate_run(args, run_dir, PPORunConfig, load_model,
                        describe=lambda cfg: {"core": cfg.core.name})
