"""Tiny fake environments for fast tests: cheap to step, with a memory component.

``CueImageEnv``: a small grayscale image shows a cue (bright left or right half) on the
first step only; later frames are blank; at the last step the agent is rewarded for the
action that matches the cue. A feed-forward policy cannot beat chance; a recurrent one can.
``CueVectorEnv`` is the same task with a vector observation, ``CueDictEnv`` with a dict one.
"""

from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CueVectorEnv(gym.Env):
    """Remember a cue shown at t=0 and answer it after ``delay`` steps.

    Observation: (3,) float32: one-hot cue at t=0 (first two entries), zeros later, and a
    third entry 1.0 on the answer step. Actions: 0 or 1. Reward +1 for the right answer at
    the end, 0 otherwise. Episode length ``delay + 1``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, delay: int = 4, render_mode: Optional[str] = None):
        self.delay = delay
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._cue = 0
        self._t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(3, np.float32)
        if self._t == 0:
            obs[self._cue] = 1.0
        if self._t == self.delay:
            obs[2] = 1.0
        return obs

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(2))
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        reward = 0.0
        terminated = self._t == self.delay
        if terminated:
            reward = 1.0 if int(action) == self._cue else 0.0
        self._t += 1
        return self._obs(), reward, terminated, False, {}

    def render(self) -> np.ndarray:
        """A 36x36 RGB picture: the cue's half lit at t=0, a bar on the answer step."""
        frame = np.zeros((36, 36, 3), np.uint8)
        if self._t == 0:
            frame[:, 18 * self._cue: 18 * (self._cue + 1)] = 255
        if self._t == self.delay:
            frame[:4] = 128
        return frame


class CueImageEnv(CueVectorEnv):
    """:class:`CueVectorEnv` with a (size, size, 1) uint8 image observation (size >= 36)."""

    def __init__(self, delay: int = 4, size: int = 36, render_mode: Optional[str] = None):
        super().__init__(delay, render_mode)
        self.size = size
        self.observation_space = spaces.Box(0, 255, (size, size, 1), np.uint8)

    def _obs(self) -> np.ndarray:
        frame = np.zeros((self.size, self.size, 1), np.uint8)
        half = self.size // 2
        if self._t == 0:
            frame[:, half * self._cue: half * (self._cue + 1)] = 255
        if self._t == self.delay:
            frame[:4, :] = 128
        return frame


class CueDictEnv(CueVectorEnv):
    """:class:`CueVectorEnv` with a dict observation: ``cue`` (the one-hot cue at t=0) and
    ``answer`` (1.0 on the answer step), for dict-observation policies."""

    def __init__(self, delay: int = 4, render_mode: Optional[str] = None):
        super().__init__(delay, render_mode)
        self.observation_space = spaces.Dict({"cue": spaces.Box(0.0, 1.0, (2,), np.float32),
                                              "answer": spaces.Box(0.0, 1.0, (1,), np.float32)})

    def _obs(self) -> dict:
        flat = super()._obs()
        return {"cue": flat[:2], "answer": flat[2:]}


gym.register("rimrl/CueVector-v0", entry_point=CueVectorEnv)
gym.register("rimrl/CueDict-v0", entry_point=CueDictEnv)
gym.register("rimrl/CueImage-v0", entry_point=CueImageEnv)
