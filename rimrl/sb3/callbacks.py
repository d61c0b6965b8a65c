"""SB3 callbacks shared by rimrl's learners: atomic model files, progress (bar, one line per
few logged rollouts, a graceful stop), divergence and RIM activity logging."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image, KVWriter

from rimrl.nn.selection import activity_record
from rimrl.progress import bar, format_score, say
from rimrl.runs import STEP_COLUMN, activation_path, atomic_write


def non_finite_parameter(module) -> str | None:
    """The name of the first parameter of ``module`` holding a NaN or infinity, or None."""
    for name, param in module.named_parameters():
        if not torch.isfinite(param).all():
            return name
    return None


def save_model_atomically(model, path: Path) -> None:
    """``model.save`` to a temporary file, then rename: a kill never leaves half a zip.
    Raises :class:`NonFiniteModel` instead of writing a model with NaN or infinite weights."""
    bad = non_finite_parameter(model.policy)
    if bad is not None:
        raise NonFiniteModel(f"parameter '{bad}' is not finite")
    def write(tmp: str) -> None:
        # an open file, not a path: SB3 would append ".zip" to the temporary name
        with open(tmp, "wb") as handle:
            model.save(handle)

    atomic_write(path, write)


class NonFiniteModel(RuntimeError):
    """A model with NaN or infinite weights: never saved."""


def save_replay_atomically(model, path: Path) -> None:
    """``model.save_replay_buffer`` through a temporary file and a rename."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a handle: numpy would append ".npz" to a path
            model.save_replay_buffer(handle)

    atomic_write(path, write)


class TrainingProgress(BaseCallback):
    """A progress bar over the budget, the count of finished games behind the logged score,
    and a graceful stop.

    Records ``rollout/games``: how many finished games (Monitor episodes: whole Atari games
    over all lives) ``rollout/ep_rew_mean`` averages, at most SB3's window of 100.

    Args:
        total: the run's budget in environment steps (a resumed run's bar starts where it is).
        show_bar: draw the bar (``--no-progress`` and ``--quiet`` turn it off).
        stop_requested: returns True when training should stop after the current step
            (Ctrl-C); the caller then saves a checkpoint.
    """

    def __init__(self, total: int, show_bar: bool = True,
                 stop_requested: Callable[[], bool] = lambda: False):
        super().__init__()
        self.total = total
        self.show_bar = show_bar
        self.stop_requested = stop_requested
        self._bar = None

    def _on_training_start(self) -> None:
        # steps arrive in bursts (a rollout's collection, then its update's pause): an ETA
        # from the latest speed swings by minutes, the average since the start does not
        self._bar = bar(self.total, "training", unit="step", enabled=self.show_bar,
                        initial=self.num_timesteps, smoothing=0.0)

    def _on_step(self) -> bool:
        self._bar.update(self.num_timesteps - self._bar.n)
        return not self.stop_requested()

    def _on_rollout_end(self) -> None:
        self.logger.record("rollout/games", len(self.model.ep_info_buffer or ()))

    def _on_training_end(self) -> None:
        self._bar.close()


class DivergenceGuard(BaseCallback):
    """Stop training when it diverges: a non-finite logged loss or a non-finite parameter
    after an update (checked when the next rollout starts, i.e. after every PPO update and
    every IQN training round).

    ``diverged`` then names the step and the quantity; the caller saves nothing more, so the
    run's newest checkpoint stays its last finite one.
    """

    LOSSES = ("train/loss", "train/value_loss", "train/policy_gradient_loss")

    def __init__(self):
        super().__init__()
        self.diverged: str | None = None

    def _on_rollout_start(self) -> None:
        self.check()

    def check(self) -> str | None:
        """Look for divergence now (also after training ends: the last update comes after
        the last rollout); returns what diverged, or None."""
        if self.diverged is not None:
            return self.diverged
        logged = self.logger.name_to_value
        for key in self.LOSSES:
            if key in logged and not np.isfinite(logged[key]):
                self.diverged = f"{key} = {logged[key]} at step {self.num_timesteps}"
                return self.diverged
        bad = non_finite_parameter(self.model.policy)
        if bad is not None:
            self.diverged = f"parameter '{bad}' is not finite at step {self.num_timesteps}"
        return self.diverged

    def _on_step(self) -> bool:
        return self.diverged is None


class ProgressLines(KVWriter):
    """An SB3 logger output that prints one line every ``every`` log dumps: steps, speed,
    the mean raw score of recent games and the losses (what SB3's ``verbose=1`` table shows,
    on one line).

    Args:
        total: the budget in environment steps.
        games: returns how many finished games the logged score averages (read at print
            time: SB3 updates its episode buffer after the callbacks run).
        every: print on every ``every``-th dump (a dump happens every ``log_interval``
            rollouts for PPO, every ``log_interval`` episodes for IQN).
    """

    LOSSES = (("train/loss", "loss"), ("train/policy_gradient_loss", "pg"),
              ("train/value_loss", "value"), ("train/entropy_loss", "entropy"),
              ("rollout/exploration_rate", "epsilon"))

    def __init__(self, total: int, games: Callable[[], int], every: int = 1):
        self.total = total
        self.games = games
        self.every = every
        self._dumps = 0

    def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
        self._dumps += 1
        if self._dumps % self.every == 0:
            say(format_progress_line(key_values, self.total, self.games()))

    def close(self) -> None:
        """Nothing to release: lines go to stdout, which this writer does not own."""


def format_progress_line(values: dict, total: int, games: int) -> str:
    """``steps 12,288/50,000 (25%) | 158 steps/s | score 345.0 over 12 games | loss 0.031``."""
    steps = int(values.get(STEP_COLUMN, 0))
    parts = [f"steps {steps:,}/{total:,} ({100 * steps / total:.0f}%)"]
    if "time/fps" in values:
        parts.append(f"{values['time/fps']:.0f} steps/s")
    if "rollout/ep_rew_mean" in values and games:
        parts.append(f"score {format_score(values['rollout/ep_rew_mean'])} over {games} "
                     f"game{'s' * (games != 1)}")
    else:
        parts.append("score n/a (no game finished yet)")
    parts += [f"{label} {values[key]:.3g}" for key, label in ProgressLines.LOSSES
              if key in values]
    return " | ".join(parts)


def activation_image(pattern: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """An RGB picture of a rollout's RIM activity: 8 pixel rows per RIM (readable in
    TensorBoard), black = active, white = inactive, then a 3-row band that is red under
    each step after which an episode ended."""
    rims = np.repeat(np.where(pattern[..., None] > 0, 0, 255), 8, axis=0)  # (8K, T, 1)
    rims = np.repeat(rims, 3, axis=2)
    band = np.full((3, pattern.shape[1], 3), 255)
    band[:, ends] = (255, 0, 0)
    return np.concatenate([rims, band]).astype(np.uint8)


class CoreActivityCallback(BaseCallback):
    """Log which RIMs were active: the fraction of rollout steps each RIM was active
    (``rims/active_fraction/<k>``) and the activation pattern of env 0 over the rollout, as
    a TensorBoard image (``rims/activation``: rows are RIMs, columns steps, black = active as
    in ``rimrl compare``'s figure, a red mark under each step that ended an episode; the
    thesis' Fig. 2) and, with ``run_dir``, as ``rims_activation.npz`` (``active``: RIMs x
    steps of the last rollout; ``episode_ends``: the steps after which env 0's episode
    ended) for ``rimrl compare``.

    How much selection depends on the input (:mod:`rimrl.nn.selection`), over the rollout's
    steps and envs: ``rims/set_entropy_bits``, ``rims/top_set_share``,
    ``rims/distinct_sets`` and, at episode starts (zero state: the set is a function of the
    observation), ``rims/start_set_entropy_bits``.

    Reads ``policy.core_actor.last_active`` (steps, envs, RIMs) after each environment step;
    cores that do not expose it (LSTM, GRU) get none of these.

    For every recurrent core, ``core/state_abs_max``: the largest |h| among the policy states
    the rollout stored (h only; an LSTM's cell is kept apart). An LSTM's or a GRU's h stays
    below 1; RIMs' can grow, because communication adds to the state (thesis 8.2.4), most in
    the thesis variant and on GRU dynamics, which carry the sum over (benchmarks/RESULTS.md,
    "rims-variants-pickup").
    """

    def __init__(self, run_dir: Path | None = None):
        super().__init__()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._pattern: list[np.ndarray] = []
        self._ends: list[bool] = []
        self._masks: list[np.ndarray] = []
        self._starts: list[np.ndarray] = []

    def _on_step(self) -> bool:
        active = getattr(self.model.policy.core_actor, "last_active", None)
        if active is not None:
            self._pattern.append(active[-1, 0].float().cpu().numpy())
            self._masks.append(active[-1].cpu().numpy())  # (envs, RIMs)
            starts = self.locals.get("episode_starts")
            self._starts.append(np.zeros(active.shape[1], dtype=bool) if starts is None
                                else np.asarray(starts.cpu() if hasattr(starts, "cpu")
                                                else starts, dtype=bool).reshape(-1))
            dones = self.locals.get("dones")
            self._ends.append(bool(dones[0]) if dones is not None else False)
        return True

    def _on_rollout_end(self) -> None:
        states = getattr(self.model.rollout_buffer, "hidden_states_pi", None)
        if states is not None:
            self.logger.record("core/state_abs_max", float(np.abs(states).max()))
        if self._masks:
            for key, value in activity_record(np.stack(self._masks),
                                              np.stack(self._starts)).items():
                self.logger.record(f"rims/{key}", value)
            pattern = np.stack(self._pattern, axis=1)  # (RIMs, steps)
            image = activation_image(pattern, np.array(self._ends, dtype=bool))
            self.logger.record("rims/activation", Image(image, "HWC"),
                               exclude=("stdout", "log", "json", "csv"))
            if self.run_dir is not None:
                ends = np.array(self._ends, dtype=bool)

                def write(tmp: str) -> None:
                    with open(tmp, "wb") as handle:  # a handle: numpy would add ".npz"
                        np.savez(handle, active=pattern.astype(np.uint8), episode_ends=ends)

                atomic_write(activation_path(self.run_dir), write)
        self._pattern, self._ends, self._masks, self._starts = [], [], [], []
