"""Run directories: the one home of their layout (every file name), atomic writes,
checkpoints, checksums, locking and resume.

Layout of one run (the constants below name each entry; nothing else spells them)::

    RUN_DIR/
      config.yaml            CONFIG_FILE: the resolved config (every default and override)
      run.json               META_FILE: which learner made it and the command line
      .lock                  LOCK_FILE: the writer's lock (see RunLock); holds its PID
      checksums.json         CHECKSUMS: sha256 of every model file rimrl wrote
      commit.json            COMMIT_FILE: the last whole iteration (rimrl.commits)
      checkpoints/           CHECKPOINT_DIR: ckpt_<step>.zip (SB3 learners) or .pt (copy
                             task), written atomically, the newest few kept; replay_<step>.npz
                             (off-policy learners); best_<step>.zip, a new best model until
                             its commit is tidied up (rimrl.commits)
      tb/                    LOG_DIR: TensorBoard events and progress.csv (PROGRESS_CSV)
      model.zip | model.pt   MODEL_ZIP (SB3 learners) | MODEL_PT (torch learners)
      train_summary.json     SUMMARY_FILE: RunSummary (steps, scores, time, divergence)
      rims_activation.npz    ACTIVATION_FILE: which RIMs were active in the last rollout
      evaluation.json        EVALUATION_FILE: ``rimrl evaluate`` without splits
      distractors.json       DISTRACTORS_FILE: ``rimrl evaluate --distractors``
      evaluations.csv        EVALUATIONS_CSV: evaluations during training (EVAL_COLUMNS)
      best_model.zip         BEST_MODEL_ZIP: the best model of those evaluations
      probe_<name>.json      probe_path(): ``rimrl evaluate --probe``
      wandb/                 ``--track``'s Weights & Biases files (rimrl.tracking)
      results.json           RESULTS_FILE: final metrics of the copy and supervised tasks
      decision_boundary.png  DECISION_BOUNDARY: supervised runs on 2-d data
      videos/                VIDEO_DIR: ``rimrl evaluate --video``
      trial.log              TRIAL_LOG: a sweep trial's whole output
      trial_failed.txt       FAILED_MARKER: why a sweep trial failed
      trial_pruned.txt       PRUNED_MARKER: a search's scheduler stopped the trial, and when
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

from rimrl.errors import UserError
from rimrl.faults import crash_if_due

CONFIG_FILE = "config.yaml"
META_FILE = "run.json"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
REPLAY_FILE = "replay.npz"  # runs from before commit records; now replay_<step>.npz
LOG_DIR = "tb"
PROGRESS_CSV = "progress.csv"
MODEL_ZIP = "model.zip"
MODEL_PT = "model.pt"
SUMMARY_FILE = "train_summary.json"
ACTIVATION_FILE = "rims_activation.npz"
EVALUATION_FILE = "evaluation.json"
DISTRACTORS_FILE = "distractors.json"
EVALUATIONS_CSV = "evaluations.csv"
BEST_MODEL_ZIP = "best_model.zip"
RESULTS_FILE = "results.json"
DECISION_BOUNDARY = "decision_boundary.png"
VIDEO_DIR = "videos"
TRIAL_LOG = "trial.log"
FAILED_MARKER = "trial_failed.txt"
PRUNED_MARKER = "trial_pruned.txt"
CHECKSUMS = "checksums.json"
COMMIT_FILE = "commit.json"
# progress.csv columns read back by rimrl (SB3's logger names)
STEP_COLUMN = "time/total_timesteps"
SCORE_COLUMN = "rollout/ep_rew_mean"
# a report folder (rimrl compare --out): report.md embeds figures/*.png, report.json the numbers
REPORT_MD = "report.md"
REPORT_JSON = "report.json"
FIGURES_DIR = "figures"
SWEEP_STATUS = "sweep.json"  # in a sweep's folder: each trial's state after a sweep
RAY_PROCESSES = "ray_processes.json"  # in a sweep's folder while its local Ray runs
BEST_CONFIG = "best_config.yaml"  # in a search's folder: its best trial's config (--config)
SEARCH_RECORD = "search.yaml"  # in a search's folder: the search as started (a re-run's check)
#: what rimrl itself may put in a run directory before the run exists (a sweep's trial log
#: and failure marker, the lock, and what a run writes before run.json, which a kill may
#: leave): such a folder is still rimrl's to train into
PRE_RUN_FILES = (LOCK_FILE, TRIAL_LOG, FAILED_MARKER, CONFIG_FILE, COMMIT_FILE)

CHECKPOINT_RE = re.compile(r"^ckpt_(\d+)\.(pt|zip)$")


def refuse_inside_a_run(path: Union[str, Path], flag: str) -> None:
    """A one-line error when ``path`` lies inside an existing run directory (say its
    ``checkpoints/``): a run there would be pruned, resumed over or compared as part of it."""
    for parent in Path(path).resolve().parents:
        if (parent / META_FILE).is_file():
            raise UserError(f"{flag} {path} lies inside the run directory {parent}; choose a "
                            "folder outside every run")


def new_run_dir(runs_dir: Union[str, Path], name: str) -> Path:
    """Create a fresh, uniquely named run directory ``runs_dir/name-YYYYmmdd-HHMMSS[-n]``."""
    root = Path(runs_dir)
    refuse_inside_a_run(root / name, "--runs-dir")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"runs directory {root} is a file (or lies under one); choose another "
                        "--runs-dir") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = root / (f"{name}-{stamp}" + (f"-{n}" if n else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"could not create a new run directory under {root}")


class RunLock:
    """The exclusive right to write a run directory, held by one process at a time.

    An OS file lock (``flock``) on ``RUN_DIR/.lock``, which holds the owner's PID: the OS
    releases it when the process ends in any way, kill -9 included, so no stale lock is ever
    left. ``rimrl train`` (new and resumed) holds it for its whole life.
    """

    def __init__(self, run_dir: Union[str, Path]):
        self.run_dir = Path(run_dir)
        self._handle = None

    def acquire(self) -> "RunLock":
        import fcntl

        handle = open(self.run_dir / LOCK_FILE, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(f"{self.run_dir} is being trained by another process (PID {pid}); "
                            "wait for it to finish or stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor releases the flock
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def atomic_write(path: Union[str, Path], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``: a reader never sees half.

    Two crash points (:mod:`rimrl.faults`): before anything is written, and with the
    temporary file complete but not yet renamed."""
    path = Path(path)
    crash_if_due("write", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        crash_if_due("rename", path)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of :func:`atomic_write`'s temporary files."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_torn_files(run_dir: Union[str, Path]) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` leaves when a process dies in the
    middle of a write (a torn replay memory can be GBs). Call it only while holding the
    run's :class:`RunLock`: then no other writer has a write in progress."""
    folders = (Path(run_dir), Path(run_dir) / CHECKPOINT_DIR, Path(run_dir) / LOG_DIR)
    torn = [p for folder in folders
            if folder.is_dir() for p in folder.iterdir() if is_temporary(p.name) and p.is_file()]
    for path in torn:
        path.unlink(missing_ok=True)
    return torn


def remove_new_run(run_dir: Union[str, Path], keep_folder: bool = False) -> None:
    """Delete what a new run wrote before it could train (a command refused late); with
    ``keep_folder`` the folder stays (the user named it with ``--run-dir``), empty."""
    import shutil

    run_dir = Path(run_dir)
    if not keep_folder:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for path in run_dir.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_json(path: Union[str, Path], data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
    atomic_write(path, write)


def figure_path(out_dir: Union[str, Path], kind: str, name: str = "") -> Path:
    """``OUT/figures/<kind>[_<name>].png``, ``name`` made safe for a file name."""
    stem = f"{kind}_{re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_')}" if name else kind
    return Path(out_dir) / FIGURES_DIR / f"{stem}.png"


def write_result(path: Union[str, Path], data: Any) -> None:
    """Write a computed result (an evaluation, a probe table) as :func:`write_json` does;
    when the write fails (disk full, read-only folder), print the result as JSON on stdout
    first, so the minutes spent computing it are not lost, then re-raise."""
    try:
        write_json(path, data)
    except OSError:
        print(f"could not write {path}; the result follows:")
        print(json.dumps(data, indent=2), flush=True)
        raise


def checkpoint_path(run_dir: Union[str, Path], step: int, suffix: str = "pt") -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"ckpt_{step:012d}.{suffix}"


def list_checkpoints(run_dir: Union[str, Path]) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


# ------------------------------------------------------------------------------- checksums


def checksums_path(run_dir: Union[str, Path]) -> Path:
    return Path(run_dir) / CHECKSUMS


def sha256(path: Union[str, Path]) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def read_checksums(run_dir: Union[str, Path]) -> dict:
    """``checksums.json``: run-relative file name -> SHA-256 (``{}`` when there is none); a
    one-line error naming the file when it is not a regular file holding that mapping."""
    path = checksums_path(run_dir)
    if not os.path.lexists(path):
        return {}
    try:
        known = json.loads(read_run_text(path))
        if not isinstance(known, dict) or not all(
                isinstance(v, str) and _SHA256_RE.match(v) for v in known.values()):
            raise ValueError("not the mapping rimrl writes")
        return known
    except (OSError, ValueError, UnicodeDecodeError):
        raise UserError(f"{path} is corrupt, so rimrl cannot tell whether the run's model files "
                        "are the ones it wrote; add --trust only if you trust this run "
                        "directory (model files embed pickles that run code when loaded)"
                        ) from None


def _key(run_dir: Union[str, Path], file: Union[str, Path]) -> str:
    return Path(file).resolve().relative_to(Path(run_dir).resolve()).as_posix()


def update_checksums(run_dir: Union[str, Path], changes: dict) -> None:
    """Set (a hex digest) or forget (``None``) the recorded checksum of each file in
    ``changes``. A corrupt record (refused when the run was resumed, unless ``--trust``) is
    replaced by one holding what is recorded from now on."""
    try:
        known = read_checksums(run_dir)
    except UserError:
        known = {}
    for file, value in changes.items():
        if value is None:
            known.pop(_key(run_dir, file), None)
        else:
            known[_key(run_dir, file)] = value
    write_json(checksums_path(run_dir), known)


def recorded(run_dir: Union[str, Path], file: Union[str, Path]) -> Optional[str]:
    """The SHA-256 recorded for ``file`` in ``checksums.json``; ``None`` when there is none
    (or the record is corrupt: :func:`verify_checksum` says so when it matters)."""
    try:
        return read_checksums(run_dir).get(_key(run_dir, file))
    except UserError:
        return None


def record_checksum(run_dir: Union[str, Path], file: Union[str, Path]) -> str:
    """Remember ``file``'s SHA-256 in ``RUN_DIR/checksums.json`` (after rimrl wrote it);
    returns it."""
    digest = sha256(file)
    update_checksums(run_dir, {file: digest})
    return digest


def verify_checksum(run_dir: Union[str, Path], file: Union[str, Path],
                    trust: bool = False) -> None:
    """Refuse to load a model file that is not the one rimrl wrote into this run: SB3's zip
    models embed pickles, which run code when loaded. ``trust`` (``--trust``) skips it."""
    if trust:
        return
    run_dir, file = Path(run_dir), Path(file)
    known = read_checksums(run_dir)
    key = _key(run_dir, file)
    if known.get(key) != sha256(file):
        why = "differs from the file rimrl wrote" if key in known else "has no recorded checksum"
        raise UserError(f"{file} {why}; model files embed pickles that run code when loaded, so "
                        "load it only if you trust its source: add --trust")


def save_torch(path: Union[str, Path], state: Any) -> Path:
    """Atomically ``torch.save`` ``state`` (a checkpoint, a final model) to ``path``."""
    import torch

    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return Path(path)


def load_checkpoint(path: Union[str, Path], required: tuple[str, ...] = ()) -> dict:
    """Load a torch checkpoint (tensors, numbers, containers) without running code: a file
    with pickled objects of any other kind is refused, never executed. A one-line
    :class:`UserError` if it is missing, corrupt, or lacks one of the ``required`` keys."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated, foreign or unsafe files
        raise UserError(
            f"checkpoint {path} is corrupt or not a rimrl checkpoint "
            f"({type(exc).__name__}); delete it to resume from an earlier one"
        ) from None
    missing = [key for key in required if not isinstance(state, dict) or key not in state]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}: not a rimrl "
                        "checkpoint of this kind; delete it to resume from an earlier one")
    return state


def require_run_dir(path: Union[str, Path]) -> Path:
    """A run directory that exists and holds a config.yaml, or a clear error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file; give a run directory (the folder rimrl train "
                        "made)")
    if not path.is_dir():
        raise UserError(f"run directory {path} does not exist")
    config = path / CONFIG_FILE
    if os.path.lexists(config) and not config.is_file():
        raise UserError(f"{config} is not a regular file (a FIFO, device, socket or folder); "
                        "restore the run's config.yaml")
    if not config.is_file():
        raise UserError(f"{path} is not a rimrl run directory (no {CONFIG_FILE} in it)")
    return path


def latest_checkpoint(run_dir: Union[str, Path]) -> Optional[Path]:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


#: the largest run file (JSON, YAML, CSV) rimrl reads; a larger one is not one it wrote
MAX_RUN_FILE_BYTES = 256 << 20


def read_run_text(path: Union[str, Path], newline: Optional[str] = None) -> str:
    """The text of a run file, read only when it is a regular file of at most
    :data:`MAX_RUN_FILE_BYTES` (a FIFO or a device put in its place would block the reader
    or never end); ``OSError`` otherwise, which each reader turns into its one-line error.
    ``newline=""`` keeps line ends as they are (for byte-exact rewrites)."""
    import stat

    info = os.stat(path)  # through a symlink, as open() would
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path} is not a regular file")
    if info.st_size > MAX_RUN_FILE_BYTES:
        raise OSError(f"{path} is {info.st_size:,} bytes, more than rimrl ever writes")
    with open(path, newline=newline) as handle:
        return handle.read()


def read_run_lines(path: Union[str, Path]) -> list[str]:
    """The lines of a run file (:func:`read_run_text`) with their ends as written; a last
    line torn by a kill is kept without one, for the caller to drop."""
    parts = read_run_text(path, newline="").split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


#: the fields of ``run.json`` that rimrl reads back, and their types
_META_TYPES = {"kind": str, "argv": list, "provenance": dict, "resumed_with": list}


def read_meta(run_dir: Union[str, Path], missing_ok: bool = False) -> dict:
    """``run.json``: which learner made the run (``kind``) and its command line. A run
    directory without a readable one (or one that is not a JSON object) is refused, or
    ``{}`` with ``missing_ok``."""
    try:
        meta = json.loads(read_run_text(Path(run_dir) / META_FILE))
        if not isinstance(meta, dict) or any(
                key in meta and not isinstance(meta[key], kind)
                for key, kind in _META_TYPES.items()):
            raise ValueError("not the object rimrl writes")
        return meta
    except (OSError, ValueError, UnicodeDecodeError):
        if missing_ok:
            return {}
        raise UserError(f"{run_dir} has no readable {META_FILE}; was it made by rimrl "
                        "train?") from None


def write_meta(run_dir: Union[str, Path], meta: dict) -> None:
    write_json(Path(run_dir) / META_FILE, meta)


def activation_path(run_dir: Union[str, Path]) -> Path:
    return Path(run_dir) / ACTIVATION_FILE


def probe_path(run_dir: Union[str, Path], probe: str) -> Path:
    """Where ``rimrl evaluate --probe PROBE`` writes its table."""
    return Path(run_dir) / f"probe_{probe.replace('-', '_')}.json"


def replay_path(run_dir: Union[str, Path], step: int) -> Path:
    """Where off-policy learners checkpoint their replay memory with the checkpoint of
    ``step``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"replay_{step:012d}.npz"


def staged_best_path(run_dir: Union[str, Path], step: int) -> Path:
    """Where a new best model of the evaluation at ``step`` waits for its commit."""
    return Path(run_dir) / CHECKPOINT_DIR / f"best_{step:012d}.zip"


# ------------------------------------------------------------- evaluations during training
#: the columns of ``evaluations.csv``: one row per evaluation and split (rimrl.learners.
#: periodic_evaluation); the success and return intervals are 95% (Wilson, bootstrap)
EVAL_COLUMNS = ("step", "split", "episodes", "deterministic", "success_rate", "success_lo",
                "success_hi", "return_mean", "return_lo", "return_hi", "seconds")
_EVAL_TYPES = {"step": int, "episodes": int, "split": str,
               "deterministic": lambda text: text == "True"}


def read_evaluations(run_dir: Union[str, Path]) -> list[dict]:
    """The rows of a run's ``evaluations.csv`` (none if it has none), typed and checked
    (steps and counts whole and non-negative, success rates and their interval in [0, 1] and
    in order, no NaN); a one-line error naming the file when it is not that."""
    import csv
    import io
    import math

    path = Path(run_dir) / EVALUATIONS_CSV
    if not os.path.lexists(path):
        return []
    try:
        text = read_run_text(path, newline="")
        rows = [{key: _EVAL_TYPES.get(key, float)(row[key]) for key in EVAL_COLUMNS}
                for row in csv.DictReader(io.StringIO(text, newline=""))]
        for row in rows:
            if (row["step"] < 0 or row["episodes"] < 1 or not row["split"]
                    or any(math.isnan(row[k]) for k in EVAL_COLUMNS if isinstance(row[k], float))
                    or not 0 <= row["success_lo"] <= row["success_rate"] <= row["success_hi"] <= 1
                    or row["seconds"] < 0):
                raise ValueError("out of range")
        return rows
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError, csv.Error):
        raise UserError(f"{path} is corrupt; delete it (the run's evaluations during training "
                        "are then lost) or restore it") from None


def write_evaluations(run_dir: Union[str, Path], rows: list[dict]) -> None:
    """Replace ``evaluations.csv`` with ``rows``, atomically."""
    import csv

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, EVAL_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    atomic_write(Path(run_dir) / EVALUATIONS_CSV, write)


def append_evaluations(run_dir: Union[str, Path], rows: list[dict]) -> None:
    """Add the rows of one evaluation (the file is rewritten atomically: it stays small)."""
    write_evaluations(run_dir, read_evaluations(run_dir) + rows)


def truncate_evaluations(run_dir: Union[str, Path], step: int) -> None:
    """Keep the rows at or before ``step`` (a resumed run redoes the later ones)."""
    rows = read_evaluations(run_dir)
    kept = [r for r in rows if r["step"] <= step]
    if len(kept) != len(rows):
        write_evaluations(run_dir, kept)


# ------------------------------------------------------------------------- run summary
@dataclasses.dataclass
class RunSummary:
    """``train_summary.json`` of an SB3 learner's run, its one writer and reader: written
    when training ends (finished or diverged), read by resume, sweeps and reports.

    Attributes:
        timesteps: env steps trained.
        env: the env id.
        tags: the fields naming the model (``{"core": "rims"}``, ``{"encoder": ...}``),
            stored at the top level of the file.
        seconds: wall time of the training call that finished it.
        recent_episode_scores: the last finished episodes' returns (SB3's buffer).
        diverged: what diverged, when training stopped on non-finite values.
        last_finite_checkpoint: the newest checkpoint written before that.
    """

    timesteps: int
    env: str
    tags: dict = dataclasses.field(default_factory=dict)
    seconds: Optional[float] = None
    recent_episode_scores: list = dataclasses.field(default_factory=list)
    diverged: Optional[str] = None
    last_finite_checkpoint: Optional[str] = None

    @property
    def mean_recent_score(self) -> float:
        scores = self.recent_episode_scores
        return sum(scores) / len(scores) if scores else float("nan")

    def write(self, run_dir: Union[str, Path]) -> None:
        data = {"timesteps": self.timesteps, "env": self.env, **self.tags}
        if self.diverged is None:
            data.update(seconds=self.seconds, recent_episode_scores=self.recent_episode_scores)
        else:
            data.update(diverged=self.diverged,
                        last_finite_checkpoint=self.last_finite_checkpoint)
        write_json(Path(run_dir) / SUMMARY_FILE, data)

    @classmethod
    def read(cls, run_dir: Union[str, Path]) -> Optional["RunSummary"]:
        """The run's summary; ``None`` when it has none (training has not ended); a
        one-line error naming the file when it is corrupt."""
        path = Path(run_dir) / SUMMARY_FILE
        if not os.path.lexists(path):
            return None
        try:
            data = json.loads(read_run_text(path))
            if not isinstance(data, dict):
                raise ValueError("not an object")
            for key, check in _SUMMARY_CHECKS.items():
                if key in data and not check(data[key]):
                    raise ValueError(f"bad {key}")
            known = {f.name for f in dataclasses.fields(cls)} - {"tags"}
            return cls(tags={k: v for k, v in data.items() if k not in known},
                       **{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError, UnicodeDecodeError):
            raise UserError(f"{path} is corrupt; delete it to resume the run from its newest "
                            "checkpoint") from None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: what each field of ``train_summary.json`` must hold (``timesteps`` and ``env`` always)
_SUMMARY_CHECKS = {
    "timesteps": lambda v: type(v) is int and v >= 0,
    "env": lambda v: isinstance(v, str),
    "seconds": lambda v: v is None or (_number(v) and v >= 0),
    "recent_episode_scores": lambda v: isinstance(v, list) and all(map(_number, v)),
    "diverged": lambda v: v is None or isinstance(v, str),
    "last_finite_checkpoint": lambda v: v is None or isinstance(v, str),
}
