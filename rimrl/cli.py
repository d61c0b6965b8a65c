"""The ``rimrl`` command line: ``train <task>``, ``evaluate``.

Heavy modules (torch, agents, envs) are imported inside the command that needs them, so
``rimrl --help`` answers at once. Every user mistake ends as one line on stderr and exit
code 2 (see :class:`rimrl.errors.UserError`); nothing of an existing run is overwritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Optional

from rimrl.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_common_train_args(p: argparse.ArgumentParser, budget_flags: list[str]) -> None:
    p.add_argument("--config", type=Path, help="extra YAML file merged over the defaults")
    p.add_argument("-s", "--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override any config key, e.g. train.lr=3e-4")
    p.add_argument("--seed", type=int, help="random seed (config key: seed)")
    p.add_argument("--runs-dir", help="where run directories are created (default: runs/)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    for flag in budget_flags:
        p.add_argument(f"--{flag}", type=int, help=f"training budget in {flag}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rimrl", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model; writes a run directory")
    tasks = train.add_subparsers(dest="task", required=True, parser_class=_Parser)
    copy = tasks.add_parser("copy", help="the copying task of thesis section 8.4.1")
    copy.add_argument("--core", help="recurrent core: lstm, gru or rims")
    _add_common_train_args(copy, ["updates", "timesteps"])
    copy.set_defaults(handler=_train_copy)

    evaluate = commands.add_parser("evaluate", help="evaluate a trained run")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--gaps", type=int, nargs="+", help="copying task: gaps to test")
    evaluate.set_defaults(handler=_evaluate)
    return parser


def _version() -> str:
    from rimrl import __version__
    return f"rimrl {__version__}"


# ------------------------------------------------------------------------------- train copy
COPY_FLAGS = {"core": "core.name", "seed": "seed", "updates": "train.updates",
              "timesteps": "train.timesteps", "runs_dir": "runs_dir", "device": "device"}


def flag_overrides(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    """Command-line flags as ``key=value`` overrides (applied after ``--set``)."""
    out = []
    for dest, key in flags.items():
        value = getattr(args, dest, None)
        if value is not None:
            out.append(f"{key}={json.dumps(value) if not isinstance(value, str) else value}")
    return list(args.overrides) + out


def prepare_run(args, config_cls, defaults_file: str, kind: str,
                name: Callable[[object], str], flags: dict[str, str],
                resume_flags: tuple[str, ...] = ()):
    """Resolve the config and the run directory; load the checkpoint when resuming.

    Returns (config, run_dir, checkpoint path or None). Everything is validated before a
    directory is created, so bad input leaves nothing behind.
    """
    from rimrl.config import config_dir, load_config, save_config
    from rimrl.runs import latest_checkpoint, new_run_dir, require_run_dir

    if args.resume is not None:
        run_dir = require_run_dir(args.resume)
        meta = _read_meta(run_dir)
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
        save_config(config, run_dir / "config.yaml")
        return config, run_dir, latest_checkpoint(run_dir)

    files = [config_dir() / defaults_file] + ([args.config] if args.config else [])
    config = load_config(config_cls, files, flag_overrides(args, flags))
    run_dir = new_run_dir(config.runs_dir, name(config))
    save_config(config, run_dir / "config.yaml")
    (run_dir / "run.json").write_text(json.dumps({"kind": kind, "argv": sys.argv[1:]}) + "\n")
    return config, run_dir, None


def _read_meta(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{run_dir} has no readable run.json; was it made by rimrl train?") \
            from None


def _train_copy(args) -> int:
    from rimrl.runs import load_checkpoint
    from rimrl.tasks.copying import CopyConfig, train_copy

    config, run_dir, ckpt = prepare_run(
        args, CopyConfig, "copy.yaml", "copy",
        name=lambda c: f"copy-{c.core.name}-s{c.seed}", flags=COPY_FLAGS,
        resume_flags=("updates", "timesteps"),
    )
    state = load_checkpoint(ckpt) if ckpt is not None else None
    print(f"run directory: {run_dir}")
    summary = train_copy(config, run_dir, state, progress=not args.no_progress)
    _print_copy(summary)
    return 0


def _print_copy(summary: dict) -> None:
    print(f"copying task, core {summary['core']}, {summary['updates']} updates")
    print(f"{'gap':>6} {'CE (nats/step)':>15} {'accuracy':>9}")
    for gap, m in summary["gaps"].items():
        print(f"{gap:>6} {m['ce']:>15.4f} {m['accuracy']:>9.3f}")


# --------------------------------------------------------------------------------- evaluate
def _evaluate(args) -> int:
    from rimrl.runs import require_run_dir

    run_dir = require_run_dir(args.run_dir)
    kind = _read_meta(run_dir).get("kind")
    handlers = {"copy": _evaluate_copy}
    if kind not in handlers:
        raise UserError(f"cannot evaluate a '{kind}' run")
    return handlers[kind](args, run_dir)


def _evaluate_copy(args, run_dir: Path) -> int:
    import torch

    from rimrl.config import load_config
    from rimrl.runs import latest_checkpoint, load_checkpoint, write_json
    from rimrl.tasks.copying import CopyConfig, CopyModel, evaluate_copy

    config = load_config(CopyConfig, [run_dir / "config.yaml"])
    model = CopyModel(config.task, config.core)
    final = run_dir / "model.pt"
    if final.is_file():
        state = load_checkpoint(final)
    else:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(f"{run_dir} has no model.pt and no checkpoint to evaluate")
        state = load_checkpoint(ckpt)["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise UserError(f"the weights in {run_dir} do not fit its config.yaml "
                        f"({str(exc).splitlines()[0]})") from None
    gaps = args.gaps or config.task.eval_gaps
    if min(gaps) < 1:
        raise UserError(f"--gaps must be positive, got {gaps}")
    results = evaluate_copy(model, config.task, gaps, config.train.eval_batch, config.seed,
                            torch.device("cpu"))
    summary = {"core": config.core.name, "updates": config.total_updates(), "gaps": results}
    write_json(run_dir / "evaluation.json", summary)
    _print_copy(summary)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"rimrl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rimrl: interrupted; resume with --resume RUN_DIR", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
