"""``--track``: a run sent to Weights & Biases, as CleanRL and RL Zoo do it: the resolved
config, TensorBoard's scalars synced as they are written, one W&B run per run directory
(a resumed run continues it). Without credentials (``WANDB_API_KEY`` or a ``wandb login``)
it runs offline and says where the offline run is and how to upload it; ``WANDB_MODE``
chooses explicitly. An optional extra: ``pip install -e ".[track]"``."""

from __future__ import annotations

import hashlib
import importlib.util
import netrc
import os
import re
from pathlib import Path
from typing import Optional

from rimrl.errors import UserError

WANDB_HOST = "api.wandb.ai"


#: the values of ``WANDB_MODE`` that W&B accepts (online, offline and disabled are the
#: documented ones; the others are its aliases)
MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")
ONLINE_MODES = ("online", "shared", "run")
#: characters W&B refuses in a project name (it also caps the length at 128)
_BAD_PROJECT = re.compile(r"[/\\#?%:\s]")


def check_tracking(project: str) -> None:
    """One-line errors, before anything is created: W&B not installed, a ``WANDB_MODE`` W&B
    does not know, a project name it refuses, online mode without a login."""
    if importlib.util.find_spec("wandb") is None:
        raise UserError("--track needs Weights & Biases: pip install -e \".[track]\" (or pip "
                        "install wandb), or train without --track")
    mode = tracking_mode()
    if mode not in MODES:
        raise UserError(f"WANDB_MODE={mode!r} is not a W&B mode; use online, offline or "
                        "disabled (or unset it: online with a login, offline without)")
    if not project or len(project) > 128 or _BAD_PROJECT.search(project):
        raise UserError(f"train.wandb_project {project!r} is not a W&B project name: 1 to 128 "
                        "characters, no spaces and none of / \\ # ? % :")
    if mode in ONLINE_MODES and not has_login():
        raise UserError(f"WANDB_MODE={mode} needs a W&B login: set WANDB_API_KEY or run wandb "
                        "login, or set WANDB_MODE=offline")


def has_login() -> bool:
    """Whether W&B credentials are at hand (``WANDB_API_KEY`` or a ``wandb login``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def tracking_mode() -> str:
    """``WANDB_MODE`` when set; else ``online`` with credentials, ``offline`` without (so a
    machine without a login or network never waits on a prompt)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if has_login() else "offline"


class Tracker:
    """One run's W&B session: :meth:`start` before the TensorBoard writer exists (so its
    scalars are synced), :meth:`finish` at the end, which prints where the run went."""

    def __init__(self, run_dir: Path, config: dict, project: str, group: Optional[str]):
        self.run_dir = Path(run_dir)
        self.config = config
        self.project = project
        self.group = group
        self.run = None

    def start(self) -> None:
        """Open the W&B run; a one-line error when W&B refuses (checked again here: a resume
        meets the environment of its own day)."""
        check_tracking(self.project)
        import wandb

        # the same id for every process that trains this run directory: a resume continues
        run_id = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:16]
        try:
            self.run = wandb.init(project=self.project, name=self.run_dir.name, id=run_id,
                                  resume="allow", group=self.group, config=self.config,
                                  dir=str(self.run_dir), sync_tensorboard=True,
                                  mode=tracking_mode(), settings=wandb.Settings(silent=True))
        except Exception as exc:  # network, authentication and settings errors of many types
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise UserError(f"W&B could not start the run ({type(exc).__name__}: {first}); "
                            "train without --track or set WANDB_MODE=offline") from None

    def finish(self) -> None:
        if self.run is None:
            return
        import wandb

        mode = tracking_mode()
        where = getattr(self.run.settings, "sync_dir", None)
        offline = mode in ("offline", "dryrun")
        url = self.run.get_url() if mode in ONLINE_MODES else None
        wandb.finish()
        # sync_tensorboard patched TensorBoard's writer for the whole process; a later run in
        # it (a sweep's worker, tests) would otherwise meet W&B's warnings
        wandb.tensorboard.unpatch()
        self.run = None
        if mode == "disabled":
            print("W&B: disabled (WANDB_MODE=disabled): nothing was recorded", flush=True)
        elif offline:
            print(f"W&B: offline run in {where}; upload it with: wandb sync {where}", flush=True)
        elif url:
            print(f"W&B: {url}", flush=True)
