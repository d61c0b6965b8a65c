"""The exceptions the CLI turns into one line and an exit code (bad input: 2; the operating
system refusing a file: :data:`EXIT_OS_ERROR`), and the "did you mean" helper."""

from __future__ import annotations

import difflib
import errno
from typing import Iterable

#: exit code of a command stopped by the operating system (disk full, permission, read-only
#: file system, path too long): sysexits' EX_IOERR, so scripts can tell it from bad input
EXIT_OS_ERROR = 74

# what to do, per errno; the message names the file and this advice
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full; free space (or choose another --runs-dir), then run "
                  "the command again (--resume continues a run from its last checkpoint)",
    errno.EDQUOT: "the disk quota is used up; free space, then run the command again",
    errno.EROFS: "the file system is read-only; choose a writable folder (--runs-dir, "
                 "--run-dir) or copy the run somewhere writable",
    errno.EACCES: "permission denied; choose a folder you can write, or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you can write",
    errno.ENAMETOOLONG: "the path is too long for the file system; choose a shorter "
                        "--runs-dir or --run-dir",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or use fewer envs",
}


class UserError(Exception):
    """Bad input from the user: an unknown name, a bad number, a missing file.

    The message says what is wrong and how to fix it, in one line.
    """


class NothingToDo(Exception):
    """A request that is already fulfilled, e.g. ``--resume`` of a run at its budget: the CLI
    prints the message (one line) and exits 0; nothing has been written."""


def one_line(text: str) -> str:
    """``text`` as one printable line: line breaks and other control characters (a value
    the user typed may hold them) are shown escaped, so an error message can never print a
    second line that reads like something else."""
    import unicodedata

    return "".join(ch.encode("unicode_escape").decode() if unicodedata.category(ch)[0] in "CZ"
                   and ch != " " else ch for ch in text)


def describe_os_error(exc: OSError, limit: int = 160) -> str:
    """One line for an OS error: what failed, on which file (shortened to ``limit``
    characters), and what to do."""
    name = exc.filename if exc.filename is not None else ""
    name = str(name)
    if len(name) > limit:
        name = name[:limit // 2] + "..." + name[-limit // 2:]
    what = exc.strerror or type(exc).__name__
    advice = _OS_ADVICE.get(exc.errno, "check the file and the disk, then run the command again")
    return f"{what}: {name or '(no file named)'}: {advice}"


def closest(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.5) -> list[str]:
    """The ``n`` valid names nearest to a mistyped ``word`` (best first; maybe none)."""
    return difflib.get_close_matches(str(word), list(choices), n=n, cutoff=cutoff)


def unknown_name(kind: str, name: str, choices) -> str:
    """One line: the unknown name, the nearest valid one and all valid ones."""
    near = closest(name, choices, cutoff=0.4)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown {kind} '{name}'; {hint}choose one of: {', '.join(sorted(choices))}"
