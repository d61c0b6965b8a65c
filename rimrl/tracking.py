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
from pathlib import Path
from typing import Optional

from rimrl.errors import UserError

WANDB_HOST = "api.wandb.ai"


def check_tracking_available() -> None:
    """A one-line error, before anything is created, when W&B is not installed."""
    if importlib.util.find_spec("wandb") is None:
        raise UserError("--track needs Weights & Biases: pip install -e \".[track]\" (or pip "
                        "install wandb), or train without --track")


def tracking_mode() -> str:
    """``WANDB_MODE`` when set; else ``online`` with credentials, ``offline`` without (so a
    machine without a login or network never waits on a prompt)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        found = netrc.netrc().authenticators(WANDB_HOST)
    except (OSError, netrc.NetrcParseError):
        found = None
    return "online" if found else "offline"


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
        import wandb

        mode = tracking_mode()
        # the same id for every process that trains this run directory: a resume continues
        run_id = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(project=self.project, name=self.run_dir.name, id=run_id,
                              resume="allow", group=self.group, config=self.config,
                              dir=str(self.run_dir), sync_tensorboard=True, mode=mode,
                              settings=wandb.Settings(silent=True))

    def finish(self) -> None:
        if self.run is None:
            return
        import wandb

        where = getattr(self.run.settings, "sync_dir", None)
        offline = self.run.settings.mode == "offline"
        url = None if offline else self.run.get_url()
        wandb.finish()
        self.run = None
        if offline:
            print(f"W&B: offline run in {where}; upload it with: wandb sync {where}", flush=True)
        elif url:
            print(f"W&B: {url}", flush=True)
