"""rimrl: train (ppo, iqn, copy, supervised), evaluate, compare and sweep RL runs.

Heavy modules (torch, agents, envs) are imported inside the command that needs them, so
``rimrl --help`` answers at once. Every user mistake ends as one line on stderr and exit
code 2 (see :class:`rimrl.errors.UserError`); nothing of an existing run is overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from rimrl import learners
from rimrl.cli import compare, evaluate, sweep
from rimrl.cli.common import add_train_command
from rimrl.errors import EXIT_OS_ERROR, NothingToDo, UserError, describe_os_error, one_line


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rimrl", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model; writes a run directory")
    tasks = train.add_subparsers(dest="task", required=True, parser_class=_Parser)
    for learner in learners.all_learners():
        add_train_command(tasks, learner)

    evaluate.register(commands)
    compare.register(commands)
    sweep.register(commands, execute=main)
    return parser


def _version() -> str:
    from rimrl import __version__
    return f"rimrl {__version__}"


def main(argv: Optional[list[str]] = None) -> int:
    # torch.compile's worker pool would share the terminal's Ctrl-C and can leave this
    # process waiting on workers that died; on a few CPU cores it buys little, so compile
    # in-process unless the user chose otherwise (read when torch is imported, below).
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"rimrl: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except NothingToDo as exc:
        print(f"rimrl: {exc}")
        return 0
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stderr.close()
        return 0
    except OSError as exc:  # disk full, read-only, permission, path too long: not a bug
        print(f"rimrl: error: {one_line(describe_os_error(exc))}", file=sys.stderr)
        return EXIT_OS_ERROR
    except KeyboardInterrupt:
        print("rimrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
