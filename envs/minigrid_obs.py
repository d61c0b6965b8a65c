"""MiniGrid/BabyAI observations for SB3: the mission string as token ids of a fixed vocabulary.

SB3 cannot batch strings, so :class:`MissionTokens` turns ``{"image", "direction",
"mission"}`` into ``image`` (7, 7, 3) cell indices (object, colour, state; a Box with high 31
so SB3 does not rescale it as a picture), ``direction`` (Discrete 4) and ``mission`` (a
fixed-length array of token ids). The vocabulary covers the BabyAI grammar and is fixed in
code: nothing is downloaded or learned from data. Unknown words map to ``<unk>``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

VOCABULARY = (
    "<pad> <unk> pick up go to open put the a an next and then after you key ball box door "
    "red green blue purple yellow grey object goal lava wall get reach"
).split()
TOKEN_IDS = {word: i for i, word in enumerate(VOCABULARY)}
MISSION_LENGTH = 24


def tokenize(mission: str, length: int = MISSION_LENGTH) -> np.ndarray:
    """Token ids of ``mission`` (lower-cased, punctuation dropped), padded with 0."""
    words = mission.lower().replace(",", " ").replace(".", " ").split()
    ids = [TOKEN_IDS.get(word, TOKEN_IDS["<unk>"]) for word in words][:length]
    return np.array(ids + [0] * (length - len(ids)), dtype=np.int64)


class MissionTokens(gym.ObservationWrapper):
    """Dict observation with the mission as token ids (see module docstring)."""

    def __init__(self, env: gym.Env, mission_length: int = MISSION_LENGTH):
        super().__init__(env)
        self.mission_length = mission_length
        view = env.observation_space["image"].shape
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 31, view, np.uint8),
            "direction": spaces.Discrete(4),
            "mission": spaces.Box(0, len(VOCABULARY) - 1, (mission_length,), np.int64),
        })

    def observation(self, obs: dict) -> dict:
        return {"image": obs["image"], "direction": obs["direction"],
                "mission": tokenize(obs["mission"], self.mission_length)}


def is_minigrid(env_id: str) -> bool:
    """True for ids whose envs produce MiniGrid observations (MiniGrid-*, BabyAI-*, rimrl
    pickup)."""
    name = env_id.split("/")[-1]
    return name.startswith(("MiniGrid-", "BabyAI-", "Pickup"))
