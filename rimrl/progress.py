"""What long commands show while they work: a tqdm progress bar and progress lines.

Every long command (training, evaluation, compare, sweep) reports through these two helpers,
so ``--quiet`` and ``--no-progress`` mean the same everywhere. Bars are drawn on a terminal
only: in a log file (``nohup``, sweeps, CI) their carriage returns would be noise, and the
progress lines say the same. Lines go through ``tqdm.write`` so that they print above a
live bar instead of breaking it.
"""

from __future__ import annotations

import sys
from typing import Optional


def bar(total: Optional[int], desc: str, unit: str = "it", enabled: bool = True,
        initial: int = 0, smoothing: float = 0.3):
    """A tqdm bar on stderr (stdout stays clean for results), drawn when ``enabled`` and
    stderr is a terminal; otherwise a bar that draws nothing, so callers need no
    branches. ``smoothing``: tqdm's weight of the latest speed in its ETA (0: the average
    since the start, for work that comes in bursts)."""
    from tqdm import tqdm

    draw = enabled and sys.stderr.isatty()
    # follow the terminal's size; one that reports 0 x 0 (some ptys) would get no bar at
    # all from tqdm, so it gets 80 x 24
    sized = draw and _columns() > 0
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not draw,
                file=sys.stderr, dynamic_ncols=sized, ncols=None if sized else 80,
                nrows=None if sized else 24, smoothing=smoothing,
                leave=False, unit_scale=unit == "step")


def _columns() -> int:
    import os

    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


def say(text: str, enabled: bool = True) -> None:
    """Print one progress line on stdout, above any live bar."""
    if enabled:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)
        sys.stdout.flush()


def shows_bar(options) -> bool:
    """Whether a command draws progress bars (not with ``--no-progress`` or ``--quiet``)."""
    return not (getattr(options, "no_progress", False) or getattr(options, "quiet", False))


def format_score(value: float) -> str:
    """A score as the progress lines and summaries print it: one decimal from 10 up (game
    scores), else 3 significant digits, so success rates and returns in [0, 1] keep their
    differences (0.812, not 0.8)."""
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
