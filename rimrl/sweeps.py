"""Sweep files and trial planning for ``rimrl sweep`` (the Ray side is in
:mod:`rimrl.cli.sweep`).

A sweep file names a train command, a grid of config values (every combination is one
trial), fixed overrides, per-trial resources and an optional evaluation after training::

    command: ppo
    name: atari-rims-vs-lstm
    runs_dir: runs/sweeps
    grid:
      env.id: [DemonAttack, MsPacman]
      core.name: [lstm, rims]
      seed: [0, 1, 2]
    overrides:
      train.timesteps: 10000000
    resources: {cpu: 2, gpu: 0}
    evaluate: {episodes: 20, distractors: [all]}

Every trial writes an ordinary run directory, ``RUNS_DIR/NAME/<trial>``, named by its grid
values, so a re-run finds finished trials (skipped), interrupted ones (resumed from their
last checkpoint) and new ones (started) by looking at the directories alone.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rimrl.config import ConfigError, from_dict, override_text, read_yaml
from rimrl.errors import UserError
from rimrl.runs import (CONFIG_FILE, DISTRACTORS_FILE, EVALUATION_FILE, FAILED_MARKER,
                        META_FILE, MODEL_ZIP, RunSummary)

@dataclass
class Resources:
    """Per-trial resources handed to Ray: CPU cores and GPUs (fractions allowed)."""

    cpu: float = 1.0
    gpu: float = 0.0


@dataclass
class SweepEvaluation:
    """``rimrl evaluate`` after each trial: ``episodes`` per split; ``distractors``: split
    names or ``[all]`` (None: a plain evaluation); ``deterministic`` actions."""

    episodes: int = 10
    distractors: Optional[list[str]] = None
    deterministic: bool = False


@dataclass
class SweepConfig:
    """A sweep file (see the module docstring).

    Args:
        command: the train command of every trial: a sweepable learner (``ppo`` or
            ``iqn``; checked against :mod:`rimrl.learners` by ``rimrl sweep``).
        name: the sweep's folder under ``runs_dir``.
        runs_dir: where sweep folders live.
        grid: config key -> list of values; the trials are every combination.
        overrides: config key -> value for every trial.
        resources: per-trial CPUs and GPUs.
        max_concurrent: at most this many trials at once (0: as many as resources allow).
        evaluate: evaluation after training (optional).
    """

    command: str = "ppo"
    name: str = "sweep"
    runs_dir: str = "runs/sweeps"
    grid: dict[str, list[Any]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    max_concurrent: int = 0
    evaluate: Optional[SweepEvaluation] = None

    def __post_init__(self):
        if not self.grid:
            raise UserError("the sweep's grid is empty; give at least one key with a list of "
                            "values, e.g. grid: {seed: [0, 1, 2]}")
        for key, values in self.grid.items():
            if not isinstance(values, list):
                raise UserError(f"grid key '{key}' must be a list of values, e.g. "
                                f"{key}: [{values}]")
            if not values:
                raise UserError(f"grid key '{key}' has no values")
        if self.resources.cpu < 0 or self.resources.gpu < 0 or self.max_concurrent < 0:
            raise UserError("resources and max_concurrent must not be negative")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise UserError(f"sweep name '{self.name}' may use letters, digits, '.', '_', '-'")


def load_sweep(path: Path) -> SweepConfig:
    """Read and check a sweep file; a one-line error for unknown keys or bad values."""
    if not Path(path).is_file():
        raise UserError(f"sweep file {path} does not exist")
    try:
        return from_dict(SweepConfig, read_yaml(path))
    except ConfigError as exc:
        raise UserError(f"{path}: {exc}") from None


@dataclass
class Trial:
    """One grid point: its values, its run directory and what is left to do."""

    name: str
    values: dict[str, Any]
    run_dir: Path
    status: str = "new"  # new | failed | interrupted | trained | done

    def overrides(self, sweep: SweepConfig) -> list[str]:
        """``key=value`` strings, read back by the same parser as ``--set``."""
        merged = {**sweep.overrides, **self.values}
        return [override_text(k, v) for k, v in merged.items()]


def trial_name(values: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9._=,-]+", "-", ",".join(f"{k}={v}" for k, v in values.items()))


def plan_trials(sweep: SweepConfig) -> list[Trial]:
    """Every grid combination, in file order, with the state its run directory is in."""
    root = Path(sweep.runs_dir) / sweep.name
    keys = list(sweep.grid)
    trials = []
    for combo in itertools.product(*(sweep.grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = trial_name(values)
        trial = Trial(name, values, (root / name).resolve())
        trial.status = trial_status(trial.run_dir, sweep.evaluate)
        trials.append(trial)
    return trials


def trial_status(run_dir: Path, evaluation: Optional[SweepEvaluation]) -> str:
    """``new`` (no run yet), ``failed`` (the last attempt failed), ``interrupted`` (started,
    not finished), ``trained`` (finished, evaluation pending) or ``done``."""
    if (run_dir / FAILED_MARKER).is_file():
        return "failed"
    if not (run_dir / META_FILE).is_file():
        return "new"
    if not finished(run_dir):
        return "interrupted"
    if evaluation is not None and not (run_dir / evaluation_file(evaluation)).is_file():
        return "trained"
    return "done"


def finished(run_dir: Path) -> bool:
    """Training reached its budget: ``model.zip`` and a summary at ``train.timesteps``."""
    import yaml

    try:
        summary = RunSummary.read(run_dir)
        config = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError, UserError):
        return False
    budget = config.get("train", {}).get("timesteps", 0)
    return ((run_dir / MODEL_ZIP).is_file() and summary is not None
            and summary.diverged is None and summary.timesteps >= budget)


def evaluation_file(evaluation: SweepEvaluation) -> str:
    return DISTRACTORS_FILE if evaluation.distractors else EVALUATION_FILE


def trial_commands(trial: Trial, sweep: SweepConfig) -> list[list[str]]:
    """The ``rimrl`` command lines that bring a trial to ``done``."""
    commands = []
    started = (trial.run_dir / META_FILE).is_file()
    if trial.status == "new" or (trial.status == "failed" and not started):
        argv = ["train", sweep.command, "--run-dir", str(trial.run_dir), "--no-progress"]
        for text in trial.overrides(sweep):
            argv += ["--set", text]
        commands.append(argv)
    elif trial.status in ("interrupted", "failed"):
        commands.append(["train", sweep.command, "--resume", str(trial.run_dir),
                         "--no-progress"])
    if sweep.evaluate is not None and trial.status != "done":
        e = sweep.evaluate
        argv = ["evaluate", str(trial.run_dir), "--episodes", str(e.episodes)]
        if e.distractors:
            argv += ["--distractors", *e.distractors]
        if e.deterministic:
            argv.append("--deterministic")
        commands.append(argv)
    return commands
