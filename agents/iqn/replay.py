"""Replay memory for IQN/Rainbow: frames stored once, n-step returns, proportional priorities.

A stacked Atari observation holds four 84x84 frames, three of which the previous observation
already holds. :class:`FrameReplayBuffer` keeps only the newest frame of each observation,
per environment stream, and rebuilds stacks at sampling time (zeroing frames from before an
episode start, exactly as SB3's ``VecFrameStack`` does): one frame plus a few bytes per
transition, ~7.1 KB for Atari, so 1M transitions fit in ~7 GB (Dopamine's circular buffer
does the same). Transitions become sampleable once their n-step window is complete.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Optional

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer

from rimrl.agents.iqn.sum_tree import SumTree


class ReplaySamples(NamedTuple):
    """A sampled batch. ``returns`` are n-step discounted rewards, ``discounts`` are
    ``gamma ** m`` for the m steps taken, ``dones`` mark a termination inside the window,
    ``weights`` are importance-sampling weights, ``indices`` the slots for priority updates."""

    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    returns: torch.Tensor
    discounts: torch.Tensor
    dones: torch.Tensor
    weights: torch.Tensor
    indices: np.ndarray


class FrameReplayBuffer(BaseBuffer):
    """Circular replay memory with frame sharing, n-step returns and prioritized sampling.

    Plugs into SB3's ``OffPolicyAlgorithm`` as ``replay_buffer_class`` (same ``add``
    signature); ``sample`` returns :class:`ReplaySamples`.

    Args:
        buffer_size: transitions kept (over all envs).
        observation_space: Box; images are channel-first ``(frame_stack * c, H, W)``.
        action_space: Discrete.
        device: torch device of sampled batches.
        n_envs: parallel environments (one stream each).
        optimize_memory_usage: accepted for SB3's signature; frame sharing is always on.
        frame_stack: frames per observation (the channel axis holds ``frame_stack`` frames,
            oldest first); 1 stores whole observations.
        n_steps: n of the n-step return (Hessel et al., 2018: 3).
        gamma: discount of the n-step return.
        prioritized: proportional prioritized replay (Schaul et al., 2016); False samples
            uniformly and returns unit weights.
        alpha: priority exponent (Rainbow: 0.5).
        epsilon: added to |priority| so no transition starves.
        seed: seed of the sampling generator.
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Box,
                 action_space: spaces.Discrete, device: torch.device | str = "auto",
                 n_envs: int = 1, optimize_memory_usage: bool = False, frame_stack: int = 1,
                 n_steps: int = 1, gamma: float = 0.99, prioritized: bool = True,
                 alpha: float = 0.5, epsilon: float = 1e-6, seed: Optional[int] = None):
        super().__init__(buffer_size, observation_space, action_space, device, n_envs)
        channels = observation_space.shape[0]
        if frame_stack < 1 or channels % frame_stack:
            raise ValueError(f"observation channels ({channels}) are not {frame_stack} frames")
        if n_steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {n_steps}")
        self.buffer_size = max(buffer_size // n_envs, n_steps + frame_stack + 1)
        self.frame_stack, self.n_steps, self.gamma = frame_stack, n_steps, gamma
        self.prioritized, self.alpha, self.epsilon = prioritized, alpha, epsilon
        frame_shape = (channels // frame_stack, *observation_space.shape[1:])
        size = (self.buffer_size, n_envs)
        self.frames = np.zeros(size + frame_shape, dtype=observation_space.dtype)
        n_actions = int(action_space.n)
        action_dtype = np.uint8 if n_actions <= 256 else np.int32
        self.actions = np.zeros(size, dtype=action_dtype)
        self.rewards = np.zeros(size, dtype=np.float32)
        self.terminal = np.zeros(size, dtype=bool)  # the episode terminated after this step
        self.ends = np.zeros(size, dtype=bool)  # terminated or truncated after this step
        self.starts = np.zeros(size, dtype=bool)  # this observation starts an episode
        self.tree = SumTree(self.buffer_size * n_envs)
        self.max_priority = 1.0
        self._next_start = np.ones(n_envs, dtype=bool)
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------------------ writing
    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray,
            reward: np.ndarray, done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Store one step of every env. ``next_obs`` is not stored: it is the next call's
        ``obs`` (or, after a termination, never needed)."""
        t = self.pos
        frame_channels = self.frames.shape[2]
        self.frames[t] = np.asarray(obs)[:, -frame_channels:]
        self.actions[t] = np.asarray(action).reshape(self.n_envs)
        self.rewards[t] = np.asarray(reward).reshape(self.n_envs)
        done = np.asarray(done, dtype=bool).reshape(self.n_envs)
        truncated = np.array([info.get("TimeLimit.truncated", False) for info in infos],
                             dtype=bool)
        self.terminal[t] = done & ~truncated
        self.ends[t] = done
        self.starts[t] = self._next_start
        self._next_start = done.copy()
        # slot t now holds a new transition and slots t+1.. lost the frames their stacks
        # reached back to: none of them may be sampled until rewritten
        stale = (t + np.arange(self.frame_stack)) % self.buffer_size
        self._set_priority(stale, np.zeros((len(stale), self.n_envs)))
        self.pos = (t + 1) % self.buffer_size
        self.full = self.full or self.pos == 0
        complete = t - self.n_steps  # its window t-n..t-1 and bootstrap frame t now exist
        if complete >= 0 or self.full:
            complete %= self.buffer_size
            ok = self._window_ok(complete)
            self._set_priority([complete], np.where(ok, self.max_priority ** self.alpha, 0.0))

    def end_all_episodes(self) -> None:
        """Mark every stream as cut at the last stored step (the env was reset without a
        ``done``, e.g. on resuming): windows through that step are never sampled."""
        last = (self.pos - 1) % self.buffer_size
        if self.size() > 0:
            self.ends[last] |= True  # a truncation: ends without terminal
        self._next_start[:] = True

    def _window_ok(self, t: int) -> np.ndarray:
        """Per env: the n-step window from slot t does not run into a truncation."""
        ok = np.ones(self.n_envs, dtype=bool)
        alive = np.ones(self.n_envs, dtype=bool)
        for k in range(self.n_steps):
            slot = (t + k) % self.buffer_size
            cut = alive & self.ends[slot] & ~self.terminal[slot]
            ok &= ~cut
            alive &= ~self.ends[slot]
        return ok

    def _set_priority(self, slots, values: np.ndarray) -> None:
        slots = np.asarray(slots)[:, None] * self.n_envs + np.arange(self.n_envs)
        self.tree.set(slots, values)

    # ----------------------------------------------------------------------------- sampling
    def sample(self, batch_size: int, env=None, beta: float = 0.4) -> ReplaySamples:
        """``batch_size`` transitions, proportional to priority (or uniform), with
        importance weights ``(N * P(i)) ** -beta`` normalised by the batch maximum."""
        flat = self.tree.sample(batch_size, self.rng)
        if self.prioritized:
            probs = self.tree.get(flat) / self.tree.total
            weights = (self.tree.nonzero * probs) ** (-beta)
            weights = weights / weights.max()
        else:
            weights = np.ones(batch_size)
        return self._get_samples(flat, weights)

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """New priorities (e.g. per-sample losses) for sampled slots."""
        if not self.prioritized:
            return
        priorities = np.abs(np.asarray(priorities, dtype=np.float64)) + self.epsilon
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.set(indices, priorities ** self.alpha)

    def _get_samples(self, flat: np.ndarray, weights: Optional[np.ndarray] = None,
                     env=None) -> ReplaySamples:
        t, e = np.divmod(np.asarray(flat, dtype=np.int64), self.n_envs)
        returns = np.zeros(len(t), dtype=np.float32)
        alive = np.ones(len(t), dtype=bool)
        steps = np.zeros(len(t), dtype=np.int64)
        for k in range(self.n_steps):
            slot = (t + k) % self.buffer_size
            returns += np.where(alive, self.gamma ** k * self.rewards[slot, e], 0.0)
            steps += alive
            alive &= ~self.ends[slot, e]
        dones = ~alive  # every sampled window that ends early ends in a termination
        next_t = (t + steps) % self.buffer_size
        if weights is None:
            weights = np.ones(len(t))
        to = self.to_torch
        return ReplaySamples(
            observations=to(self.stacked(t, e)),
            actions=to(self.actions[t, e].astype(np.int64)),
            next_observations=to(self.stacked(next_t, e)),
            returns=to(returns),
            discounts=to((self.gamma ** steps).astype(np.float32)),
            dones=to(dones.astype(np.float32)),
            weights=to(weights.astype(np.float32)),
            indices=np.asarray(flat),
        )

    def stacked(self, t: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Observations at slots ``t`` of streams ``e``: the stored frame and the
        ``frame_stack - 1`` before it, zeros for frames from before the episode start."""
        frames = []
        cut = np.zeros(len(t), dtype=bool)
        for lag in range(self.frame_stack):
            slot = (t - lag) % self.buffer_size
            frame = self.frames[slot, e]
            frames.append(np.where(cut.reshape(-1, *[1] * (frame.ndim - 1)), 0, frame))
            cut |= self.starts[slot, e]
        return np.concatenate(frames[::-1], axis=1)

    # --------------------------------------------------------------------------- save, load
    _ARRAYS = ("frames", "actions", "rewards", "terminal", "ends", "starts", "_next_start")

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The whole memory as plain arrays (no pickled objects), for ``np.savez``."""
        state = {name.strip("_"): getattr(self, name) for name in self._ARRAYS}
        state["tree_nodes"] = self.tree.nodes
        state["counters"] = np.array([self.pos, int(self.full), self.tree.nonzero],
                                     dtype=np.int64)
        state["max_priority"] = np.array(self.max_priority, dtype=np.float64)
        # the generator's state holds 128-bit integers: JSON text keeps them exact
        state["rng"] = np.array(json.dumps(self.rng.bit_generator.state))
        return state

    def load_state_arrays(self, state) -> None:
        """Restore :meth:`state_arrays` output. Everything is checked before anything is
        copied (shapes, dtypes, actions within the action space, finite rewards,
        counters within the memory, finite non-negative priorities), so a ValueError leaves
        this memory as it was."""
        for name in self._ARRAYS:
            array, own = state[name.strip("_")], getattr(self, name)
            if array.shape != own.shape or array.dtype != own.dtype:
                raise ValueError(f"replay array '{name}' is {array.dtype}{list(array.shape)}, "
                                 f"expected {own.dtype}{list(own.shape)}")
        if state["actions"].size and int(state["actions"].max()) >= self.action_space.n:
            raise ValueError(f"replay actions reach {int(state['actions'].max())}, beyond the "
                             f"{self.action_space.n} actions of this env")
        if not np.isfinite(state["rewards"]).all():
            raise ValueError("replay rewards are not all finite")
        nodes = state["tree_nodes"]
        if nodes.shape != self.tree.nodes.shape or not (np.isfinite(nodes) & (nodes >= 0)).all():
            raise ValueError("replay priorities do not fit this memory or are not finite and "
                             "non-negative")
        pos, full, nonzero = (int(v) for v in state["counters"])
        if not (0 <= pos < self.buffer_size and full in (0, 1)
                and 0 <= nonzero <= self.tree.capacity):
            raise ValueError(f"replay counters (position {pos}, full {full}, {nonzero} "
                             f"priorities) do not fit a memory of {self.buffer_size} steps")
        max_priority = float(state["max_priority"])
        if not (np.isfinite(max_priority) and max_priority > 0):
            raise ValueError(f"replay max priority {max_priority} is not a positive number")
        rng_state = json.loads(str(state["rng"]))
        for name in self._ARRAYS:
            getattr(self, name)[...] = state[name.strip("_")]
        self.tree.nodes[...] = nodes
        self.pos, self.full, self.tree.nonzero = pos, bool(full), nonzero
        self.max_priority = max_priority
        self.rng.bit_generator.state = rng_state

    def bytes_per_transition(self) -> float:
        """Memory of every array (priority tree included) divided by the capacity."""
        arrays = [self.frames, self.actions, self.rewards, self.terminal, self.ends,
                  self.starts, self.tree.nodes]
        return sum(a.nbytes for a in arrays) / (self.buffer_size * self.n_envs)
