"""SB3 callbacks shared by rimrl's learners: atomic checkpoints and RIM activity logging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image

from rimrl.runs import atomic_write, checkpoint_path, prune_checkpoints


def save_model_atomically(model, path: Path) -> None:
    """``model.save`` to a temporary file, then rename: a kill never leaves half a zip."""
    def write(tmp: str) -> None:
        # an open file, not a path: SB3 would append ".zip" to the temporary name
        with open(tmp, "wb") as handle:
            model.save(handle)

    atomic_write(path, write)


def replay_path(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / "replay.pkl"


def save_replay_atomically(model, path: Path) -> None:
    """``model.save_replay_buffer`` through a temporary file and a rename."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a handle: SB3 would append ".pkl" to a path
            model.save_replay_buffer(handle)

    atomic_write(path, write)


class CheckpointCallback(BaseCallback):
    """Save ``ckpt_<timesteps>.zip`` atomically every ``every`` environment steps.

    Args:
        run_dir: the run directory (checkpoints go to ``run_dir/checkpoints``).
        every: environment steps between checkpoints (counted over all envs).
        keep: newest checkpoints kept.
        save_replay: off-policy learners: also write the replay memory to
            ``checkpoints/replay.pkl`` (one file, replaced atomically after each checkpoint).
    """

    def __init__(self, run_dir: Path, every: int, keep: int = 3, save_replay: bool = False):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.every = every
        self.keep = keep
        self.save_replay = save_replay
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.every:
            self.save()
        return True

    def save(self) -> Path:
        path = checkpoint_path(self.run_dir, self.num_timesteps, suffix="zip")
        save_model_atomically(self.model, path)
        if self.save_replay:
            save_replay_atomically(self.model, replay_path(self.run_dir))
        prune_checkpoints(self.run_dir, self.keep)
        self._last = self.num_timesteps
        return path


class CoreActivityCallback(BaseCallback):
    """Log which RIMs were active: the fraction of rollout steps each RIM was active
    (``rims/active_fraction/<k>``) and the activation pattern of env 0 over the rollout, as
    a TensorBoard image (``rims/activation``: rows are RIMs, columns steps, white = active;
    the thesis' Fig. 2) and, with ``run_dir``, as ``rims_activation.npz`` (``active``: RIMs x
    steps of the last rollout; ``episode_ends``: the steps after which env 0's episode
    ended) for ``rimrl compare``.

    Reads ``policy.lstm_actor.last_active`` (steps, envs, RIMs) after each environment step;
    does nothing for cores that do not expose it (LSTM, GRU).
    """

    def __init__(self, run_dir: Path | None = None):
        super().__init__()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._sum = None
        self._count = 0
        self._pattern: list[np.ndarray] = []
        self._ends: list[bool] = []

    def _on_step(self) -> bool:
        active = getattr(self.model.policy.lstm_actor, "last_active", None)
        if active is not None:
            frac = active.float().mean(dim=(0, 1)).cpu().numpy()
            self._sum = frac if self._sum is None else self._sum + frac
            self._count += 1
            self._pattern.append(active[-1, 0].float().cpu().numpy())
            dones = self.locals.get("dones")
            self._ends.append(bool(dones[0]) if dones is not None else False)
        return True

    def _on_rollout_end(self) -> None:
        if self._count:
            for unit, value in enumerate(self._sum / self._count):
                self.logger.record(f"rims/active_fraction/{unit}", float(value))
            self.logger.record("rims/active_fraction_mean", float(np.mean(self._sum / self._count)))
            pattern = np.stack(self._pattern, axis=1)  # (RIMs, steps)
            # 8 pixel rows per RIM so the image is readable in TensorBoard
            image = np.repeat(pattern, 8, axis=0)
            self.logger.record("rims/activation", Image(image, "HW"),
                               exclude=("stdout", "log", "json", "csv"))
            if self.run_dir is not None:
                ends = np.array(self._ends, dtype=bool)

                def write(tmp: str) -> None:
                    with open(tmp, "wb") as handle:  # a handle: numpy would add ".npz"
                        np.savez(handle, active=pattern.astype(np.uint8), episode_ends=ends)

                atomic_write(self.run_dir / "rims_activation.npz", write)
        self._sum, self._count, self._pattern, self._ends = None, 0, [], []
