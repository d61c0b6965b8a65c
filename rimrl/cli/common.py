"""Pieces shared by the ``train`` and ``evaluate`` commands: flags, run setup, run metadata."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from rimrl.errors import UserError


def add_common_train_args(p: argparse.ArgumentParser, budget_flags: list[str],
                          set_example: str) -> None:
    """Flags every ``train`` command takes; ``set_example`` is a valid ``--set`` of that
    command, shown in its help (tests check that the command accepts it)."""
    p.add_argument("--config", type=Path, help="extra YAML file merged over the defaults")
    p.add_argument("-s", "--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help=f"override any config key, e.g. {set_example}")
    p.add_argument("--seed", type=int, help="random seed (config key: seed)")
    p.add_argument("--runs-dir", help="where run directories are created (default: runs/)")
    p.add_argument("--run-dir", type=Path, metavar="RUN_DIR",
                   help="the exact run directory to use (must not hold a run yet); "
                        "default: a new RUNS_DIR/<name>-<time>")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    add_trust_arg(p)
    add_progress_args(p)
    for flag in budget_flags:
        p.add_argument(f"--{flag}", type=int, help=f"training budget in {flag}")


def add_trust_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust", action="store_true",
                   help="load model files whose checksum differs from the one rimrl recorded "
                        "(only for run directories from a source you trust: SB3 models "
                        "embed pickles, which run code when loaded)")


def add_progress_args(p: argparse.ArgumentParser) -> None:
    """``--no-progress`` and ``--quiet``, the same for every long command."""
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no progress lines; errors and results only")


def shows_bar(args: argparse.Namespace) -> bool:
    """Whether a command draws progress bars (not with ``--no-progress`` or ``--quiet``)."""
    return not (getattr(args, "no_progress", False) or getattr(args, "quiet", False))


def flag_overrides(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    """``--set`` values followed by command-line flags written as ``key=value`` overrides."""
    from rimrl.config import override_text

    out = []
    for dest, key in flags.items():
        value = getattr(args, dest, None)
        if value is not None:  # a string flag as typed; numbers through the one YAML parser
            out.append(f"{key}={value}" if isinstance(value, str) else override_text(key, value))
    return list(args.overrides) + out


def prepare_run(args, config_cls, defaults_file: str, kind: str,
                name: Callable[[object], str], flags: dict[str, str],
                resume_flags: tuple[str, ...] = (), section: str | None = None,
                check: Callable[[object], None] | None = None):
    """Resolve the config and the run directory; find the checkpoint when resuming.

    Returns (config, run_dir, checkpoint path or None, lock): ``lock`` is the run's
    :class:`~rimrl.runs.RunLock`, already held; use it as ``with lock:`` around the training.
    Everything is validated before a directory is created or a file written, so bad input
    leaves nothing behind; a run another process is writing is refused. ``check(config)``:
    the learner's checks of a new run that need more than the config (env, memory).
    """
    from rimrl.config import config_dir, load_config, save_config
    from rimrl.runs import (RunLock, latest_checkpoint, new_run_dir, remove_torn_files,
                            require_run_dir)

    if args.resume is not None:
        run_dir = require_run_dir(args.resume)
        meta = read_meta(run_dir)
        if meta.get("kind") != kind:
            raise UserError(f"{run_dir} is a '{meta.get('kind')}' run, not a '{kind}' run")
        allowed = {flags[f] for f in resume_flags}
        overrides = flag_overrides(args, flags)
        for text in overrides:
            if text.split("=", 1)[0] not in allowed:
                raise UserError(
                    f"--resume continues a run with its saved config; '{text}' cannot change "
                    f"it (only the budget can: {', '.join('--' + f for f in resume_flags)})"
                )
        config = load_config(config_cls, [run_dir / "config.yaml"], overrides)
        lock = RunLock(run_dir).acquire()
        torn = remove_torn_files(run_dir)  # left by a kill during a checkpoint write
        if torn:
            print(f"removed {len(torn)} torn temporary file(s) of an interrupted write")
        return config, run_dir, latest_checkpoint(run_dir), lock

    files = [config_dir() / defaults_file] + ([args.config] if args.config else [])
    config = load_config(config_cls, files, flag_overrides(args, flags), section=section)
    if hasattr(config, "validate"):
        config.validate()
    if check is not None:
        check(config)
    if getattr(args, "run_dir", None) is not None:
        run_dir = Path(args.run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"--run-dir {run_dir} is a file, not a directory; choose another "
                            "--run-dir")
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(run_dir).acquire()
        if (run_dir / "run.json").exists():  # checked under the lock: no race
            lock.release()
            raise UserError(f"{run_dir} already holds a run; continue it with "
                            f"--resume {run_dir} or choose another --run-dir")
    else:
        run_dir = new_run_dir(config.runs_dir, name(config))  # atomic mkdir
        lock = RunLock(run_dir).acquire()
    save_config(config, run_dir / "config.yaml")
    (run_dir / "run.json").write_text(json.dumps({"kind": kind, "argv": sys.argv[1:]}) + "\n")
    return config, run_dir, None, lock


def read_meta(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{run_dir} has no readable run.json; was it made by rimrl train?") \
            from None


def requested_value(args, flag_value, key: str, defaults_file: str):
    """The value of config ``key`` the user asked for, before the config is loaded: the flag,
    else a ``--set key=...``, else the ``default`` section of ``defaults_file``. Used to pick
    the YAML section (env family, dataset) that the full config is then loaded with."""
    if flag_value:
        return flag_value
    from rimrl.config import parse_override

    for text in args.overrides:
        if text.split("=", 1)[0].replace("-", "_") == key:
            return parse_override(text)[1]  # YAML, as the config will read it
    from rimrl.config import config_dir, read_yaml
    node = read_yaml(config_dir() / defaults_file).get("default", {})
    for part in key.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if node != {} else None
