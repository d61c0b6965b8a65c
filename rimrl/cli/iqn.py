"""``rimrl train iqn`` and the evaluation of IQN runs: ties ``envs`` and ``rimrl.agents.iqn``
together."""

from __future__ import annotations

from pathlib import Path

from rimrl.cli.common import add_common_train_args, prepare_run, requested_value
from rimrl.cli.environments import env_family, make_env
from rimrl.errors import UserError

FLAGS = {"env": "env.id", "encoder": "policy.encoder", "seed": "seed",
         "timesteps": "train.timesteps", "n_envs": "env.n_envs", "runs_dir": "runs_dir",
         "device": "device"}


def register(tasks) -> None:
    p = tasks.add_parser("iqn", help="IQN with switchable Rainbow parts and a chosen encoder")
    p.add_argument("--env", help="Atari game (MsPacman, Alien, ...) or gymnasium id")
    p.add_argument("--encoder",
                   help="image encoder: nature, resnet, nfm-resnet, resnet18, nfm-resnet18")
    p.add_argument("--n-envs", type=int, help="parallel environments")
    add_common_train_args(p, ["timesteps"], set_example="iqn.learning_rate=1e-4")
    p.set_defaults(handler=train)


def build_model(cfg, env):
    """A fresh :class:`rimrl.agents.iqn.IQN` from a run config."""
    import torch

    from rimrl.agents.iqn import IQN, IQNPolicy
    from rimrl.nn.encoders import encoder_arguments

    p, q = cfg.policy, cfg.iqn
    encoder = encoder_of(cfg, env.observation_space)
    policy_kwargs = dict(
        features_extractor_class=encoder,
        features_extractor_kwargs=encoder_arguments(encoder, p.encoder_kwargs, p.features_dim),
        # fused Adam: one kernel for all parameters, ~7x faster steps on CPU than the default
        optimizer_class=torch.optim.Adam, optimizer_kwargs=dict(eps=q.adam_eps, fused=True),
        embedding_dim=p.embedding_dim, hidden_size=p.hidden_size, dueling=p.dueling,
        noisy=p.noisy, noisy_std=p.noisy_std, n_policy_quantiles=p.n_policy_quantiles,
    )
    return IQN(IQNPolicy, env, learning_rate=q.learning_rate, buffer_size=q.buffer_size,
               learning_starts=q.learning_starts, batch_size=q.batch_size, gamma=q.gamma,
               train_freq=q.train_freq, gradient_steps=q.gradient_steps,
               target_update_interval=q.target_update_interval, n_quantiles=q.n_quantiles,
               n_target_quantiles=q.n_target_quantiles, kappa=q.kappa, n_steps=q.n_steps,
               prioritized=q.prioritized, alpha=q.alpha, beta=q.beta, double_q=q.double_q,
               exploration_initial_eps=q.exploration_initial_eps,
               exploration_final_eps=q.exploration_final_eps,
               exploration_steps=q.exploration_steps, max_grad_norm=q.max_grad_norm,
               policy_kwargs=policy_kwargs, seed=cfg.seed, device=cfg.device)


def check(cfg) -> None:
    """What a new IQN run needs beyond its config: see :mod:`rimrl.cli.checks`."""
    from rimrl.cli.checks import check_run, observation_bytes

    # the replay memory stores one frame of each stacked observation
    def stored(space) -> int:
        return cfg.iqn.buffer_size // cfg.env.n_envs * observation_bytes(space) \
            // cfg.env.frame_stack

    check_run(cfg, encoder_of, stored)


def encoder_of(cfg, observation_space):
    """The encoder class an IQN run config names."""
    from rimrl.nn.encoders import encoder_class

    return encoder_class(cfg.policy.encoder)


def load_model(path: Path, env=None, device: str = "cpu"):
    """Load a saved IQN; a one-line error for a missing or corrupt file."""
    from rimrl.agents.iqn import IQN
    from rimrl.cli.training import load_sb3_model

    return load_sb3_model(IQN, "IQN", path, env, device)


def train(args) -> int:
    from rimrl.agents.callbacks import replay_path
    from rimrl.cli.iqn_config import IQNRunConfig
    from rimrl.cli.training import learn_and_save, short_env_name
    from rimrl.config import save_config
    from rimrl.runs import verify_checksum

    section = None
    if args.resume is None:
        env_id = requested_value(args, args.env, "env.id", "iqn.yaml")
        section = env_family(env_id)
        if section == "grid":
            raise UserError(f"IQN takes image or vector observations; '{env_id}' gives "
                            "MiniGrid dicts (mission, image): train it with 'rimrl train ppo'")
    cfg, run_dir, ckpt, lock = prepare_run(
        args, IQNRunConfig, "iqn.yaml", "iqn",
        name=lambda c: f"iqn-{short_env_name(c.env.id)}-{c.policy.encoder}-s{c.seed}",
        flags=FLAGS, resume_flags=("timesteps",), section=section, check=check,
    )
    with lock:  # this process is the run's only writer until it ends
        env = make_env(cfg)
        if ckpt is None:  # a run interrupted before its first checkpoint starts over
            model = build_model(cfg, env)
        else:
            verify_checksum(run_dir, ckpt, trust=args.trust)
            model = load_model(ckpt, env, cfg.device)
            replay = replay_path(run_dir)
            if cfg.train.save_replay and replay.is_file():
                try:
                    model.load_replay_buffer(replay)
                except Exception as exc:  # a torn or foreign pickle
                    raise UserError(f"{replay} is corrupt ({type(exc).__name__}); delete it to "
                                    "resume with an empty replay memory") from None
                print(f"replay memory restored: {model.replay_buffer.size()} steps per env")
        if args.resume is not None:
            save_config(cfg, run_dir / "config.yaml")
        return learn_and_save(model, env, cfg, run_dir, args, {"encoder": cfg.policy.encoder},
                              save_replay=cfg.train.save_replay)


def evaluate(args, run_dir: Path) -> int:
    """``rimrl evaluate`` of an IQN run (see :func:`rimrl.cli.evaluation.evaluate_run`)."""
    from rimrl.cli.evaluation import evaluate_run
    from rimrl.cli.iqn_config import IQNRunConfig

    return evaluate_run(args, run_dir, IQNRunConfig, load_model,
                        describe=lambda cfg: {"encoder": cfg.policy.encoder})
