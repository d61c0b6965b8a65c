"""Crash points: a test-only switch that kills the process at its N-th file write.

Every file rimrl writes into a run passes through one of two places, :func:`rimrl.runs.
atomic_write` (whole files, through a temporary file and a rename) and the rows appended to
``progress.csv`` (:mod:`rimrl.sb3.logs`). Each calls :func:`write_point` before it
changes anything on disk, and once more at the moment a kill does the most harm (a
temporary file written but not yet renamed; a row half appended). The crash test
(``tests/test_crash_consistency.py``) runs a tiny training once to count these points, then
once for every N with ``RIMRL_CRASH_AT_WRITE=N``, and checks that a resume makes each of
those runs whole, the way SQLite's crash tests enumerate every write of a transaction.

Environment variables (read once per process; absent in normal use, where this module does
nothing but count):
    RIMRL_CRASH_AT_WRITE: the 1-based write point at which the process sends itself SIGKILL.
    RIMRL_WRITE_LOG: a file to which each write point appends ``N<TAB>label<TAB>path``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Optional, Union

CRASH_VARIABLE = "RIMRL_CRASH_AT_WRITE"
LOG_VARIABLE = "RIMRL_WRITE_LOG"

_count = 0


def _crash_at() -> Optional[int]:
    text = os.environ.get(CRASH_VARIABLE)
    return int(text) if text else None


def write_point(label: str, path: Union[str, Path]) -> bool:
    """Count one write point; ``True`` when this is the one to crash at.

    The caller decides what is on disk at the crash: most call :func:`crash_if_due`,
    which dies at once; the row appender first writes half its row (a torn append)."""
    global _count
    _count += 1
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a") as handle:
            handle.write(f"{_count}\t{label}\t{path}\n")
    return _count == _crash_at()


def crash_if_due(label: str, path: Union[str, Path]) -> None:
    """:func:`write_point`, and SIGKILL now if it is the one."""
    if write_point(label, path):
        die()


def die() -> None:
    """End the process as a power cut or ``kill -9`` would: no cleanup, no flush."""
    os.kill(os.getpid(), signal.SIGKILL)
