"""Rollout buffers that serve fixed-length BPTT chunks (as in R2D2 and torch-ac's ``recurrence``).

sb3-contrib's recurrent buffers cut minibatches at episode starts and pad, so a minibatch of
256 from 8 envs x 128 steps is about two sequences of 128 steps, processed one step at a time
whenever an episode starts inside. Here each env's rollout is cut into chunks of
``chunk_length`` steps; a minibatch is ``batch_size // chunk_length`` chunks drawn at random,
each starting from the recurrent state stored at its first step. Episode starts inside a
chunk reset the state in the core itself. No padding: every chunk is full.

With ``chunk_length == n_steps`` and one minibatch, the losses equal sb3-contrib's on the same
data (tested).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import (RecurrentDictRolloutBufferSamples,
                                                       RecurrentRolloutBufferSamples, RNNStates)


class ChunkedSamplingMixin:
    """``get(batch_size)`` yields minibatches of whole chunks, ordered chunk by chunk."""

    def __init__(self, *args, chunk_length: int, **kwargs):
        self.chunk_length = chunk_length
        super().__init__(*args, **kwargs)

    def get(self, batch_size: int | None = None) -> Generator:
        assert self.full, "Rollout buffer must be full before sampling from it"
        L = self.chunk_length
        if self.buffer_size % L:
            raise ValueError(f"n_steps ({self.buffer_size}) must be a multiple of chunk_length ({L})")
        n_chunks = (self.buffer_size // L) * self.n_envs
        per_batch = n_chunks if batch_size is None else max(1, batch_size // L)
        order = np.random.permutation(n_chunks)
        for begin in range(0, n_chunks, per_batch):
            yield self._chunk_samples(order[begin:begin + per_batch])

    def _chunk_samples(self, chunks: np.ndarray):
        L = self.chunk_length
        per_env = self.buffer_size // L
        envs = chunks // per_env
        starts = (chunks % per_env) * L
        # (n_chunks, L) indices into the (n_steps, n_envs, ...) arrays, chunk-major
        steps = starts[:, None] + np.arange(L)[None, :]
        env_idx = np.broadcast_to(envs[:, None], steps.shape)

        def take(array: np.ndarray) -> np.ndarray:
            picked = array[steps, env_idx]  # (n_chunks, L, ...)
            return picked.reshape((-1, *array.shape[2:]))

        def state(array: np.ndarray):
            # stored as (n_steps, n_layers, n_envs, H) -> (n_layers, n_chunks, H)
            return self.to_torch(array[starts, :, envs].swapaxes(0, 1)).contiguous()

        lstm_states = RNNStates(
            (state(self.hidden_states_pi), state(self.cell_states_pi)),
            (state(self.hidden_states_vf), state(self.cell_states_vf)),
        )
        flat = lambda a: self.to_torch(take(a).reshape(-1))  # noqa: E731
        observations = self._take_observations(take)
        return self._samples_class(
            observations=observations,
            actions=self.to_torch(take(self.actions)),
            old_values=flat(self.values),
            old_log_prob=flat(self.log_probs),
            advantages=flat(self.advantages),
            returns=flat(self.returns),
            lstm_states=lstm_states,
            episode_starts=flat(self.episode_starts),
            mask=self.to_torch(np.ones(steps.size, dtype=np.float32)),
        )


class ChunkedRolloutBuffer(ChunkedSamplingMixin, RecurrentRolloutBuffer):
    """Box/Discrete observations."""

    _samples_class = RecurrentRolloutBufferSamples

    def _take_observations(self, take):
        return self.to_torch(take(self.observations))


class ChunkedDictRolloutBuffer(ChunkedSamplingMixin, RecurrentDictRolloutBuffer):
    """Dict observations."""

    _samples_class = RecurrentDictRolloutBufferSamples

    def _take_observations(self, take):
        return {key: self.to_torch(take(obs)) for key, obs in self.observations.items()}
