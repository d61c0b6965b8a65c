"""Sweep files and trial planning for ``rimrl sweep`` (the Ray side is in
:mod:`rimrl.sweeps.ray_runner`).

A sweep file names a train command, a grid of config values (every combination is one
trial) or a search (:mod:`rimrl.sweeps.search`), fixed overrides, per-trial resources and an
optional evaluation after training::

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

Trials are planned lazily (:func:`iter_trials`), so a grid of a million points lists its
first trials at once; validation loads and checks each distinct setting once (every value of
every key, the others at their first values), as ``rimrl train`` would.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from rimrl.config import ConfigError, from_dict, override_text, read_yaml
from rimrl.errors import UserError
from rimrl.runs import (DISTRACTORS_FILE, EVALUATION_FILE, FAILED_MARKER, META_FILE,
                        SWEEP_STATUS, write_json)
from rimrl.sweeps.search import SearchConfig, check_metric, edge_settings


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

    def __post_init__(self):
        if self.episodes < 1:
            raise UserError(f"evaluate.episodes must be at least 1, got {self.episodes}")


@dataclass
class SweepConfig:
    """A sweep file (see the module docstring).

    Args:
        command: the train command of every trial: a sweepable learner (``ppo`` or
            ``iqn``; checked against :mod:`rimrl.learners` by ``rimrl sweep``).
        name: the sweep's folder under ``runs_dir``.
        runs_dir: where sweep folders live.
        grid: config key -> list of values; the trials are every combination.
        search: instead of a grid, trials sampled from a search space and stopped early
            (:class:`~rimrl.sweeps.search.SearchConfig`).
        overrides: config key -> value for every trial.
        resources: per-trial CPUs and GPUs.
        max_concurrent: at most this many trials at once (0: as many as resources allow).
        retries: times a trial is started again after its Ray worker or node was lost (it
            resumes its run from the last checkpoint); a trial whose command fails (e.g. a
            diverged run) is reported as failed at once, never retried within a sweep.
        evaluate: evaluation after training (optional).
    """

    command: str = "ppo"
    name: str = "sweep"
    runs_dir: str = "runs/sweeps"
    grid: dict[str, list[Any]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    max_concurrent: int = 0
    retries: int = 3
    evaluate: Optional[SweepEvaluation] = None
    search: Optional[SearchConfig] = None

    def __post_init__(self):
        if self.search is not None:
            if self.grid:
                raise UserError("a sweep file has a grid or a search, not both; move the grid's "
                                "keys into search.space (choice) or overrides")
            both = sorted(set(self.search.space) & set(self.overrides))
            if both:
                raise UserError(f"{both[0]} is both in overrides and in search.space; keep it "
                                "in one of them")
        elif not self.grid:
            raise UserError("the sweep's grid is empty; give at least one key with a list of "
                            "values, e.g. grid: {seed: [0, 1, 2]} (or a search: section)")
        for key, values in self.grid.items():
            if not isinstance(values, list):
                raise UserError(f"grid key '{key}' must be a list of values, e.g. "
                                f"{key}: [{values}]")
            if not values:
                raise UserError(f"grid key '{key}' has no values")
            names = [trial_name({key: v}) for v in values]
            twice = next((v for v, n in zip(values, names) if names.count(n) > 1), None)
            if twice is not None or len(set(names)) < len(names):
                raise UserError(f"grid key '{key}' lists {twice!r} twice (or two values that "
                                "name the same trial folder); give each value once")
        if min(self.resources.cpu, self.resources.gpu, self.max_concurrent, self.retries) < 0:
            raise UserError("resources, max_concurrent and retries must not be negative")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise UserError(f"sweep name '{self.name}' may use letters, digits, '.', '_', '-'")
        runs = Path(self.runs_dir)
        blocking = next((p for p in (runs, *runs.parents) if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise UserError(f"runs_dir {self.runs_dir} is a file (or lies under one, "
                            f"{blocking}); choose a folder")

    @property
    def root(self) -> Path:
        """The sweep's folder, ``RUNS_DIR/NAME``."""
        return Path(self.runs_dir).resolve() / self.name

    def size(self) -> int:
        """The number of trials (the grid's product, or the search's trials), without
        listing them."""
        if self.search is not None:
            return self.search.trials
        count = 1
        for values in self.grid.values():
            count *= len(values)
        return count


def load_sweep(path: Path) -> SweepConfig:
    """Read and check a sweep file; a one-line error for unknown keys or bad values."""
    if not Path(path).exists():
        raise UserError(f"sweep file {path} does not exist")
    if Path(path).is_dir():
        raise UserError(f"sweep file {path} is a directory; give a YAML file")
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


def iter_trials(sweep: SweepConfig) -> Iterator[Trial]:
    """Every grid combination, in file order, with the state its run directory is in; lazy
    (the folder is listed once: trials without a folder are ``new`` without a look)."""
    from rimrl import learners

    learner = learners.get(sweep.command)
    root = sweep.root
    existing = set(os.listdir(root)) if root.is_dir() else set()
    keys = list(sweep.grid)
    for combo in itertools.product(*(sweep.grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = trial_name(values)
        trial = Trial(name, values, root / name)
        if name in existing:
            trial.status = trial_status(learner, trial.run_dir, sweep.evaluate)
        yield trial


def plan_trials(sweep: SweepConfig) -> list[Trial]:
    """:func:`iter_trials` as a list."""
    return list(iter_trials(sweep))


def trial_status(learner, run_dir: Path, evaluation: Optional[SweepEvaluation]) -> str:
    """``new`` (no run yet), ``failed`` (the last attempt failed), ``interrupted`` (started,
    not finished), ``trained`` (finished, evaluation pending) or ``done``."""
    if (run_dir / FAILED_MARKER).is_file():
        return "failed"
    if not (run_dir / META_FILE).is_file():
        return "new"
    if not learner.finished(run_dir):
        return "interrupted"
    if evaluation is not None and not (run_dir / evaluation_file(evaluation)).is_file():
        return "trained"
    return "done"


def sweep_learner(sweep: SweepConfig):
    """The registered learner a sweep file's ``command`` names; it must be sweepable."""
    from rimrl import learners

    sweepable = [name for name in learners.names() if learners.get(name).sweepable]
    if sweep.command not in sweepable:
        raise UserError(f"sweep command '{sweep.command}' is not one of: {', '.join(sweepable)}")
    return learners.get(sweep.command)


def distinct_settings(sweep: SweepConfig) -> Iterator[dict[str, Any]]:
    """The first trial's values, then each other value of each key with the remaining keys
    at their first values: every value the grid holds, checked once (sum, not product,
    of the value counts). A search: each edge of each dimension (both ends of a range, every
    choice), the same way."""
    if sweep.search is not None:
        yield from edge_settings(sweep.search)
        return
    first = {key: values[0] for key, values in sweep.grid.items()}
    yield first
    for key, values in sweep.grid.items():
        for value in values[1:]:
            yield {**first, key: value}


def validate_sweep(sweep: SweepConfig) -> int:
    """Load and check each distinct setting exactly as ``rimrl train`` does (and the
    evaluation's splits): a setting that training would refuse stops the sweep (and
    ``--dry-run``) before anything runs, with the trial's name in the one-line error.
    Returns the number of settings checked."""
    from rimrl.sb3.environments import requested_splits

    learner = sweep_learner(sweep)
    count = 0
    for values in distinct_settings(sweep):
        trial = Trial(trial_name(values), values, sweep.root)
        try:
            cfg = learner.load_config(trial.overrides(sweep))
            learner.check(cfg)  # what rimrl train checks before it creates the run
            if sweep.search is not None:
                check_metric(sweep.search, cfg)
            if sweep.evaluate is not None:
                requested_splits(cfg.env.id, sweep.evaluate.distractors)
        except UserError as exc:
            raise UserError(f"trial {trial.name}: {exc}") from None
        count += 1
    return count


def write_status(sweep: SweepConfig, trials: list[Trial], errors: dict[str, str]) -> Path:
    """``RUNS_DIR/NAME/sweep.json``: each trial's values, folder, state and error."""
    path = sweep.root / SWEEP_STATUS
    write_json(path, {"trials": [
        {"name": t.name, "values": t.values, "run_dir": str(t.run_dir), "status": t.status,
         **({"error": errors[t.name]} if t.name in errors else {})} for t in trials]})
    return path


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
