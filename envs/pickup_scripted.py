"""Scripted pickup agents: the floors a learned policy's success is read against.

Each agent knows the room (the full grid, not the egocentric view), walks the shortest path to
one object it chooses and picks it up, through the env's own actions. They differ only in the
choice, which says what a policy could reach while ignoring part of its input:

- ``oracle``: the target (every episode is solvable in the step limit if this scores 1);
- ``mission-blind``: uniformly one of the objects that could be the target (training colour
  and kind, and no twin: the target is the only object of its colour and kind): the best a
  policy that never reads the mission can do;
- ``object-blind``: uniformly any object: a policy that reads neither the mission nor
  what the objects are.

On ``rimrl/Pickup-v0``'s shifted splits the target is the only familiar object, so
``mission-blind`` scores 1 there; ``rimrl/Pickup-v1`` keeps it at or below 1/2.

Usage: ``python -m rimrl.envs.pickup_scripted [--episodes 1000] [--version 1] [--view partial]``
prints a table of success per split and agent.
"""

from __future__ import annotations

import argparse
from collections import deque
from typing import Callable, Optional

import gymnasium as gym
import numpy as np
from minigrid.core.constants import DIR_TO_VEC

from rimrl.envs.pickup import SPLITS, PickupDistractorsEnv, split_id

Choice = Callable[[PickupDistractorsEnv, list, np.random.Generator], object]


def _candidates(env: PickupDistractorsEnv, objects: list) -> list:
    """The objects that could be the target, seen without the mission."""
    pairs = [(o.color, o.type) for o in objects]
    return [o for o, pair in zip(objects, pairs) if pairs.count(pair) == 1
            and o.color in env.pools.train_colors and o.type in env.pools.train_types]


AGENTS: dict[str, Choice] = {
    "oracle": lambda env, objects, rng: env.target,
    "mission-blind": lambda env, objects, rng: _pick(_candidates(env, objects), rng),
    "object-blind": lambda env, objects, rng: _pick(objects, rng),
}


def _pick(objects: list, rng: np.random.Generator):
    return objects[int(rng.integers(len(objects)))]


def room_objects(env: PickupDistractorsEnv) -> list:
    """Every object lying in the room."""
    return [obj for obj in env.grid.grid if obj is not None and obj.type in ("ball", "box", "key")]


def path_actions(env: PickupDistractorsEnv, goal: tuple[int, int]) -> Optional[list[int]]:
    """Actions (turns and forwards) that bring the agent next to ``goal`` facing it, then pick
    it up; ``None`` when other objects wall it off. Breadth-first search over free cells."""
    start = tuple(int(v) for v in env.agent_pos)
    came = {start: None}
    queue = deque([start])
    end = None
    while queue:
        cell = queue.popleft()
        if any(tuple(np.add(cell, d)) == goal for d in DIR_TO_VEC):
            end = cell
            break
        for d in DIR_TO_VEC:
            nxt = (cell[0] + int(d[0]), cell[1] + int(d[1]))
            if nxt not in came and env.grid.get(*nxt) is None:
                came[nxt] = cell
                queue.append(nxt)
    if end is None:
        return None
    cells = [end]
    while came[cells[-1]] is not None:
        cells.append(came[cells[-1]])
    cells.reverse()
    actions, facing = [], int(env.agent_dir)
    targets = cells[1:] + [goal]
    for here, there in zip(cells, targets):
        step = (there[0] - here[0], there[1] - here[1])
        want = next(i for i, d in enumerate(DIR_TO_VEC) if tuple(int(v) for v in d) == step)
        turns = (want - facing) % 4
        actions += [env.actions.left] if turns == 3 else [env.actions.right] * turns
        facing = want
        actions.append(env.actions.forward if there != goal else env.actions.pickup)
    return actions


def play(env: gym.Env, agent: str, seed: int, rng: np.random.Generator) -> bool:
    """One episode of ``agent`` on ``env`` (a registered pickup env) reset with ``seed``:
    whether it picked up the target."""
    env.reset(seed=seed)
    room = env.unwrapped
    choice = AGENTS[agent](room, room_objects(room), rng)
    actions = path_actions(room, tuple(int(v) for v in choice.cur_pos))
    for action in actions or []:
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return bool(info.get("success", False))
    return False


def floors(version: int = 1, episodes: int = 1000, seed: int = 0,
           **env_kwargs) -> dict[str, dict[str, float]]:
    """Success rate of every agent on every split: ``{split: {agent: rate}}``, over the same
    ``episodes`` rooms per split (reset seeds ``seed`` .. ``seed + episodes - 1``)."""
    table = {}
    for split in SPLITS:
        env = gym.make(split_id(split, version), **env_kwargs)
        table[split] = {}
        for agent in AGENTS:
            rng = np.random.default_rng(seed)
            wins = sum(play(env, agent, seed + i, rng) for i in range(episodes))
            table[split][agent] = wins / episodes
        env.close()
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--version", type=int, default=1, choices=(0, 1))
    parser.add_argument("--view", default=None, help="a named view (e.g. partial)")
    args = parser.parse_args(argv)
    kwargs = {"view": args.view} if args.view else {}
    table = floors(args.version, args.episodes, **kwargs)
    print(f"rimrl/Pickup-v{args.version}, view {args.view or 'default'}, "
          f"{args.episodes} episodes per split: success")
    print("| split | " + " | ".join(AGENTS) + " |")
    print("| --- |" + " --- |" * len(AGENTS))
    for split, row in table.items():
        print(f"| {split} | " + " | ".join(f"{row[a]:.3f}" for a in AGENTS) + " |")


if __name__ == "__main__":
    main()
