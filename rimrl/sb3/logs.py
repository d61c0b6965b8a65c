"""Run logs that survive a resume: ``tb/progress.csv`` and TensorBoard events keep the
history up to the checkpoint a run resumes from, and hold each logged step exactly once.

SB3's own CSV writer truncates ``progress.csv`` when it opens it, and its TensorBoard writer
would show the steps between the checkpoint and the crash twice; :func:`run_logger` builds
the same two outputs so that a resumed run continues the curve instead.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

from stable_baselines3.common.logger import (KVWriter, Logger, TensorBoardOutputFormat,
                                             filter_excluded_keys)
from torch.utils.tensorboard import SummaryWriter

from rimrl.errors import UserError
from rimrl.faults import die, write_point
from rimrl.runs import PROGRESS_CSV, STEP_COLUMN, atomic_write, read_run_lines, read_run_text


def run_logger(folder: Path, resume_step: Optional[int] = None) -> Logger:
    """An SB3 logger writing TensorBoard events and ``progress.csv`` to ``folder``.

    Args:
        folder: the run's ``tb/`` folder.
        resume_step: the step of the checkpoint a resumed run starts from (None for a new
            run): CSV rows and TensorBoard events logged after it are dropped, since the
            resumed run logs those steps again.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return Logger(str(folder), [ResumableCSV(folder / PROGRESS_CSV, resume_step),
                                ResumableTensorBoard(folder, resume_step)])


def kept_lines(path: Path, resume_step: int) -> list[str]:
    """The header and the lines of ``path`` logged at or before ``resume_step``, as written."""
    try:
        lines = whole_lines(path)
        if not lines:
            return []
        header = next(csv.reader(lines[:1]))
        if STEP_COLUMN not in header:
            return lines[:1]
        column = header.index(STEP_COLUMN)
        kept = lines[:1]
        for line in lines[1:]:
            row = next(csv.reader([line]), [])
            if len(row) > column and row[column] and float(row[column]) <= resume_step:
                kept.append(line)
        return kept
    except (OSError, UnicodeDecodeError, ValueError, csv.Error):
        raise UserError(f"{path} is corrupt; move it away to resume (the learning curve "
                        "before this point is then lost) or restore it") from None


def whole_lines(path: Path) -> list[str]:
    """The lines of ``path`` with their ends, as written; a torn last line is left out."""
    return [line for line in read_run_lines(path) if line.endswith("\n")]


def _write_lines(path: Path, lines: list[str]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            handle.write("".join(lines))

    atomic_write(path, write)  # a kill here leaves the old file, not half of it


class ResumableCSV(KVWriter):
    """``progress.csv``: SB3's CSV output, made crash-safe and resumable.

    A row is appended (a kill may tear it: a resume cuts it, :mod:`rimrl.commits`); a row
    with keys the file has not seen rewrites the whole file with the wider header, atomically
    (SB3 rewrites it in place). New keys are added in sorted order, so two processes write
    the same header. On resume the rows after ``resume_step`` are dropped and the file is
    continued, not truncated."""

    def __init__(self, filename: Path, resume_step: Optional[int]):
        self.path = Path(filename)
        self.keys: list[str] = []
        lines: list[str] = []
        if resume_step is not None and self.path.is_file():
            lines = kept_lines(self.path, resume_step)
            if "".join(lines) != read_run_text(self.path, newline=""):
                _write_lines(self.path, lines)
            if lines:
                self.keys = next(csv.reader(lines[:1]))
        if not lines:
            _write_lines(self.path, [])  # a new run, a new file
        self.file = open(self.path, "a", newline="")

    def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
        values = filter_excluded_keys(key_values, key_excluded, "csv")
        extra = sorted(values.keys() - set(self.keys))
        if extra:
            self.file.close()
            old = whole_lines(self.path)
            self.keys += extra
            _write_lines(self.path, [_line(self.keys)] + [
                line[:-1] + "," * len(extra) + "\n" for line in old[1:]])
            self.file = open(self.path, "a", newline="")
        row = _line([_cell(values.get(key)) for key in self.keys])
        if write_point("append", self.path):
            self.file.write(row[:len(row) // 2])  # a kill in the middle of the row
            self.file.flush()
            die()
        self.file.write(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _cell(value) -> str:
    """A value as SB3 writes it: strings quoted (quotes doubled), nothing for None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return str(value)


def _line(cells: list[str]) -> str:
    return ",".join(cells) + "\n"


class ResumableTensorBoard(TensorBoardOutputFormat):
    """SB3's TensorBoard output; on resume, events after the checkpoint are purged."""

    def __init__(self, folder: Path, resume_step: Optional[int]):
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge)
        self._is_closed = False


def log_scalars(logger: Logger, values: dict, step: int) -> None:
    """Write ``values`` to the logger's TensorBoard output at ``step`` now, outside the rows
    of ``progress.csv`` (which hold one row per logged iteration)."""
    for output in logger.output_formats:
        if isinstance(output, TensorBoardOutputFormat):
            for key, value in values.items():
                output.writer.add_scalar(key, value, step)
            output.writer.flush()
