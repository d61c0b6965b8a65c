"""Evaluation during training (``--eval-every STEPS``), as RL Zoo's ``EvalCallback`` does it,
once per distractor split: the curves of the thesis' Fig. 4 (success on known and on novel
distractors over training).

Every ``eval.every`` env steps (after the update of the first rollout at or past each
multiple, and once more at the end of training) the current policy plays ``eval.episodes`` whole
episodes on separate evaluation envs, one set per row: the setting the run trains on, then
the splits of ``eval.distractors``. Each evaluation replays the same episodes (the envs are
re-seeded with the run's seed + :data:`EVAL_SEED_OFFSET`), so the points of a curve differ
only by the policy. The random state of training is set aside while evaluating, so a run
with evaluation trains exactly as one without it (tested).

Results: ``evaluations.csv`` (one row per evaluation and split, :data:`rimrl.runs.EVAL_COLUMNS`),
TensorBoard ``eval/<split>/success_rate`` and ``eval/<split>/return_mean``, and
``best_model.zip``, the model with the best mean return on the first row so far. Each
evaluation is committed with the checkpoint of its step (:mod:`rimrl.commits`): a resumed run
keeps the committed rows and redoes nothing of them; one a stop left unmade is made as
training resumes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from rimrl.report.stats import bootstrap_mean_ci, wilson_ci
from rimrl.runs import (append_evaluations, read_evaluations, record_checksum, staged_best_path,
                        truncate_evaluations)
from rimrl.sb3.callbacks import save_model_atomically
from rimrl.sb3.environments import make_env, requested_splits, training_setting
from rimrl.sb3.evaluation import play


#: evaluation envs are seeded with the run's seed plus this (``rimrl evaluate``: its
#: :data:`~rimrl.sb3.evaluation.EVALUATE_SEED_OFFSET`)
EVAL_SEED_OFFSET = 20_000


def evaluation_rows(cfg) -> list[str]:
    """The rows a run's evaluations play: its training setting (its pickup split, or
    ``clean`` for an env trained without distractors), then each requested split once.
    A one-line error for a split the env does not have."""
    first = training_setting(cfg.env.id, cfg.env.distractors)
    splits = requested_splits(cfg.env.id, cfg.eval.distractors)
    return [first] + [s for s in splits if s != first]


class PeriodicEvaluation:
    """One run's evaluations during training (see the module docstring). Its evaluations are
    part of the iterations that :class:`~rimrl.sb3.iterations.IterationCommit` commits.

    Args:
        cfg: the run config (``env``, ``seed`` and the ``eval`` section).
        run_dir: the run directory (``evaluations.csv``; a new best model is staged for the
            commit, :func:`rimrl.runs.staged_best_path`).
        stop_requested: true once the user asked to stop; an evaluation in progress is then
            abandoned (nothing of it is written).
        say: prints one line per evaluation (``None``: silent).
        record: logs scalars at a step (TensorBoard's ``eval/<split>/...``), or ``None``.
    """

    def __init__(self, cfg, run_dir: Path, stop_requested: Callable[[], bool],
                 say: Optional[Callable[[str], None]] = None,
                 record: Optional[Callable[[dict, int], None]] = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.rows = evaluation_rows(cfg)
        self.stop_requested = stop_requested
        self.say = say
        self.record = record
        self.envs: dict = {}
        self.next_at = 0
        self.last_step: Optional[int] = None
        self.best = float("-inf")

    def start(self, step: int) -> None:
        """Keep the history up to ``step`` (the committed one); schedule the next evaluation:
        the first multiple of ``every`` after the last one kept. One that a stop left unmade
        at the committed step is then already due."""
        truncate_evaluations(self.run_dir, step)
        history = [r for r in read_evaluations(self.run_dir) if r["split"] == self.rows[0]]
        self.best = max((r["return_mean"] for r in history), default=float("-inf"))
        self.last_step = max((r["step"] for r in history), default=None)
        every = self.cfg.eval.every
        self.next_at = ((self.last_step or 0) // every + 1) * every

    def due(self, step: int) -> bool:
        """Whether the model at ``step`` is to be evaluated (a multiple of ``every`` was
        reached since the last evaluation)."""
        return step >= self.next_at and step != self.last_step

    def evaluate(self, model) -> Optional[tuple[str, str]]:
        """Play every row and append them to ``evaluations.csv``; when the first row's return
        is the best so far, stage the model (:func:`rimrl.runs.staged_best_path`) and return
        (its SHA-256, its file name) for the commit. ``None``: no new best, or abandoned."""
        e, step, start = self.cfg.eval, int(model.num_timesteps), time.perf_counter()
        results = []
        numpy_state = np.random.get_state()
        with torch.random.fork_rng(devices=[]):  # training's random stream is left as it was
            for split in self.rows:
                if self.stop_requested():
                    return None
                env = self._env(split)
                env.seed(self.cfg.seed + EVAL_SEED_OFFSET)
                episodes, _ = play(model, env, e.episodes, deterministic=e.deterministic,
                                   stop_requested=self.stop_requested)
                if self.stop_requested():  # abandoned mid-row: nothing of it is written
                    return None
                returns = np.array([r for r, _ in episodes], dtype=float)
                mean, lo, hi = (float(v) for v in bootstrap_mean_ci(returns))
                rate, rlo, rhi = wilson_ci(sum(bool(s) for _, s in episodes), len(episodes))
                results.append({"step": step, "split": split, "episodes": len(episodes),
                                "deterministic": e.deterministic, "success_rate": rate,
                                "success_lo": rlo, "success_hi": rhi, "return_mean": mean,
                                "return_lo": lo, "return_hi": hi})
        np.random.set_state(numpy_state)
        seconds = time.perf_counter() - start
        for row in results:
            row["seconds"] = round(seconds, 2)
        append_evaluations(self.run_dir, results)
        staged = None
        if results[0]["return_mean"] > self.best:
            self.best = results[0]["return_mean"]
            path = staged_best_path(self.run_dir, step)
            save_model_atomically(model, path)
            staged = (record_checksum(self.run_dir, path), path.name)
        if self.record is not None:
            self.record({f"eval/{row['split']}/{key}": row[key] for row in results
                         for key in ("success_rate", "return_mean")}, step)
        if self.say is not None:
            self.say(f"eval at {step:,} steps ({seconds:.0f} s): " + "; ".join(
                f"{r['split']} success {r['success_rate']:.3g} "
                f"[{r['success_lo']:.3g}, {r['success_hi']:.3g}], return {r['return_mean']:.3g}"
                for r in results))
        self.last_step = step
        self.next_at = (step // e.every + 1) * e.every
        return staged

    def _env(self, split: str):
        if split not in self.envs:
            n_envs = min(self.cfg.env.n_envs, self.cfg.eval.episodes)
            self.envs[split] = make_env(self.cfg, n_envs=n_envs, training=False,
                                        seed=self.cfg.seed + EVAL_SEED_OFFSET,
                                        distractors=None if split == "clean" else split)
        return self.envs[split]

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs = {}
