"""Committing an SB3 learner's iterations (:mod:`rimrl.commits`): after an update, when a
checkpoint or an evaluation is due, the evaluation, the checkpoint and the commit record, in
that order.

SB3 calls ``on_rollout_start`` after every update (PPO: after each rollout's epochs; IQN:
after each collection's gradient steps), so an iteration is whole there; the last one is
committed by the caller once ``learn`` returns (:func:`rimrl.sb3.training.
learn_and_save`), when it also knows whether training reached its budget or was stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from stable_baselines3.common.callbacks import BaseCallback

from rimrl.commits import Commit, count_rows, tidy
from rimrl.runs import (EVALUATIONS_CSV, LOG_DIR, PROGRESS_CSV, checkpoint_path, record_checksum,
                        replay_path)
from rimrl.sb3.callbacks import NonFiniteModel, save_model_atomically, save_replay_atomically


class IterationCommit:
    """Commits one run's iterations.

    Args:
        run_dir: the run directory.
        train: the config's ``train`` section (``checkpoint_every`` env steps and
            ``checkpoint_minutes`` between commits, ``keep_checkpoints``).
        commit: the run's last commit (what :func:`rimrl.commits.recover` returned).
        evaluation: the run's :class:`~rimrl.sb3.periodic_evaluation.
            PeriodicEvaluation`, or ``None``; a due evaluation makes a commit due, so that no
            evaluation is ever made twice.
        save_replay: off-policy learners: each commit also holds the replay memory.
    """

    def __init__(self, run_dir: Path, train, commit: Commit, evaluation=None,
                 save_replay: bool = False):
        self.run_dir = Path(run_dir)
        self.every = train.checkpoint_every
        self.seconds = train.checkpoint_minutes * 60
        self.keep = train.keep_checkpoints
        self.commit = commit
        self.evaluation = evaluation
        self.save_replay = save_replay
        self._time = time.monotonic()

    def due(self, step: int) -> bool:
        """Whether the iteration that ended at ``step`` should be committed."""
        return step > self.commit.step and (
            step - self.commit.step >= self.every
            or time.monotonic() - self._time >= self.seconds
            or (self.evaluation is not None and self.evaluation.due(step)))

    def run(self, model, final: bool = False) -> Optional[Path]:
        """Commit the model's current iteration; returns its checkpoint, or ``None`` when the
        weights are not finite (nothing is then written: the last commit stays the last
        finite one). ``final``: training reached its budget, so the model is evaluated
        unless it was at this step already (the curve's last point is the final model)."""
        step = int(model.num_timesteps)
        best_sha256, best_staged = self.commit.best_sha256, None
        evaluation = self.evaluation
        if evaluation is not None and (evaluation.due(step)
                                       or (final and evaluation.last_step != step)):
            staged = evaluation.evaluate(model)
            if staged is not None:
                best_sha256, best_staged = staged
        checkpoint = checkpoint_path(self.run_dir, step, suffix="zip")
        if checkpoint.name != self.commit.checkpoint:  # same step, same weights: kept
            try:
                save_model_atomically(model, checkpoint)
            except NonFiniteModel:
                return None
            record_checksum(self.run_dir, checkpoint)
        replay = None
        if self.save_replay:
            replay = replay_path(self.run_dir, step)
            if replay.name != self.commit.replay:
                save_replay_atomically(model, replay)
        self.commit = Commit(
            step=step, checkpoint=checkpoint.name,
            progress_rows=count_rows(self.run_dir / LOG_DIR / PROGRESS_CSV),
            evaluation_rows=count_rows(self.run_dir / EVALUATIONS_CSV),
            best_sha256=best_sha256, best_staged=best_staged,
            replay=replay.name if replay is not None else None)
        self.commit.write(self.run_dir)
        tidy(self.run_dir, self.commit, keep=self.keep)
        self._time = time.monotonic()
        return checkpoint

    def callback(self, diverged: Callable[[], Optional[str]]) -> BaseCallback:
        """The SB3 callback that commits each due iteration; ``diverged`` returns what
        diverged (nothing is committed then)."""
        return _CommitCallback(self, diverged)


class _CommitCallback(BaseCallback):
    def __init__(self, committer: IterationCommit, diverged):
        super().__init__()
        self.committer = committer
        self.diverged = diverged

    def _on_training_start(self) -> None:
        # an evaluation due at the committed step that a stop (or a run from before commit
        # records) left unmade: the weights are the committed ones, the ones it would have seen
        evaluation = self.committer.evaluation
        if evaluation is not None and evaluation.due(self.num_timesteps):
            self.committer.run(self.model)

    def _on_rollout_start(self) -> None:
        if self.diverged() is None and self.committer.due(self.num_timesteps):
            self.committer.run(self.model)

    def _on_step(self) -> bool:
        return True
