"""Atari games by short name on ale-py's bundled ROMs, with the standard preprocessing.

``make_atari_vec_env("DemonAttack", n_envs=8)`` builds: ``ALE/DemonAttack-v5`` with
frameskip 1 and no sticky actions (unless ``sticky_actions``), a ``Monitor`` that records the
raw game score, SB3's ``AtariWrapper`` (noop reset up to 30, frame skip 4 with max-pool over
the last two frames, 84x84 grayscale, episodic life, reward clipping to {-1, 0, 1} for
learning), and a 4-frame stack. Full gymnasium ids (``ALE/Pong-v5``,
``PongNoFrameskip-v4``) are accepted too.
"""

from __future__ import annotations

import difflib
import functools
from typing import Callable, Optional

import gymnasium as gym


class UnknownEnvError(ValueError):
    """An environment name that is not known; the message lists the closest names."""


@functools.lru_cache(maxsize=1)
def ale_games() -> tuple[str, ...]:
    """Short names of every game ale-py registers (``DemonAttack``, ``MsPacman``, ...)."""
    import ale_py

    gym.register_envs(ale_py)
    names = {env_id.split("/", 1)[1].rsplit("-v", 1)[0]
             for env_id in gym.registry if env_id.startswith("ALE/")}
    return tuple(sorted(names))


def is_atari(name: str) -> bool:
    """True when ``name`` is an ALE game (short name or ALE id)."""
    try:
        atari_id(name)
        return True
    except UnknownEnvError:
        return False


def atari_id(name: str) -> str:
    """The gymnasium id for a short game name or an ALE id; raises :class:`UnknownEnvError`."""
    games = ale_games()
    if name.startswith("ALE/"):
        if name in gym.registry:
            return name
        short = name[4:].rsplit("-v", 1)[0]
    elif name.endswith(("NoFrameskip-v4", "-v4", "Deterministic-v4")):
        short = name.split("NoFrameskip")[0].split("Deterministic")[0].rsplit("-v", 1)[0]
    else:
        short = name
    by_lower = {g.lower(): g for g in games}
    if short.lower() in by_lower:
        return f"ALE/{by_lower[short.lower()]}-v5"
    near = difflib.get_close_matches(short, games, n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(near)}" if near else ""
    raise UnknownEnvError(f"unknown Atari game '{name}'{hint}")


def _make_ale(env_id: str, sticky_actions: bool, render_mode: Optional[str] = None, **_) -> gym.Env:
    """Top-level (picklable) factory: subprocess workers import ale-py themselves."""
    import ale_py

    gym.register_envs(ale_py)
    return gym.make(env_id, frameskip=1, repeat_action_probability=0.25 if sticky_actions else 0.0,
                    full_action_space=False, render_mode=render_mode)


def atari_env_factory(name: str, sticky_actions: bool = False,
                      render_mode: Optional[str] = None) -> Callable[..., gym.Env]:
    """A picklable callable that makes one raw ALE env (frameskip 1) for ``name``."""
    return functools.partial(_make_ale, atari_id(name), sticky_actions, render_mode)


def make_atari_vec_env(
    name: str,
    n_envs: int = 8,
    seed: Optional[int] = None,
    frame_stack: int = 4,
    sticky_actions: bool = False,
    terminal_on_life_loss: bool = True,
    clip_reward: bool = True,
    subprocess: bool = False,
    render_mode: Optional[str] = None,
    wrappers: tuple[Callable[[gym.Env], gym.Env], ...] = (),
):
    """A vectorized, preprocessed Atari env; ``Monitor`` reports the raw game score.

    Args:
        name: short name (``DemonAttack``) or a gymnasium id.
        n_envs: parallel environments.
        seed: base seed; env i gets seed + i.
        frame_stack: stacked frames (4 as in the Nature DQN and PPO papers).
        sticky_actions: repeat the previous action with probability 0.25 (Machado et al.).
        terminal_on_life_loss: end the learning episode at a life loss (the score still spans
            the whole game).
        clip_reward: clip rewards to their sign for learning.
        subprocess: run envs in worker processes (helps when the game, not the network, is
            the bottleneck; on 2 CPU cores the network dominates).
        render_mode: e.g. ``rgb_array`` for video.
        wrappers: extra wrappers applied to the raw frame before preprocessing (e.g.
            distractor overlays).
    """
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack

    factory = atari_env_factory(name, sticky_actions, render_mode)

    def wrap(env: gym.Env) -> gym.Env:
        for wrapper in wrappers:
            env = wrapper(env)
        return AtariWrapper(env, noop_max=30, frame_skip=4, screen_size=84,
                            terminal_on_life_loss=terminal_on_life_loss, clip_reward=clip_reward)

    vec_cls = SubprocVecEnv if subprocess and n_envs > 1 else DummyVecEnv
    env = make_vec_env(factory, n_envs=n_envs, seed=seed, wrapper_class=wrap, vec_env_cls=vec_cls)
    return VecFrameStack(env, n_stack=frame_stack) if frame_stack > 1 else env
