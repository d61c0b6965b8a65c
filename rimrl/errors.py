"""The one exception type that the CLI turns into a one-line message and exit code 2, and the
one "did you mean" helper its messages use."""

from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """Bad input from the user: an unknown name, a bad number, a missing file.

    The message says what is wrong and how to fix it, in one line.
    """


class NothingToDo(Exception):
    """A request that is already fulfilled, e.g. ``--resume`` of a run at its budget: the CLI
    prints the message (one line) and exits 0; nothing has been written."""


def closest(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.5) -> list[str]:
    """The ``n`` valid names nearest to a mistyped ``word`` (best first; maybe none)."""
    return difflib.get_close_matches(str(word), list(choices), n=n, cutoff=cutoff)


def unknown_name(kind: str, name: str, choices) -> str:
    """One line: the unknown name, the nearest valid one and all valid ones."""
    near = closest(name, choices, cutoff=0.4)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown {kind} '{name}'; {hint}choose one of: {', '.join(sorted(choices))}"
