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

from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from torch.utils.tensorboard import SummaryWriter

from rimrl.errors import UserError
from rimrl.runs import PROGRESS_CSV, STEP_COLUMN, atomic_write


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


def kept_rows(path: Path, resume_step: int) -> list[list[str]]:
    """The header and the rows of ``path`` logged at or before ``resume_step``."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or STEP_COLUMN not in rows[0]:
            return rows[:1]
        column = rows[0].index(STEP_COLUMN)
        return rows[:1] + [row for row in rows[1:]
                           if len(row) > column and row[column]
                           and float(row[column]) <= resume_step]
    except (UnicodeDecodeError, ValueError, csv.Error):
        raise UserError(f"{path} is corrupt; move it away to resume (the learning curve "
                        "before this point is then lost) or restore it") from None


class ResumableCSV(CSVOutputFormat):
    """SB3's CSV output, continuing an existing file on resume (see :func:`run_logger`)."""

    def __init__(self, filename: Path, resume_step: Optional[int]):
        filename = Path(filename)
        rows: list[list[str]] = []
        if resume_step is not None and filename.is_file():
            rows = kept_rows(filename, resume_step)

            def write(tmp: str) -> None:
                with open(tmp, "w", newline="") as handle:
                    csv.writer(handle, lineterminator="\n").writerows(rows)

            atomic_write(filename, write)  # a kill here leaves the old file, not half of it
        if not rows:
            super().__init__(str(filename))  # opens with "w+": a new run, a new file
            return
        # continue the kept rows with SB3's fields; "r+" rather than "a" because SB3
        # rewrites the header in place when a new key appears
        self.file = open(filename, "r+")
        self.file.seek(0, 2)
        self.keys = list(rows[0])
        self.separator = ","
        self.quotechar = '"'


class ResumableTensorBoard(TensorBoardOutputFormat):
    """SB3's TensorBoard output; on resume, events after the checkpoint are purged."""

    def __init__(self, folder: Path, resume_step: Optional[int]):
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge)
        self._is_closed = False
