"""PPO for recurrent-core policies, trained on fixed-length BPTT chunks.

:class:`ChunkedRecurrentPPO` is sb3-contrib's ``RecurrentPPO`` (same rollout collection, same
clipped-surrogate, value and entropy losses, same masking, same save/load format) with one
change: minibatches are random sets of ``chunk_length``-step chunks of each env's rollout,
each chunk starting from the recurrent state stored at its first step
(:mod:`rimrl.agents.ppo.buffers`). A minibatch of 256 steps becomes, e.g., 8 chunks of 32 steps
processed in parallel by the core, instead of ~2 padded sequences walked one step at a time.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from sb3_contrib import RecurrentPPO

from rimrl.agents.ppo.buffers import ChunkedDictRolloutBuffer, ChunkedRolloutBuffer


class ChunkedRecurrentPPO(RecurrentPPO):
    """RecurrentPPO on fixed-length BPTT chunks.

    Args:
        chunk_length: steps per chunk (truncated BPTT length). ``n_steps`` must be a multiple
            of it and ``batch_size`` should be. ``chunk_length == n_steps`` trains on whole
            rollouts, exactly like sb3-contrib with one minibatch.
        rollout_threads: torch CPU threads while collecting a rollout (0: as many as the
            update uses). The collection runs one small batch (one step of every env) at a
            time, where a thread waiting for a busy core costs more than it brings; the
            update's large batches keep every thread.
        *args, **kwargs: as for ``sb3_contrib.RecurrentPPO``.
    """

    def __init__(self, *args, chunk_length: int = 32, rollout_threads: int = 0, **kwargs):
        self.chunk_length = chunk_length
        self.rollout_threads = rollout_threads
        super().__init__(*args, **kwargs)

    def collect_rollouts(self, *args, **kwargs) -> bool:
        threads, wanted = torch.get_num_threads(), getattr(self, "rollout_threads", 0)
        if not wanted or wanted == threads:
            return super().collect_rollouts(*args, **kwargs)
        torch.set_num_threads(wanted)
        try:
            return super().collect_rollouts(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    def _setup_model(self) -> None:
        if self.chunk_length < 1 or self.n_steps % self.chunk_length:
            raise ValueError(
                f"n_steps ({self.n_steps}) must be a positive multiple of chunk_length "
                f"({self.chunk_length})"
            )
        super()._setup_model()
        old = self.rollout_buffer
        buffer_cls = (ChunkedDictRolloutBuffer if isinstance(self.observation_space, spaces.Dict)
                      else ChunkedRolloutBuffer)
        self.rollout_buffer = buffer_cls(
            self.n_steps, self.observation_space, self.action_space, old.hidden_state_shape,
            self.device, gamma=self.gamma, gae_lambda=self.gae_lambda, n_envs=self.n_envs,
            chunk_length=self.chunk_length,
        )
