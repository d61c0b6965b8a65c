"""IQN with switchable Rainbow parts and a chosen image encoder (nature, resnet, nfm-resnet):
ties ``envs`` and ``rimrl.agents.iqn`` together (thesis ch. 10)."""

from __future__ import annotations

from pathlib import Path

from rimrl.errors import UserError
from rimrl.learners.base import Flag, SB3Learner, short_env_name
from rimrl.learners.requests import PolicyEvalOptions
from rimrl.sb3.environments import env_family


class IQNLearner(SB3Learner):
    """``rimrl train iqn``: :class:`rimrl.agents.iqn.IQN` on image or vector observations."""

    name = "iqn"
    summary = "IQN with switchable Rainbow parts and a chosen encoder"
    defaults_file = "iqn.yaml"
    group_key = "policy.encoder"
    set_example = "iqn.learning_rate=1e-4"
    eval_options = PolicyEvalOptions
    flags = (
        Flag("env", "env.id", "Atari game (MsPacman, Alien, ...) or gymnasium id"),
        Flag("encoder", "policy.encoder",
             "image encoder: nature, resnet, nfm-resnet, resnet18, nfm-resnet18"),
        Flag("n_envs", "env.n_envs", "parallel environments", int),
        Flag("timesteps", "train.timesteps", "training budget in env steps", int),
        Flag("eval_every", "eval.every", "evaluate every STEPS env steps during training "
             "(evaluations.csv, best_model.zip; section eval)", int),
        Flag("track", "train.track", "send the run to Weights & Biases (offline without a "
             "login; needs the track extra)", bool),
    )

    def config_class(self) -> type:
        from rimrl.learners.iqn_config import IQNRunConfig  # heavy
        return IQNRunConfig

    def validate(self, config) -> None:
        super().validate(config)
        if env_family(config.env.id) == "grid":
            raise UserError(f"IQN takes image or vector observations; '{config.env.id}' gives "
                            "MiniGrid dicts (mission, image): train it with 'rimrl train ppo'")

    def check(self, config) -> None:
        from rimrl.sb3.checks import check_run, observation_bytes  # heavy

        # the replay memory stores one frame of each stacked observation
        def stored(space) -> int:
            return config.iqn.buffer_size // config.env.n_envs * observation_bytes(space) \
                // config.env.frame_stack

        check_run(config, encoder_of, stored, actions=("Discrete",),
                  observations=("Box", "Dict"), learner="IQN")

    def tags(self, config) -> dict:
        return {"encoder": config.policy.encoder}

    def run_name(self, config) -> str:
        return (f"iqn-{short_env_name(config.env.id)}-{config.policy.encoder}"
                f"-s{config.seed}")

    def build_model(self, cfg, env):
        return build_model(cfg, env)

    def load_model(self, path: Path, env=None, device: str = "cpu"):
        return load_model(path, env, device)

    def resumed(self, model, cfg, run_dir: Path, commit) -> None:
        replay = commit.path(run_dir, commit.replay)
        if cfg.train.save_replay and replay is not None and replay.is_file():
            restore_replay(model, replay)

    def saves_replay(self, cfg) -> bool:
        return cfg.train.save_replay


def restore_replay(model, replay: Path) -> None:
    """Load the run's replay memory into a model resumed from its checkpoint. A memory from
    another step (a run from before commit records, killed between the two writes) is set
    aside with a warning: the model refills its memory before learning again. A corrupt one
    is refused in one line."""
    from rimrl.agents.iqn import ReplayMismatch  # heavy

    try:
        model.load_replay_buffer(replay)
    except ReplayMismatch as exc:
        print(f"warning: {replay} does not belong to the checkpoint ({exc}); resuming with an "
              f"empty replay memory, refilled before learning", flush=True)
        return
    except Exception as exc:  # torn, foreign, pickled or out of range: nothing was loaded
        detail = f": {str(exc)[:200]}" if isinstance(exc, ValueError) else ""
        raise UserError(f"{replay} is corrupt ({type(exc).__name__}{detail}); delete it to "
                        "resume with an empty replay memory") from None
    print(f"replay memory restored: {model.replay_buffer.size()} steps per env")


def build_model(cfg, env):
    """A fresh :class:`rimrl.agents.iqn.IQN` from a run config."""
    import torch  # heavy

    from rimrl.agents.iqn import IQN, IQNPolicy  # heavy
    from rimrl.nn.encoders import encoder_arguments  # heavy

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
               n_target_quantiles=q.n_target_quantiles, kappa=q.kappa, n_steps=q.n_step_return,
               prioritized=q.prioritized, alpha=q.alpha, beta=q.beta, double_q=q.double_q,
               exploration_initial_eps=q.exploration_initial_eps,
               exploration_final_eps=q.exploration_final_eps,
               exploration_steps=q.exploration_steps, max_grad_norm=q.max_grad_norm,
               policy_kwargs=policy_kwargs, seed=cfg.seed, device=cfg.device)


def encoder_of(cfg, observation_space):
    """The encoder class an IQN run config names."""
    from rimrl.nn.encoders import encoder_class  # heavy

    return encoder_class(cfg.policy.encoder)


def load_model(path: Path, env=None, device: str = "cpu"):
    """Load a saved IQN; a one-line error for a missing or corrupt file."""
    from rimrl.agents.iqn import IQN  # heavy
    from rimrl.sb3.training import load_sb3_model  # heavy

    return load_sb3_model(IQN, "IQN", path, env, device)


LEARNER = IQNLearner()
