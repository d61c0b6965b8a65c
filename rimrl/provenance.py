"""What code made a run: rimrl's version and git commit, the libraries' versions, the device
and threads. ``run.json`` holds it (``provenance``); ``rimrl compare`` warns when the runs of
one group differ in any of it (:func:`differences`)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Optional

#: distributions whose versions change what a run computes
PACKAGES = ("torch", "numpy", "stable-baselines3", "sb3-contrib", "gymnasium", "ale-py",
            "minigrid")
#: provenance fields that say nothing about the code (differences are expected)
NOT_CODE = ("device", "threads")


def provenance(device: str, threads: int) -> dict:
    """rimrl's version and, when it runs from a git checkout, the commit and whether the
    work tree differs from it (``dirty``); Python's and each of :data:`PACKAGES`' versions;
    the torch device and CPU threads."""
    import torch

    from rimrl import __version__

    record = {"rimrl": __version__, **git_state(Path(__file__).resolve().parents[1]),
              "python": platform.python_version()}
    for name in PACKAGES:
        try:
            record[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            record[name] = None
    record["device"] = device
    record["threads"] = threads or torch.get_num_threads()
    return record


def git_state(folder: Path) -> dict:
    """``{"commit": sha, "dirty": bool}`` of the checkout holding ``folder``; empty when it is
    not one (an installed wheel) or git is missing."""
    def git(*args: str) -> Optional[str]:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    if not (folder / ".git").exists():
        return {}
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": bool(status and status.strip())}


def differences(records: list[dict]) -> dict[str, list]:
    """The code fields (all but :data:`NOT_CODE`) on which ``records`` disagree, with their
    distinct values; runs without a record (made before rimrl kept one) count as ``None``."""
    keys = sorted({k for r in records for k in r} - set(NOT_CODE))
    out = {}
    for key in keys:
        values = sorted({str(r.get(key)) for r in records})
        if len(values) > 1:
            out[key] = values
    return out
