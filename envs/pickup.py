"""Object pickup with distractors, and named distribution shifts (thesis section 8.4.2, Fig. 4).

One room; the mission names a target ("pick up the red ball"); distractor objects fill the
room. Picking up the target succeeds (reward ``1 - 0.9 * steps / max_steps``, as in BabyAI);
picking up anything else fails the episode (reward 0). The agent sees the usual 7x7
egocentric view (partially observed; ``agent_view_size`` shrinks it) and the mission.

Distractor colours, kinds and counts come from :class:`PickupPools`. Named splits:

- ``train``: distractors from the training pools (the distribution trained on);
- ``novel-color``: distractor colours never seen in training;
- ``novel-type``: distractor kinds never seen in training;
- ``more``: more distractors than in training (training pools);
- ``novel``: all three shifts at once.

The target always comes from the training colours and kinds. Two versions, as gymnasium
versions envs (``version``; the old results stay reproducible):

- ``v0``: distractors drawn with replacement; none shares both the target's colour and kind.
  Two distractors may be alike (then neither can be the target: a mission-blind policy
  scores above 1/objects on ``train``), and on the shifted splits every distractor is novel,
  so the target is the only familiar object: "pick the familiar one" solves them without
  the mission.
- ``v1`` (leak-free): every object in a room has its own (colour, kind); every shifted split
  keeps one training-pool distractor besides the target, so the mission is needed on every
  split; ``novel`` draws its distractors from every pairing that is not a training object
  (a novel colour, a novel kind or both). ``docs/distractors.md`` lists, per split, what a
  scripted agent that ignores the mission or the objects scores (``rimrl.envs.pickup_scripted``).

``view`` names a room and view size (:data:`VIEWS`): ``partial`` is a 7x7 floor seen through
a 5x5 view, so the agent sees only part of the room ahead of it.

Registered ids: ``rimrl/Pickup-v0`` and ``rimrl/Pickup-v1`` (train split) and
``rimrl/Pickup-<Split>-v<N>`` for each split (``rimrl/Pickup-NovelColor-v1``, ...);
``gym.make("rimrl/Pickup-v1", split="novel", view="partial")`` works too. Observations are
wrapped by :class:`rimrl.envs.minigrid_obs.MissionTokens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import gymnasium as gym
import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball, Box, Key
from minigrid.minigrid_env import MiniGridEnv

from rimrl.envs.minigrid_obs import MissionTokens

OBJECTS = {"ball": Ball, "box": Box, "key": Key}
ALL_COLORS = ["red", "green", "blue", "purple", "yellow", "grey"]
SPLITS = ("train", "novel-color", "novel-type", "more", "novel")
VERSIONS = (0, 1)
#: the largest room side (walls included): every step encodes the whole room
MAX_ROOM = 25
#: named room and view sizes (env kwarg ``view``): the room's side with its walls, the view's
#: side. ``default``: a 5x5 floor inside a 7x7 view (nearly fully observed); ``partial``: a
#: 7x7 floor seen 5x5 ahead, where the agent sees only part of the room.
VIEWS = {"default": dict(room_size=7, agent_view_size=7),
         "partial": dict(room_size=9, agent_view_size=5)}
_WALL = (OBJECT_TO_IDX["wall"], COLOR_TO_IDX["grey"], 0)
_EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)


@dataclass(frozen=True)
class PickupPools:
    """Which colours, kinds and counts each split draws distractors from.

    Args:
        train_colors, train_types: the training pools (also the target's pools).
        novel_colors, novel_types: held out of training; must not meet the training pools.
        distractors: distractor count in training.
        more_distractors: distractor count of the ``more`` and ``novel`` splits.
    """

    train_colors: tuple[str, ...] = ("red", "green", "blue", "purple")
    train_types: tuple[str, ...] = ("ball", "box")
    novel_colors: tuple[str, ...] = ("yellow", "grey")
    novel_types: tuple[str, ...] = ("key",)
    distractors: int = 3
    more_distractors: int = 6

    def __post_init__(self):
        if set(self.train_colors) & set(self.novel_colors):
            raise ValueError("novel_colors must not include a training colour")
        if set(self.train_types) & set(self.novel_types):
            raise ValueError("novel_types must not include a training kind")
        unknown = set(self.train_types + self.novel_types) - set(OBJECTS)
        if unknown:
            raise ValueError(f"unknown object kinds {sorted(unknown)}; use {sorted(OBJECTS)}")
        unknown = set(self.train_colors + self.novel_colors) - set(ALL_COLORS)
        if unknown:
            raise ValueError(f"unknown colours {sorted(unknown)}; use {ALL_COLORS}")
        if self.distractors < 0 or self.more_distractors < self.distractors:
            raise ValueError("need 0 <= distractors <= more_distractors")

    def training_objects(self) -> list[tuple[str, str]]:
        """Every (colour, kind) of the training pools: the target's candidates."""
        return [(c, k) for c in self.train_colors for k in self.train_types]

    def distractor_objects(self, name: str) -> list[tuple[str, str]]:
        """v1: the (colour, kind) pairs split ``name`` draws its shifted distractors from
        (``novel``: every pairing of all colours and kinds that is not a training object)."""
        if name == "novel":
            familiar = set(self.training_objects())
            return [(c, k) for c in self.train_colors + self.novel_colors
                    for k in self.train_types + self.novel_types if (c, k) not in familiar]
        colors, types, _ = self.split(name)
        return [(c, k) for c in colors for k in types]

    def check_v1(self) -> None:
        """A ``ValueError`` unless every v1 split can give each object its own (colour, kind)
        with one training-pool distractor on the shifted splits."""
        familiar = len(self.training_objects())
        if self.distractors < 1:
            raise ValueError("Pickup-v1 needs at least 1 distractor (the shifted splits keep "
                             "one from the training pools)")
        for name in SPLITS:
            count = self.split(name)[2]
            if name in ("train", "more"):
                need, have = count + 1, familiar
            else:
                need, have = count - 1, len(self.distractor_objects(name))
            if need > have:
                raise ValueError(f"split '{name}' needs {need} distinct objects but its pools "
                                 f"give {have}; use fewer distractors or larger pools")

    def split(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...], int]:
        """(distractor colours, distractor kinds, count) of split ``name``."""
        if name not in SPLITS:
            raise ValueError(f"unknown pickup split '{name}'; choose one of: {', '.join(SPLITS)}")
        colors = self.novel_colors if name in ("novel-color", "novel") else self.train_colors
        types = self.novel_types if name in ("novel-type", "novel") else self.train_types
        count = self.more_distractors if name in ("more", "novel") else self.distractors
        return colors, types, count


class PickupDistractorsEnv(MiniGridEnv):
    """Pick up the named object among distractors drawn from a split's pools.

    Args:
        split: one of :data:`SPLITS`.
        pools: :class:`PickupPools` (or a dict of its fields).
        room_size: room side including walls (default 7: a 5x5 floor).
        max_steps: episode limit.
        agent_view_size: side of the egocentric view (odd, >= 3; default 7). A view smaller
            than the room hides objects behind and beside the agent, so a policy must
            remember where it has looked.
        mission_steps: show the mission only in the first ``mission_steps`` observations
            (the reset's is the first), then an empty one; ``None``: always. With 1, the
            target must be remembered from the first step: a policy without memory can only
            guess among the objects it sees, so the task needs memory by construction.
        version: 0 or 1, how distractors are drawn (module docstring); the registered ids
            set it (``rimrl/Pickup-v1``).
        view: a name of :data:`VIEWS` that sets ``room_size`` and ``agent_view_size`` (give
            one or the other).
    """

    def __init__(self, split: str = "train", pools: Optional[PickupPools] = None,
                 room_size: Optional[int] = None, max_steps: int = 64,
                 render_mode: Optional[str] = None, agent_view_size: Optional[int] = None,
                 mission_steps: Optional[int] = None, version: int = 0,
                 view: Optional[str] = None):
        if mission_steps is not None and mission_steps < 1:
            raise ValueError(f"mission_steps must be at least 1 (or null: always shown), got "
                             f"{mission_steps}")
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version}")
        if view is not None:
            if view not in VIEWS:
                raise ValueError(f"unknown view '{view}'; choose one of: {', '.join(VIEWS)}")
            if room_size is not None or agent_view_size is not None:
                raise ValueError(f"view '{view}' sets room_size and agent_view_size; give "
                                 f"either the view or the sizes")
        sizes = VIEWS[view or "default"]
        room_size = sizes["room_size"] if room_size is None else room_size
        agent_view_size = sizes["agent_view_size"] if agent_view_size is None \
            else agent_view_size
        self.mission_steps = mission_steps
        self.version = version
        self.view = view
        if not 5 <= room_size <= MAX_ROOM:
            raise ValueError(f"room_size must be between 5 and {MAX_ROOM} (every step encodes "
                             f"the whole room), got {room_size}")
        if agent_view_size < 3 or agent_view_size % 2 == 0:
            raise ValueError(f"agent_view_size must be odd and at least 3, got {agent_view_size}")
        self.pools = pools if isinstance(pools, PickupPools) else PickupPools(**(pools or {}))
        if version == 1:
            self.pools.check_v1()
        self.distractor_colors, self.distractor_types, self.num_distractors = \
            self.pools.split(split)
        self.split = split
        floor = (room_size - 2) ** 2
        if self.pools.more_distractors + 2 > floor:
            raise ValueError(f"a room of size {room_size} cannot hold "
                             f"{self.pools.more_distractors} distractors")
        self.target = None
        mission_space = MissionSpace(mission_func=self._gen_mission,
                                     ordered_placeholders=[ALL_COLORS, list(OBJECTS)])
        super().__init__(mission_space=mission_space, grid_size=room_size, max_steps=max_steps,
                         see_through_walls=True, render_mode=render_mode,
                         agent_view_size=agent_view_size)

    @staticmethod
    def _gen_mission(color: str, kind: str) -> str:
        return f"pick up the {color} {kind}"

    def _choice(self, items):
        return items[int(self.np_random.integers(len(items)))]

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        color = self._choice(self.pools.train_colors)
        kind = self._choice(self.pools.train_types)
        self.target = OBJECTS[kind](color)
        self.place_obj(self.target)
        draw = self._distractors_v1 if self.version == 1 else self._distractors_v0
        for d_color, d_kind in draw((color, kind)):
            self.place_obj(OBJECTS[d_kind](d_color))
        self.place_agent()
        self.mission = self._gen_mission(color, kind)

    # Both draw lazily (generators): each pair is placed before the next is drawn, the order
    # of random draws v0 episodes were made with.
    def _distractors_v0(self, target: tuple[str, str]) -> Iterator[tuple[str, str]]:
        # with replacement; only the target's own (colour, kind) is excluded
        for _ in range(self.num_distractors):
            while True:
                pair = (self._choice(self.distractor_colors), self._choice(self.distractor_types))
                if pair != target:
                    break
            yield pair

    def _distractors_v1(self, target: tuple[str, str]) -> Iterator[tuple[str, str]]:
        # without replacement: each object its own (colour, kind); a shifted split keeps one
        # training-pool distractor, so the target is never the only familiar object
        taken = {target}
        shifted = self.split not in ("train", "more")
        pools = ([self.pools.training_objects()]
                 + [self.pools.distractor_objects(self.split)] * (self.num_distractors - 1)
                 if shifted else [self.pools.training_objects()] * self.num_distractors)
        for pool in pools:
            pair = self._choice([p for p in pool if p not in taken])
            taken.add(pair)
            yield pair

    def gen_obs(self) -> dict:
        """The egocentric view in numpy: same result as MiniGrid's (tested), ~10x faster.

        MiniGrid builds the view cell by cell with Python objects (slice, then 1-4 left
        rotations); here the full-grid encoding is padded with walls, sliced and rotated.
        Valid because the room is seen through (``see_through_walls=True``: no occlusion).
        """
        view = self.agent_view_size
        full = self.grid.encode()
        padded = np.empty((full.shape[0] + 2 * view, full.shape[1] + 2 * view, 3), np.uint8)
        padded[...] = _WALL
        padded[view:-view, view:-view] = full
        top_x, top_y, _, _ = self.get_view_exts()
        image = padded[top_x + view:top_x + 2 * view, top_y + view:top_y + 2 * view]
        image = np.rot90(image, k=-(self.agent_dir + 1), axes=(0, 1)).copy()
        image[view // 2, view - 1] = self.carrying.encode() if self.carrying else _EMPTY
        hidden = self.mission_steps is not None and self.step_count >= self.mission_steps
        return {"image": image, "direction": self.agent_dir,
                "mission": "" if hidden else self.mission}

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if action == self.actions.pickup and self.carrying is not None:
            success = self.carrying is self.target
            reward = self._reward() if success else 0.0
            terminated = True
            info["success"] = success
        elif terminated or truncated:
            info["success"] = False
        return obs, reward, terminated, truncated, info


def make_pickup(split: str = "train", pools: Optional[dict] = None,
                room_size: Optional[int] = None, max_steps: int = 64,
                render_mode: Optional[str] = None, agent_view_size: Optional[int] = None,
                mission_steps: Optional[int] = None, version: int = 0,
                view: Optional[str] = None) -> gym.Env:
    """A :class:`PickupDistractorsEnv` with token-id missions (what ``gym.make`` returns)."""
    return MissionTokens(PickupDistractorsEnv(split, pools, room_size, max_steps, render_mode,
                                              agent_view_size, mission_steps, version, view))


def split_id(split: str, version: int = 0) -> str:
    """The registered id of a split: ``novel-color`` -> ``rimrl/Pickup-NovelColor-v0``."""
    if split == "train":
        return f"rimrl/Pickup-v{version}"
    name = "".join(part.capitalize() for part in split.split("-"))
    return f"rimrl/Pickup-{name}-v{version}"


for _version in VERSIONS:
    for _split in SPLITS:
        gym.register(split_id(_split, _version), entry_point="rimrl.envs.pickup:make_pickup",
                     kwargs={"split": _split, "version": _version})
