"""Flags shared by the ``train`` and ``evaluate`` commands, and flags turned into config
overrides."""

from __future__ import annotations

import argparse
from pathlib import Path



#: flags every ``train`` command has, and the config keys they set
COMMON_FLAGS = {"seed": "seed", "runs_dir": "runs_dir", "device": "device", "threads": "threads"}


def add_train_command(tasks, learner) -> None:
    """``rimrl train NAME`` for a registered learner: its own flags, then every learner's."""
    p = tasks.add_parser(learner.name, help=learner.summary)
    for flag in learner.flags:
        name = "--" + flag.name.replace("_", "-")
        if flag.type is bool:  # a switch: present sets the key to true
            p.add_argument(name, action="store_const", const=True, help=flag.help)
        else:
            p.add_argument(name, type=flag.type, help=flag.help)
    p.add_argument("--config", type=Path, help="extra YAML file merged over the defaults")
    p.add_argument("-s", "--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE",
                   help=f"override any config key, e.g. {learner.set_example}")
    p.add_argument("--seed", type=int, help="random seed (config key: seed)")
    p.add_argument("--runs-dir", help="where run directories are created (default: runs/)")
    p.add_argument("--run-dir", type=Path, metavar="RUN_DIR",
                   help="the exact run directory to use (must not hold a run yet); "
                        "default: a new RUNS_DIR/<name>-<time>")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads (config key: threads; 0 = one per core); 1 holds "
                        "up best on a busy machine; may change on --resume")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (every default, the env family's "
                        "changes, --config, --set and flags) and exit; writes nothing")
    add_trust_arg(p)
    add_progress_args(p)
    flags = {**{f.name: f.key for f in learner.flags}, **COMMON_FLAGS}
    p.set_defaults(handler=_train_handler(learner.name, flags))


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


def flag_overrides(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    """``--set`` values followed by command-line flags written as ``key=value`` overrides."""
    from rimrl.config import override_text

    out = []
    for dest, key in flags.items():
        value = getattr(args, dest, None)
        if value is not None:  # a string flag as typed; numbers through the one YAML parser
            out.append(f"{key}={value}" if isinstance(value, str) else override_text(key, value))
    return list(args.overrides) + out


def _train_handler(learner: str, flags: dict[str, str]):
    """Flags become config overrides after the ``--set`` ones (so a flag wins); the
    registered learner does the rest."""
    def handler(args: argparse.Namespace) -> int:
        from rimrl.learners import get

        from rimrl.errors import UserError
        from rimrl.learners.requests import TrainRequest

        overrides = flag_overrides(args, flags)
        if args.print_config:
            from rimrl.config import config_text

            if args.resume is not None:
                from rimrl.runs import CONFIG_FILE
                raise UserError(f"--print-config shows a new run's config; a run's own is in "
                                f"{args.resume / CONFIG_FILE}")
            print(config_text(get(learner).load_config(overrides, args.config)), end="")
            return 0
        return get(learner).train(TrainRequest(
            tuple(overrides), config_file=args.config, run_dir=args.run_dir,
            resume=args.resume, trust=args.trust, no_progress=args.no_progress,
            quiet=args.quiet))
    return handler
