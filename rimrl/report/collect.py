"""Reading run directories for the comparison report: config, learning curve, distractor
evaluation, RIM activation record. Plain files only (YAML, CSV, JSON, NPZ): nothing is
imported from the learners or the environments."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from rimrl.errors import UserError
from rimrl.progress import bar, say
from rimrl.runs import (ACTIVATION_FILE, CONFIG_FILE, DISTRACTORS_FILE, LOG_DIR, META_FILE,
                        PROGRESS_CSV, SCORE_COLUMN, STEP_COLUMN, RunSummary, read_evaluations,
                        read_meta, read_run_text)


@dataclass
class Run:
    """One training run as the report sees it.

    Attributes:
        path: the run directory.
        kind: ``ppo`` or ``iqn``.
        env: the env id of its config.
        method: the value of the grouping key (e.g. the core name).
        seed: its seed.
        steps, scores: the learning curve: agent steps and the raw episode score (SB3's mean
            over the last 100 episodes) at each log.
        distractors: ``distractors.json`` when the run was evaluated per split.
        activation: RIM activity of the last logged rollout, (RIMs, steps), or None.
        episode_ends: steps of that rollout after which an episode ended.
        provenance: ``run.json``'s record of the code that made it (None for runs made
            before rimrl kept one).
        evaluations: the rows of ``evaluations.csv`` (evaluation during training), if any.
        eval_every: the run's ``eval.every`` (0: unknown or off).
        config: its ``config.yaml``.
    """

    path: Path
    kind: str
    env: str
    method: str
    seed: int
    steps: np.ndarray
    scores: np.ndarray
    distractors: Optional[dict] = None
    activation: Optional[np.ndarray] = None
    episode_ends: Optional[np.ndarray] = None
    provenance: Optional[dict] = None
    evaluations: list = field(default_factory=list)
    eval_every: int = 0
    config: dict = field(default_factory=dict)

    @property
    def final_score(self) -> float:
        """The mean return of the last evaluation during training on the setting the run
        trained on, when it has one; else the last logged training score (SB3's mean of the
        last 100 training episodes). :attr:`score_source` says which."""
        e = self._last_eval
        return float(e["return_mean"]) if e is not None else float(self.scores[-1])

    @property
    def _last_eval(self) -> Optional[dict]:
        """The last evaluation row of the setting the run trained on (the first row)."""
        if not self.evaluations:
            return None
        first = self.evaluations[0]["split"]
        return [r for r in self.evaluations if r["split"] == first][-1]

    @property
    def score_source(self) -> str:
        e = self._last_eval
        if e is not None:
            actions = "greedy" if e["deterministic"] else "sampled"
            return f"last evaluation ({e['episodes']} {actions} episodes at step {e['step']})"
        return "training episodes (ep_rew_mean)"


def config_value(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def find_runs(root: Path, grouping: dict[str, str], by: Optional[str] = None,
              show: bool = False) -> list[Run]:
    """Every run directory under ``root`` (``root`` itself may be one) of a kind in
    ``grouping`` that has logged at least one score and did not diverge.

    Args:
        grouping: run kind -> the config key naming a run's method (the learners'
            ``group_key``: the core for PPO, the encoder for IQN).
        by: one config key for every kind instead.
        show: a progress bar over the runs read.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; give a run directory or a folder of runs "
                        "(e.g. a sweep directory)")
    metas = _meta_files(root)
    runs = []
    progress = bar(len(metas), "reading runs", unit="run", enabled=show)
    for meta in metas:
        run = read_run(meta.parent, grouping, by)
        if run is not None:
            runs.append(run)
        progress.update(1)
    progress.close()
    skipped = [meta.parent.name for meta in metas if diverged(meta.parent)]
    if skipped:
        say(f"left out {len(skipped)} diverged run(s): {', '.join(skipped)}")
    unusable = [r for r in runs if not usable(r)]
    if unusable:
        warn(f"left out {len(unusable)} run(s) whose scores are not finite numbers (or "
             f"beyond +-1e300): {', '.join(r.path.name for r in unusable)}")
        runs = [r for r in runs if usable(r)]
    if not runs:
        raise UserError(f"no PPO or IQN runs with logged scores under {root}; train some with "
                        "'rimrl train ppo' or 'rimrl sweep'")
    return _one_per_seed(runs)


def _meta_files(root: Path) -> list[Path]:
    """Every run's metadata file under ``root``, following symlinked folders (a linked run
    is read like any other) and visiting each real folder once (a link loop, or a run
    reached both directly and through a link, counts once)."""
    seen, found = set(), []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()
        if META_FILE in files:
            found.append(Path(folder) / META_FILE)
    return sorted(found)


def _one_per_seed(runs: list[Run]) -> list[Run]:
    """The runs with each (env, method, seed) counted once: a copy of a run (the same config,
    the folder aside) would count its seed twice and narrow every interval, so the first by
    path is kept and the copies are named; runs of one seed with different configs (e.g. a
    sweep's learning rates grouped by core) are kept, with a warning naming what differs."""
    kept, first, copies, mixed = [], {}, [], {}
    for run in sorted(runs, key=lambda r: str(r.path)):
        key = (run.env, run.method, run.seed)
        same = first.get(key)
        if same is None:
            first[key] = run
            kept.append(run)
        elif _settings(same.config) == _settings(run.config):
            copies.append(f"{run.path.name} (a copy of {same.path.name})")
        else:
            kept.append(run)
            mixed.setdefault(key, set()).update(
                k for k in set(_flat(same.config)) | set(_flat(run.config))
                if _flat(same.config).get(k) != _flat(run.config).get(k)
                and k not in _FOLDER_KEYS)
    if copies:
        warn(f"left out {len(copies)} duplicate run(s), so each seed counts once: "
             + "; ".join(copies))
    for (env, method, seed), keys in mixed.items():
        warn(f"{env} / {method}: seed {seed} appears in runs that differ in "
             f"{', '.join(sorted(keys)) or 'their folders'}; group by one of them "
             f"(--by KEY) so each group's seeds are comparable")
    return kept


#: config keys that name where a run lives, not what it is
_FOLDER_KEYS = {"runs_dir", "run_dir"}


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in (config or {}).items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _settings(config: dict) -> dict:
    return {k: v for k, v in _flat(config).items() if k not in _FOLDER_KEYS}


def warn(text: str) -> None:
    print(f"rimrl: warning: {text}", file=sys.stderr, flush=True)


def usable(run: Run) -> bool:
    """Whether every score a report computes with is a finite number of a sane size (a NaN
    or 1e308 would turn every mean and interval of its group into NaN or overflow)."""
    values = np.concatenate([run.scores, [run.final_score]] + [
        [r["success_rate"], r["return_mean"]] for r in run.evaluations])
    return bool(np.all(np.isfinite(values)) and np.all(np.abs(values) < 1e300))


def read_run(path: Path, grouping: dict[str, str], by: Optional[str] = None) -> Optional[Run]:
    """A :class:`Run`, or None for other kinds of runs and runs without a logged score."""
    try:
        meta = read_meta(path)
        kind = meta.get("kind")
        config = yaml.safe_load(read_run_text(path / CONFIG_FILE))
    except (OSError, ValueError, AttributeError, UnicodeDecodeError, UserError,
            yaml.YAMLError):
        warn(f"left out {path}: its {META_FILE} or {CONFIG_FILE} is unreadable")
        return None
    if kind not in grouping or not isinstance(config, dict) or diverged(path):
        return None
    key = by or grouping[kind]
    try:
        method = str(config_value(config, key))
    except KeyError:
        raise UserError(f"run {path} has no config key '{key}' to group by") from None
    try:
        steps, scores = read_curve(path / LOG_DIR / PROGRESS_CSV)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error):
        warn(f"left out {path}: its {LOG_DIR}/{PROGRESS_CSV} is corrupt")
        return None
    if len(steps) == 0:
        return None
    distractors = None
    if (path / DISTRACTORS_FILE).exists():
        try:
            distractors = json.loads(read_run_text(path / DISTRACTORS_FILE))
            if not isinstance(distractors, dict) or not isinstance(
                    distractors.get("splits"), dict):
                raise ValueError("no splits")
        except (OSError, ValueError, UnicodeDecodeError):
            warn(f"{path / DISTRACTORS_FILE} is unreadable; comparing {path.name} without it "
                 f"(rerun rimrl evaluate {path} --distractors ...)")
            distractors = None
    activation = episode_ends = None
    if (path / ACTIVATION_FILE).is_file():
        with np.load(path / ACTIVATION_FILE) as record:
            activation, episode_ends = record["active"], record["episode_ends"]
    return Run(path=path, kind=kind, env=str(config_value(config, "env.id")), method=method,
               seed=int(config.get("seed", 0)), steps=steps, scores=scores,
               distractors=distractors, activation=activation, episode_ends=episode_ends,
               provenance=meta.get("provenance"), evaluations=_evaluations(path),
               eval_every=_eval_every(config), config=config)


def _eval_every(config: dict) -> int:
    try:
        return max(0, int(config_value(config, "eval.every")))
    except (KeyError, TypeError, ValueError):
        return 0


def _evaluations(path: Path) -> list:
    """``evaluations.csv`` of a run in step order (a file edited or merged out of order
    would otherwise make an early row its final score); a corrupt one is left out with a
    warning."""
    try:
        return sorted(read_evaluations(path), key=lambda row: row["step"])
    except UserError as exc:
        warn(f"{exc}; comparing {path.name} without it")
        return []


def diverged(path: Path) -> bool:
    """The run stopped because training diverged (its scores end in a collapse that says
    nothing about the method): ``train_summary.json`` has a ``diverged`` entry."""
    try:
        summary = RunSummary.read(path)
    except UserError:
        return False
    return summary is not None and summary.diverged is not None


def read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps, scores) rows of a progress.csv that have both values, sorted by step;
    ``ValueError`` (or ``OSError``) for a file that is not one rimrl wrote (a step that is
    negative or not finite, a FIFO); scores that are not finite are the caller's to judge."""
    if not os.path.lexists(path):
        return np.zeros(0), np.zeros(0)
    steps, scores = [], []
    for row in csv.DictReader(io.StringIO(read_run_text(path, newline=""), newline="")):
        step, score = row.get(STEP_COLUMN), row.get(SCORE_COLUMN)
        if step and score:
            steps.append(float(step))
            scores.append(float(score))
            if not (np.isfinite(steps[-1]) and steps[-1] >= 0):
                raise ValueError(f"{path}: a step out of range")
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(scores)[order]
