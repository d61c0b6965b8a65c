"""Env ids to vectorized envs: families (atari, grid, gym), distractor splits, and the
per-env facts reports need (frame skip, Atari reference scores)."""

from __future__ import annotations

import functools

from rimrl.errors import UserError, closest
from rimrl.progress import format_score
from rimrl.report.atari_scores import RANDOM_HUMAN


def env_family(env_id: str) -> str:
    """``atari``, ``grid`` (MiniGrid/BabyAI) or ``gym``; a one-line error for unknown ids."""
    import gymnasium as gym  # heavy

    from rimrl.envs.atari import ale_games, is_atari  # heavy
    from rimrl.envs.minigrid_obs import is_minigrid  # heavy

    if is_atari(env_id):
        return "atari"
    _register_suites()
    if env_id in gym.registry:
        return "grid" if is_minigrid(env_id) else "gym"
    candidates = list(ale_games()) + [k for k in gym.registry if "/" in k or "-v" in k]
    near = closest(env_id, candidates, n=3, cutoff=0.6)
    hint = f"; closest: {', '.join(near)}" if near else ""
    raise UserError(f"unknown env '{env_id}'{hint} (Atari short names or gymnasium ids)")


def family_section(requested: dict) -> str:
    """The config section of the env the user asked for (``requested``: the config values
    as mappings, before the section is merged): its family."""
    return env_family(str(requested.get("env", {}).get("id", "")))


@functools.lru_cache(maxsize=1)
def _register_suites() -> None:
    import minigrid  # noqa: F401  (registers MiniGrid-* and BabyAI-*)

    import rimrl.envs.pickup  # noqa: F401  (registers rimrl/Pickup-*)
    import rimrl.envs.testing  # noqa: F401  (registers rimrl/Cue*)


def distractor_splits(env_id: str) -> tuple[str, ...]:
    """The distractor splits that apply to ``env_id`` (empty when none do)."""
    family = env_family(env_id)
    if family == "atari":
        from rimrl.envs.overlays import SPLITS  # heavy
        return SPLITS
    if env_id.startswith("rimrl/Pickup"):
        from rimrl.envs.pickup import SPLITS  # heavy
        return SPLITS
    return ()


def check_split(env_id: str, split: str) -> str:
    """``split`` if it applies to ``env_id``; else a one-line error naming the valid ones."""
    from rimrl.envs.overlays import SPLITS as OVERLAY  # heavy
    from rimrl.envs.pickup import SPLITS as PICKUP  # heavy

    valid = distractor_splits(env_id)
    if split in valid:
        return split
    if not valid:
        raise UserError(f"env '{env_id}' has no distractor splits; they apply to Atari games "
                        "and the pickup suite (rimrl/Pickup-v1)")
    if split in set(OVERLAY) | set(PICKUP):
        raise UserError(f"split '{split}' does not apply to {env_id}; choose from: "
                        f"{', '.join(valid)}")
    near = closest(split, valid, cutoff=0.6)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise UserError(f"unknown distractor split '{split}'; {hint}choose from: {', '.join(valid)}")


def training_setting(env_id: str, distractors: str | None) -> str:
    """The name of what a run trains on: its distractor split (for the pickup suite, the
    id's own split when none is set), else ``clean``."""
    if distractors:
        return distractors
    if env_id.startswith("rimrl/Pickup"):
        from rimrl.envs.pickup import SPLITS, VERSIONS, split_id  # heavy
        return next((s for s in SPLITS for v in VERSIONS if split_id(s, v) == env_id), "clean")
    return "clean"


def make_env(cfg, n_envs: int | None = None, seed: int | None = None, render_mode=None,
             training: bool = True, distractors: str | None = None):
    """The vectorized env of a run config. ``distractors`` (a split name) overrides
    ``cfg.env.distractors``."""
    env_cfg = cfg.env
    n_envs = n_envs or env_cfg.n_envs
    seed = cfg.seed if seed is None else seed
    split = distractors if distractors is not None else env_cfg.distractors
    if split is not None:
        check_split(env_cfg.id, split)
    family = env_family(env_cfg.id)
    subprocess = env_cfg.subprocess and training and n_envs > 1
    user_kwargs = dict(getattr(env_cfg, "kwargs", None) or {})
    if family == "atari":
        if user_kwargs:
            raise UserError("env.kwargs applies to gymnasium, MiniGrid and pickup envs; Atari "
                            "games take env.sticky_actions, env.frame_stack and "
                            "env.terminal_on_life_loss")
        if getattr(env_cfg, "backend", "sb3") == "ale-vector" and training \
                and render_mode is None:
            from rimrl.envs.ale_vector import AleVectorEnv  # heavy
            return AleVectorEnv(env_cfg.id, n_envs=n_envs, seed=seed,
                                frame_stack=env_cfg.frame_stack,
                                sticky_actions=env_cfg.sticky_actions,
                                terminal_on_life_loss=env_cfg.terminal_on_life_loss)
        from rimrl.envs.atari import make_atari_vec_env  # heavy
        from rimrl.envs.overlays import DistractorOverlay  # heavy

        wrappers = (functools.partial(DistractorOverlay, split=split),) if split else ()
        return make_atari_vec_env(
            env_cfg.id, n_envs=n_envs, seed=seed, frame_stack=env_cfg.frame_stack,
            sticky_actions=env_cfg.sticky_actions,
            terminal_on_life_loss=env_cfg.terminal_on_life_loss, subprocess=subprocess,
            render_mode=render_mode, wrappers=wrappers)

    from stable_baselines3.common.env_util import make_vec_env  # heavy
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv  # heavy

    env_kwargs = dict(user_kwargs, **({"render_mode": render_mode} if render_mode else {}))
    wrapper = None
    if env_cfg.id.startswith("rimrl/Pickup"):
        if split is not None:
            env_kwargs["split"] = split
    elif family == "grid":
        from rimrl.envs.minigrid_obs import MissionTokens  # heavy
        wrapper = MissionTokens
    # a callable, not the id: worker processes import rimrl's suites before gym.make
    return make_vec_env(functools.partial(make_registered, env_cfg.id), n_envs=n_envs,
                        seed=seed, wrapper_class=wrapper,
                        vec_env_cls=SubprocVecEnv if subprocess else DummyVecEnv,
                        env_kwargs=env_kwargs or None)


def make_registered(env_id: str, **kwargs):
    """``gym.make(env_id)`` after registering rimrl's suites and MiniGrid's (in a
    ``SubprocVecEnv`` worker they are not registered yet)."""
    import gymnasium as gym  # heavy

    _register_suites()
    return gym.make(env_id, **kwargs)


def env_references(envs: list[str]) -> tuple[dict[str, int], dict[str, tuple[float, float]]]:
    """Env frames per agent step (Atari's frame skip 4) and (random, human) scores of the
    Atari games among ``envs``."""
    from rimrl.envs.atari import atari_id, is_atari  # heavy

    frames, reference = {}, {}
    for env in envs:
        if is_atari(env):
            frames[env] = 4
            game = atari_id(env)[4:].rsplit("-v", 1)[0]
            if game in RANDOM_HUMAN:
                reference[env] = RANDOM_HUMAN[game]
        else:
            frames[env] = 1
    return frames, reference


#: agent steps of the RIMs paper's Atari PPO runs (and of CleanRL's PPO reference scores):
#: a shorter Atari run's summary says it is shorter
PAPER_ATARI_STEPS = 10_000_000


def final_score_text(env_id: str, scores: list[float], timesteps: int) -> str:
    """What the last ``scores`` (one per finished game) of a run mean, in one phrase: on
    Atari the raw score with its human-normalized value and the random and human references,
    and a word when the run is shorter than the paper's budget; on the pickup suite the
    success rate with its Wilson interval (its reward is positive exactly when the target is
    picked up); elsewhere the raw score."""
    import numpy as np  # heavy

    from rimrl.report.stats import human_normalized, wilson_ci  # heavy

    if not scores:
        return "raw score n/a (no game finished; raise --timesteps)"
    mean = float(np.mean(scores))
    text = f"raw score {format_score(mean)} over the last {len(scores)} games"
    _, reference = env_references([env_id])
    if env_id in reference:
        random, human = reference[env_id]
        text += (f" = {100 * human_normalized(mean, random, human):.1f}% human-normalized "
                 f"(random play {random:,.1f}, human {human:,.1f})")
        if timesteps < PAPER_ATARI_STEPS:
            text += (f"; {timesteps:,} steps is {100 * timesteps / PAPER_ATARI_STEPS:.2g}% of "
                     f"the paper's {PAPER_ATARI_STEPS:,}")
    elif env_id.startswith("rimrl/Pickup"):
        rate, low, high = wilson_ci(sum(score > 0 for score in scores), len(scores))
        text += f"; success {rate:.3f} [{low:.3f}, {high:.3f}] (95% Wilson)"
    return text


def requested_splits(env_id: str, requested) -> list[str]:
    """The split names ``--distractors`` asks for (``all``: every split of the env); a
    one-line error for a split the env does not have."""
    if not requested:
        return []
    if list(requested) == ["all"]:  # a list from a sweep file, a tuple from the CLI
        valid = distractor_splits(env_id)
        if not valid:
            check_split(env_id, "all")  # raises: no splits for this env
        return list(valid)
    return [check_split(env_id, split) for split in requested]
