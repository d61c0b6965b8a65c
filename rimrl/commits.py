"""A run's progress as transactions: the commit record ``commit.json`` and recovery.

The unit of progress is the iteration (a rollout and its update for PPO, a collection and its
gradient steps for IQN, one update of the copy task). What an iteration writes, in order:
its ``progress.csv`` row, its evaluation rows (``evaluations.csv``), a new best model
(staged as ``checkpoints/best_<step>.zip``), its checkpoint (and replay memory), and last,
atomically, the commit record naming all of them. After the record come the steps that only
tidy up (the staged best model renamed to ``best_model.zip``, old checkpoints pruned); a
resume redoes them from the record, so they may be cut short at any point.

A resume (:func:`recover`, under the run's lock) restores exactly the last committed
iteration: rows past the record's counts are dropped, checkpoints, staged models and replay
memories it does not name are deleted, and training continues from its checkpoint, so
nothing is half-counted. A new run starts with an empty record (no checkpoint): a run
killed before its first commit starts over. Runs written before records existed (no
``commit.json``) resume from their newest checkpoint with their logs cut at its step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Optional, Union

from rimrl.errors import UserError
from rimrl.faults import crash_if_due
from rimrl.runs import (BEST_MODEL_ZIP, CHECKPOINT_DIR, COMMIT_FILE, EVALUATIONS_CSV, LOG_DIR,
                        PROGRESS_CSV, REPLAY_FILE, atomic_write, checksums_path,
                        latest_checkpoint, list_checkpoints, read_checksums, read_evaluations,
                        read_run_lines, read_run_text, recorded, sha256, update_checksums,
                        write_json)

#: the staged copy of a new best model, named by its step, until its commit is tidied up
STAGED_BEST_RE = re.compile(r"^best_(\d+)\.zip$")
#: a replay memory written with a checkpoint, named by its step
REPLAY_RE = re.compile(r"^replay_(\d+)\.npz$")


@dataclasses.dataclass(frozen=True)
class Commit:
    """One run's last committed iteration (``commit.json``).

    Attributes:
        step: env steps (SB3 learners) or updates (copy task) at the end of the iteration.
        checkpoint: file name, under ``checkpoints/``, of the model (and optimiser) state
            after the iteration's update; ``None`` before the first commit.
        progress_rows: data rows of ``tb/progress.csv`` that belong to committed iterations
            (``None``: the learner keeps no such file, or a run from before records).
        evaluation_rows: rows of ``evaluations.csv`` that do (``None`` as above).
        best_sha256: SHA-256 of the best model of the committed evaluations (``None``: no
            evaluation yet).
        best_staged: the staged file, under ``checkpoints/``, that becomes ``best_model.zip``
            when the commit is tidied up; ``None`` when the best model did not change.
        replay: file name, under ``checkpoints/``, of the replay memory (off-policy).
    """

    step: int = 0
    checkpoint: Optional[str] = None
    progress_rows: Optional[int] = 0
    evaluation_rows: Optional[int] = 0
    best_sha256: Optional[str] = None
    best_staged: Optional[str] = None
    replay: Optional[str] = None

    def path(self, run_dir: Union[str, Path], name: Optional[str]) -> Optional[Path]:
        """``run_dir/checkpoints/name``, or ``None`` for no file."""
        return None if name is None else Path(run_dir) / CHECKPOINT_DIR / name

    def write(self, run_dir: Union[str, Path]) -> None:
        """Make this the run's commit: one atomic write, the last of an iteration."""
        write_json(Path(run_dir) / COMMIT_FILE, dataclasses.asdict(self))


_TYPES = {f.name: f.type for f in dataclasses.fields(Commit)}


def read_commit(run_dir: Union[str, Path]) -> Optional[Commit]:
    """The run's commit record; ``None`` when it has none (a run from before records); a
    one-line error naming the file when it is not one rimrl wrote."""
    path = Path(run_dir) / COMMIT_FILE
    if not os.path.lexists(path):
        return None
    try:
        data = json.loads(read_run_text(path))
        if not isinstance(data, dict) or set(data) != set(_TYPES):
            raise ValueError("not the fields rimrl writes")
        for key, value in data.items():
            wanted = int if key in ("step", "progress_rows", "evaluation_rows") else str
            optional = key != "step"
            if (value is None and not optional) or (
                    value is not None and (type(value) is not wanted
                                           or (wanted is int and value < 0)
                                           or (wanted is str and ("/" in value
                                                                  or value.startswith("."))))):
                raise ValueError(f"bad {key}")
        return Commit(**data)
    except (OSError, ValueError, UnicodeDecodeError):
        raise UserError(f"{path} is corrupt (it records the run's last whole iteration); "
                        "delete it to resume from the newest checkpoint") from None


def committed_checkpoint(run_dir: Union[str, Path]) -> Optional[Path]:
    """The checkpoint a resume continues from, without changing anything (for readers such as
    ``rimrl evaluate``): the committed one, or the newest for a run from before records;
    ``None`` when there is none (or it is gone)."""
    commit = read_commit(run_dir)
    if commit is None:
        return latest_checkpoint(run_dir)
    path = commit.path(run_dir, commit.checkpoint)
    return path if path is not None and path.is_file() else None


def recover(run_dir: Union[str, Path]) -> Commit:
    """Bring the run back to its last commit (see the module docstring) and return it; a
    one-line error, before anything is changed, when one of the files a resume reads is
    corrupt. Call it only while holding the run's lock."""
    run_dir = Path(run_dir)
    commit = read_commit(run_dir)
    # every file the resume will read, read now: a refused resume has changed nothing
    read_checksums(run_dir)
    read_evaluations(run_dir)
    if os.path.lexists(run_dir / LOG_DIR / PROGRESS_CSV):
        _lines(run_dir / LOG_DIR / PROGRESS_CSV)
    if commit is None:  # a run from before records: its newest checkpoint, logs cut by step
        newest = latest_checkpoint(run_dir)
        step = int(newest.stem.split("_")[1]) if newest else 0
        replay = run_dir / CHECKPOINT_DIR / REPLAY_FILE
        return Commit(step=step, checkpoint=newest.name if newest else None,
                      progress_rows=None, evaluation_rows=None,
                      replay=REPLAY_FILE if replay.is_file() else None)
    checkpoint = commit.path(run_dir, commit.checkpoint)
    if checkpoint is not None and not checkpoint.is_file():
        raise UserError(f"{checkpoint} is missing, yet {run_dir / COMMIT_FILE} names it as the "
                        "last whole iteration; restore it, or delete both files to resume "
                        "from an older checkpoint")
    tidy(run_dir, commit)
    if commit.progress_rows is not None:
        keep_rows(run_dir / LOG_DIR / PROGRESS_CSV, commit.progress_rows)
    if commit.evaluation_rows is not None:
        keep_rows(run_dir / EVALUATIONS_CSV, commit.evaluation_rows)
    return commit


def tidy(run_dir: Union[str, Path], commit: Commit, keep: Optional[int] = None) -> None:
    """The steps after a commit, safe to repeat: publish its staged best model, delete the
    checkpoints past it and the staged models and replay memories it does not name, and with
    ``keep``, all but the newest ``keep`` committed checkpoints."""
    run_dir = Path(run_dir)
    staged = commit.path(run_dir, commit.best_staged)
    best = run_dir / BEST_MODEL_ZIP
    if staged is not None and staged.is_file():
        crash_if_due("publish", best)
        os.replace(staged, best)
    if staged is not None and best.is_file() and recorded(run_dir, best) != commit.best_sha256:
        if sha256(best) == commit.best_sha256:  # published, its checksum not yet moved
            update_checksums(run_dir, {staged: None, best: commit.best_sha256})
    elif commit.best_sha256 is None and best.exists():
        best.unlink()  # a best model of no committed evaluation
    folder = run_dir / CHECKPOINT_DIR
    stale = [p for p in list_checkpoints(run_dir)
             if int(p.stem.split("_")[1]) > commit.step and p.name != commit.checkpoint]
    committed = [p for p in list_checkpoints(run_dir) if p not in stale]
    if keep:
        stale += [p for p in committed[:-keep] if p.name != commit.checkpoint]
    if folder.is_dir():
        stale += [p for p in folder.iterdir()
                  if (STAGED_BEST_RE.match(p.name) and p.name != commit.best_staged)
                  or (REPLAY_RE.match(p.name) and p.name != commit.replay)]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale and checksums_path(run_dir).is_file():
        update_checksums(run_dir, {path: None for path in stale})


def _lines(path: Path) -> list[str]:
    """The lines of ``path`` with their ends as written; a torn last line has none."""
    try:
        return read_run_lines(path)
    except (OSError, UnicodeDecodeError):
        raise UserError(f"{path} is corrupt; move it away to resume (the rows in it are "
                        "then lost) or restore it") from None


def count_rows(path: Union[str, Path]) -> int:
    """Whole data rows (after the header) of a CSV file rimrl wrote; 0 when there is none."""
    path = Path(path)
    if not path.is_file():
        return 0
    lines = _lines(path)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # torn by a kill: not a row
    return max(0, len(lines) - 1)


def keep_rows(path: Path, rows: int) -> None:
    """Cut the CSV file at ``path`` to its header and first ``rows`` rows, byte for byte (a
    row torn by a kill is among those cut); nothing is written when nothing is past them."""
    if not path.is_file():
        return
    lines = _lines(path)
    kept = lines[:rows + 1]
    if len(kept) == len(lines) and (not kept or kept[-1].endswith("\n")):
        return
    if kept and not kept[-1].endswith("\n"):
        kept = kept[:-1]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            handle.write("".join(kept))

    atomic_write(path, write)
