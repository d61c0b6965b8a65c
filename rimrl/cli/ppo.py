"""``rimrl train ppo`` and the evaluation of PPO runs: ties ``envs`` and ``agents`` together."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rimrl.cli.common import add_common_train_args, prepare_run, requested_value
from rimrl.cli.environments import env_family, make_env
from rimrl.errors import UserError

FLAGS = {"env": "env.id", "core": "core.name", "encoder": "policy.encoder", "seed": "seed",
         "timesteps": "train.timesteps", "n_envs": "env.n_envs", "runs_dir": "runs_dir",
         "device": "device"}


def register(tasks) -> None:
    p = tasks.add_parser("ppo", help="PPO with a recurrent core (lstm, gru, rims)")
    p.add_argument("--env", help="Atari game (DemonAttack, MsPacman, ...) or gymnasium id")
    p.add_argument("--core", help="recurrent core: lstm, gru or rims")
    p.add_argument("--encoder", help="observation encoder: auto, nature, mlp, flatten, combined")
    p.add_argument("--n-envs", type=int, help="parallel environments")
    add_common_train_args(p, ["timesteps"])
    p.set_defaults(handler=train)


# ----------------------------------------------------------------------------------- model
def build_model(cfg, env, tensorboard: Path | None = None):
    """A fresh :class:`agents.ppo.ChunkedRecurrentPPO` from a run config."""
    import dataclasses
    import inspect

    from stable_baselines3.common.utils import LinearSchedule

    from agents.ppo import ChunkedRecurrentPPO, RecurrentCorePolicy
    from rimrl.nn.encoders import encoder_class, encoder_for_space

    name = cfg.policy.encoder
    extractor = (encoder_for_space(env.observation_space, cfg.core.name) if name == "auto"
                 else encoder_class(name))
    extractor_kwargs = {}
    if "features_dim" in inspect.signature(extractor.__init__).parameters:
        extractor_kwargs["features_dim"] = cfg.policy.features_dim
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
        ),
        verbose=0,
    )


def load_model(path: Path, env=None, device: str = "cpu"):
    """Load a saved ChunkedRecurrentPPO; a one-line error for a missing or corrupt file."""
    from agents.ppo import ChunkedRecurrentPPO

    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    try:
        return ChunkedRecurrentPPO.load(path, env=env, device=device)
    except Exception as exc:  # zip, pickle and torch errors of many types
        raise UserError(f"{path} is corrupt or not a rimrl PPO model ({type(exc).__name__}); "
                        "delete it to resume from an earlier checkpoint") from None


# ----------------------------------------------------------------------------------- train
def train(args) -> int:
    import numpy as np

    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import configure

    from agents.callbacks import CheckpointCallback, CoreActivityCallback, save_model_atomically
    from rimrl.cli.ppo_config import PPORunConfig
    from rimrl.config import save_config

    section = None
    if args.resume is None:
        section = env_family(requested_value(args, args.env, "env.id", "ppo.yaml"))
    cfg, run_dir, ckpt = prepare_run(
        args, PPORunConfig, "ppo.yaml", "ppo",
        name=lambda c: f"ppo-{_short(c.env.id)}-{c.core.name}-s{c.seed}", flags=FLAGS,
        resume_flags=("timesteps",), section=section,
    )
    env = make_env(cfg)
    # a run interrupted before its first checkpoint starts over
    model = load_model(ckpt, env, cfg.device) if ckpt is not None else build_model(cfg, env)
    if args.resume is not None:
        save_config(cfg, run_dir / "config.yaml")
    model.set_logger(configure(str(run_dir / "tb"), ["tensorboard", "csv"]))
    done = model.num_timesteps
    remaining = cfg.train.timesteps - done
    print(f"run directory: {run_dir}" + (f" (resuming at {done} steps)" if done else ""))
    checkpoints = CheckpointCallback(run_dir, cfg.train.checkpoint_every,
                                     cfg.train.keep_checkpoints)
    start = time.perf_counter()
    if remaining > 0:
        model.learn(remaining, callback=CallbackList([checkpoints, CoreActivityCallback()]),
                    log_interval=cfg.train.log_interval, reset_num_timesteps=done == 0,
                    progress_bar=not args.no_progress)
        checkpoints.save()
    save_model_atomically(model, run_dir / "model.zip")
    env.close()
    scores = [float(e["r"]) for e in model.ep_info_buffer]
    summary = {"timesteps": int(model.num_timesteps), "env": cfg.env.id, "core": cfg.core.name,
               "seconds": round(time.perf_counter() - start, 1),
               "recent_episode_scores": scores}
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    mean = f"{np.mean(scores):.1f} over the last {len(scores)} episodes" if scores else "n/a"
    print(f"trained {cfg.core.name} on {cfg.env.id} to {model.num_timesteps} steps; "
          f"raw score {mean}; model: {run_dir / 'model.zip'}")
    return 0


def _short(env_id: str) -> str:
    return env_id.replace("ALE/", "").replace("/", "-")


# -------------------------------------------------------------------------------- evaluate
def evaluate(args, run_dir: Path) -> int:
    """Play ``--episodes`` full episodes with the run's final (or latest) model; with
    ``--distractors``, once per distractor split."""
    from rimrl.cli.ppo_config import PPORunConfig
    from rimrl.config import load_config
    from rimrl.runs import latest_checkpoint

    if args.episodes < 1:
        raise UserError(f"--episodes must be positive, got {args.episodes}")
    cfg = load_config(PPORunConfig, [run_dir / "config.yaml"])
    splits = _requested_splits(cfg.env.id, args.distractors)
    path = run_dir / "model.zip"
    if not path.is_file():
        path = latest_checkpoint(run_dir)
        if path is None:
            raise UserError(f"{run_dir} has no model.zip and no checkpoint to evaluate")
    model = load_model(path, device="cpu")
    seed = cfg.seed + 10_000 if args.seed is None else args.seed
    if splits:
        return _evaluate_splits(args, run_dir, cfg, model, path, splits, seed)
    return _evaluate_plain(args, run_dir, cfg, model, path, seed)


def _requested_splits(env_id: str, requested) -> list[str]:
    from rimrl.cli.environments import check_split, distractor_splits

    if not requested:
        return []
    if requested == ["all"]:
        valid = distractor_splits(env_id)
        if not valid:
            check_split(env_id, "all")  # raises: no splits for this env
        return list(valid)
    return [check_split(env_id, split) for split in requested]


def _evaluate_plain(args, run_dir, cfg, model, path, seed) -> int:
    import numpy as np

    from rimrl.runs import write_json

    env = make_env(cfg, n_envs=1, seed=seed, training=False,
                   render_mode="rgb_array" if args.video else None)
    episodes, frames = play(model, env, args.episodes, deterministic=args.deterministic,
                            record=args.video)
    env.close()
    scores = [r for r, _ in episodes]
    result = {"checkpoint": str(path.name), "episodes": len(scores),
              "deterministic": args.deterministic, "seed": seed,
              "mean": float(np.mean(scores)), "std": float(np.std(scores)),
              "min": float(np.min(scores)), "max": float(np.max(scores)), "scores": scores}
    if frames:
        result["video"] = str(write_gif(frames, run_dir / "videos" / "episode_0.gif"))
    write_json(run_dir / "evaluation.json", result)
    print(f"{cfg.env.id}, core {cfg.core.name}, {len(scores)} episodes ({path.name}): "
          f"raw score mean {result['mean']:.1f} std {result['std']:.1f} "
          f"min {result['min']:.1f} max {result['max']:.1f}")
    if frames:
        print(f"video: {result['video']}")
    return 0


def _evaluate_splits(args, run_dir, cfg, model, path, splits, seed) -> int:
    """Success rate and return per split with 95% intervals (Wilson; normal for means).

    Atari runs are also played on the clean game, and each split reports its score drop.
    """
    from rimrl.cli.environments import env_family
    from rimrl.runs import write_json
    from rimrl.stats import mean_ci, wilson_ci

    atari = env_family(cfg.env.id) == "atari"
    rows = (["clean"] if atari else []) + splits
    n_envs = min(cfg.env.n_envs, args.episodes)
    table = {}
    for split in rows:
        env = make_env(cfg, n_envs=n_envs, seed=seed, training=False,
                       distractors=None if split == "clean" else split)
        episodes, _ = play(model, env, args.episodes, deterministic=args.deterministic)
        env.close()
        returns = [r for r, _ in episodes]
        wins = sum(bool(s) for _, s in episodes)
        mean, lo, hi = mean_ci(returns)
        rate, rlo, rhi = wilson_ci(wins, len(episodes))
        table[split] = {"episodes": len(episodes), "return_mean": mean, "return_ci95": [lo, hi],
                        "success_rate": rate, "success_ci95": [rlo, rhi], "returns": returns}
    if atari:
        clean = table["clean"]["return_mean"]
        for split in splits:
            drop = clean - table[split]["return_mean"]
            table[split]["score_drop"] = drop
            table[split]["score_drop_fraction"] = drop / abs(clean) if clean else None
    result = {"env": cfg.env.id, "core": cfg.core.name, "checkpoint": str(path.name),
              "episodes_per_split": args.episodes, "deterministic": args.deterministic,
              "seed": seed, "splits": table}
    write_json(run_dir / "distractors.json", result)
    print(format_split_table(result, atari))
    print(f"written: {run_dir / 'distractors.json'}")
    return 0


def format_split_table(result: dict, atari: bool) -> str:
    """The per-split table printed by ``rimrl evaluate --distractors``."""
    head = (f"{result['env']}, core {result['core']}, {result['episodes_per_split']} episodes "
            "per split, 95% intervals")
    if atari:
        lines = [head, f"{'split':<12} {'raw score':>10} {'95% CI':>22} {'drop':>8}"]
        for split, r in result["splits"].items():
            lo, hi = r["return_ci95"]
            drop = r.get("score_drop_fraction")
            drop_text = "" if drop is None else f"{100 * drop:7.1f}%"
            lines.append(f"{split:<12} {r['return_mean']:>10.1f} "
                         f"{f'[{lo:.1f}, {hi:.1f}]':>22} {drop_text:>8}")
        return "\n".join(lines)
    lines = [head, f"{'split':<12} {'success':>8} {'95% CI':>16} {'return':>8} {'95% CI':>16}"]
    for split, r in result["splits"].items():
        slo, shi = r["success_ci95"]
        lo, hi = r["return_ci95"]
        lines.append(f"{split:<12} {r['success_rate']:>8.3f} {f'[{slo:.3f}, {shi:.3f}]':>16} "
                     f"{r['return_mean']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16}")
    return "\n".join(lines)


def play(model, env, episodes: int, deterministic: bool = False, record: bool = False,
         max_frames: int = 4000):
    """Run ``episodes`` whole episodes spread evenly over the env's copies (so short episodes
    are not over-counted). Returns [(return, success)] and the frames of the first episode
    when ``record``. The return is Monitor's (the raw game score over all lives for Atari);
    success is the env's ``info["success"]`` where it reports one, else return > 0."""
    import numpy as np

    n = env.num_envs
    targets = [(episodes + i) // n for i in range(n)]
    counts = [0] * n
    obs = env.reset()
    state, starts = None, np.ones((n,), dtype=bool)
    results, frames = [], []
    while any(c < t for c, t in zip(counts, targets)):
        if record and not results and len(frames) < max_frames:
            frames.append(env.envs[0].render())
        action, state = model.predict(obs, state=state, episode_start=starts,
                                      deterministic=deterministic)
        obs, _, dones, infos = env.step(action)
        starts = dones
        for i, info in enumerate(infos):
            if "episode" in info and counts[i] < targets[i]:
                score = float(info["episode"]["r"])
                results.append((score, bool(info.get("success", score > 0))))
                counts[i] += 1
    return results, frames


def write_gif(frames, path: Path) -> Path:
    """Frames (H, W, 3) uint8 as an animated GIF (Pillow; no video codec needed)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames if f is not None]
    images[0].save(path, save_all=True, append_images=images[1:], duration=33, loop=0)
    return path
