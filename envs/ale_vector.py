"""Atari in C++ threads: ale-py's ``AtariVectorEnv`` as an SB3 ``VecEnv`` (``env.backend:
ale-vector``).

The emulators step in a C++ thread pool and do their own preprocessing (no-op reset up to
30, frame skip 4 with max-pool over the last two frames, 84x84 grey, frame stack 4, FIRE at
reset for games that need it), so no Python wrapper runs per env and step. What SB3's
``AtariWrapper`` does in Python besides, this adapter does on whole arrays:

- **episodic life** (training only): when a life is lost the step reports ``done`` (the
  learner bootstraps no further and the recurrent state restarts) while the game goes on, as
  SB3's ``EpisodicLifeEnv`` does. ale-py's own ``episodic_life`` restarts the whole game at
  each life loss (measured: Breakout back at 5 lives each time), so it stays off here.
- **reward clipping** (training only) to the sign, after the raw reward is added to the
  game's score;
- **raw game scores**: ``info["episode"] = {"r", "l", "t"}`` when a game ends (over all its
  lives), what SB3's ``Monitor`` reports, so logs and ``rollout/ep_rew_mean`` read the same.

Differences that remain (documented in docs/ppo.md): after a life loss SB3 takes one no-op
step and presses FIRE; here the game simply continues. Observations are channel-first
``(4, 84, 84)`` uint8, as SB3's pipeline gives after its automatic transpose, so models move
between the two backends.
"""

from __future__ import annotations

import re
import time
from typing import Any, Optional, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv


def rom_name(game: str) -> str:
    """ale-py's ROM name of a game: ``DemonAttack``, ``ALE/DemonAttack-v5`` -> ``demon_attack``."""
    name = game.split("/")[-1]
    name = re.sub(r"(NoFrameskip)?-v\d+$", "", name)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class AleVectorEnv(VecEnv):
    """``n_envs`` Atari games stepped by ale-py's C++ ``AtariVectorEnv``, with SB3's
    ``VecEnv`` interface and ``AtariWrapper``'s behaviour (see the module docstring).

    Args:
        game: a short name or ALE id (``DemonAttack``, ``ALE/Pong-v5``).
        n_envs: parallel games.
        seed: base seed (game i gets seed + i, as SB3's ``make_vec_env``).
        frame_stack: stacked frames.
        sticky_actions: repeat the previous action with probability 0.25.
        terminal_on_life_loss: end learning episodes at a life loss (training).
        clip_reward: clip rewards to their sign (training).
        num_threads: C++ threads (0: one per core).
    """

    def __init__(self, game: str, n_envs: int = 8, seed: Optional[int] = None,
                 frame_stack: int = 4, sticky_actions: bool = False,
                 terminal_on_life_loss: bool = True, clip_reward: bool = True,
                 num_threads: int = 0):
        from ale_py.vector_env import AtariVectorEnv

        self.vec = AtariVectorEnv(
            rom_name(game), n_envs, num_threads=num_threads, stack_num=frame_stack,
            repeat_action_probability=0.25 if sticky_actions else 0.0, noop_max=30,
            frameskip=4, maxpool=True, img_height=84, img_width=84, grayscale=True,
            episodic_life=False, reward_clipping=False, use_fire_reset=True,
            autoreset_mode="SameStep")
        super().__init__(n_envs, self.vec.single_observation_space,
                         self.vec.single_action_space)
        self.terminal_on_life_loss = terminal_on_life_loss
        self.clip_reward = clip_reward
        self._seed = seed
        self._actions = np.zeros(n_envs, dtype=np.int64)
        self._lives = np.zeros(n_envs, dtype=np.int64)
        self._score = np.zeros(n_envs, dtype=np.float64)
        self._length = np.zeros(n_envs, dtype=np.int64)
        self._start = time.time()

    def reset(self) -> np.ndarray:
        obs, info = self.vec.reset(seed=self._seed)
        self._seed = None  # seeded once; later resets continue the generators
        self._lives[:] = info["lives"]
        self._score[:] = 0.0
        self._length[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.vec.step(self._actions)
        game_over = terminated | truncated
        self._score += reward
        self._length += 1
        lives = np.asarray(info["lives"])
        life_lost = (lives < self._lives) & ~game_over
        self._lives = lives.copy()  # after a game over: the new game's lives
        done = game_over | (life_lost if self.terminal_on_life_loss else False)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        final = info.get("final_obs")
        for i in np.flatnonzero(done):
            if game_over[i]:
                infos[i]["terminal_observation"] = final[i] if final is not None else obs[i]
                infos[i]["episode"] = {"r": float(self._score[i]), "l": int(self._length[i]),
                                       "t": round(time.time() - self._start, 6)}
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                self._score[i], self._length[i] = 0.0, 0
            else:  # a life lost: the game goes on, so its observation is the next one
                infos[i]["terminal_observation"] = obs[i]
                infos[i]["TimeLimit.truncated"] = False
        rewards = np.sign(reward) if self.clip_reward else reward
        return obs, rewards.astype(np.float32), done, infos

    def close(self) -> None:
        self.vec.close()

    def seed(self, seed: Optional[int] = None) -> Sequence[None]:
        self._seed = seed
        return [None] * self.num_envs

    # SB3's VecEnv asks these of wrapped Python envs; there are none here
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(self._indices(indices))
        raise AttributeError(f"AleVectorEnv has no per-env attribute '{attr_name}'")

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"AleVectorEnv cannot set '{attr_name}' on its C++ envs")

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        raise AttributeError(f"AleVectorEnv has no per-env method '{method_name}'")

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)
