"""A sum tree for proportional prioritized replay (Schaul et al., 2016, appendix B.2.1)."""

from __future__ import annotations

import numpy as np


class SumTree:
    """Priorities of ``capacity`` slots in a binary tree whose inner nodes hold the sums of
    their children: setting a priority and finding the slot under a prefix sum both cost
    O(log n), vectorised over a batch of slots.

    Args:
        capacity: number of slots (leaves).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.leaves = 1 << max(int(np.ceil(np.log2(max(capacity, 1)))), 0)
        self.nodes = np.zeros(2 * self.leaves, dtype=np.float64)  # nodes[1] is the root
        self.nonzero = 0  # slots with a positive priority

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, slots: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaves + np.asarray(slots)]

    def set(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Set leaf values (the last one wins for repeated slots) and refresh their sums."""
        slots = np.asarray(slots, dtype=np.int64)
        if slots.size == 0:
            return
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), slots.shape).ravel()
        slots = slots.ravel()
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("priorities must be finite and non-negative")
        slots, last = np.unique(slots[::-1], return_index=True)
        values = values[::-1][last]
        index = self.leaves + slots
        self.nonzero += int(np.count_nonzero(values > 0)) - int(
            np.count_nonzero(self.nodes[index] > 0))
        self.nodes[index] = values
        index = np.unique(index // 2)
        while index[0] >= 1:
            # recomputed from both children: exact also when siblings change together
            self.nodes[index] = self.nodes[2 * index] + self.nodes[2 * index + 1]
            if index[0] == 1:
                break
            index = np.unique(index // 2)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """The slot whose cumulative range contains each prefix sum in ``[0, total)``; slots
        with zero priority are never returned (as long as the total is positive)."""
        prefix = np.array(prefix, dtype=np.float64)
        index = np.ones(prefix.shape, dtype=np.int64)
        while index[0] < self.leaves:
            left = self.nodes[2 * index]
            right = self.nodes[2 * index + 1]
            go_right = ((prefix >= left) & (right > 0)) | (left <= 0)
            prefix = np.where(go_right, prefix - left, prefix)
            index = 2 * index + go_right
        return index - self.leaves

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified proportional sampling: one slot from each of ``batch_size`` equal slices
        of the total priority."""
        if self.total <= 0:
            raise ValueError("cannot sample: no slot has a positive priority")
        edges = np.arange(batch_size, dtype=np.float64) / batch_size
        prefix = (edges + rng.random(batch_size) / batch_size) * self.total
        return self.find(np.minimum(prefix, np.nextafter(self.total, 0)))
