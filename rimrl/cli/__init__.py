"""rimrl: train (ppo, iqn, copy, supervised), evaluate, compare and sweep RL runs.

Heavy modules (torch, agents, envs) are imported inside the command that needs them, so
``rimrl --help`` answers at once. Every user mistake ends as one line on stderr and exit
code 2 (see :class:`rimrl.errors.UserError`); nothing of an existing run is overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from rimrl import learners
from rimrl.cli import compare, sweep
from rimrl.cli.common import add_progress_args, add_train_command, add_trust_arg
from rimrl.errors import NothingToDo, UserError
from rimrl.learners.probes import PROBES


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

    evaluate = commands.add_parser("evaluate", help="evaluate a trained run")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=int, default=10,
                          help="PPO and IQN runs: episodes to play (per split or probe row)")
    evaluate.add_argument("--deterministic", action="store_true",
                          help="PPO and IQN runs: greedy actions instead of sampling")
    evaluate.add_argument("--video", action="store_true",
                          help="PPO and IQN runs: save the first episode as a GIF in videos/ "
                          "(one per split with --distractors)")
    evaluate.add_argument("--seed", type=int,
                          help="PPO and IQN runs: seed of the evaluation envs")
    evaluate.add_argument("--distractors", nargs="+", metavar="SPLIT",
                          help="PPO and IQN runs: evaluate per distractor split (names, or "
                          "'all')")
    evaluate.add_argument("--probe", choices=PROBES,
                          help="PPO runs: reset the state before every step (memoryless) or zero "
                          "each RIM's state in turn (ablate-rims), beside the normal policy")
    evaluate.add_argument("--gaps", type=int, nargs="+", help="copying task: gaps to test")
    add_progress_args(evaluate)
    add_trust_arg(evaluate)
    evaluate.set_defaults(handler=_evaluate)
    compare.register(commands)
    sweep.register(commands)
    return parser


def _version() -> str:
    from rimrl import __version__
    return f"rimrl {__version__}"


def _evaluate(args) -> int:
    from rimrl.runs import read_meta, require_run_dir

    run_dir = require_run_dir(args.run_dir)
    kind = read_meta(run_dir).get("kind")
    if kind not in learners.names():
        raise UserError(f"cannot evaluate a '{kind}' run: no such learner")
    return learners.get(kind).evaluate(args, run_dir)


def main(argv: Optional[list[str]] = None) -> int:
    # torch.compile's worker pool would share the terminal's Ctrl-C and can leave this
    # process waiting on workers that died; on a few CPU cores it buys little, so compile
    # in-process unless the user chose otherwise (read when torch is imported, below).
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"rimrl: error: {exc}", file=sys.stderr)
        return 2
    except NothingToDo as exc:
        print(f"rimrl: {exc}")
        return 0
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("rimrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
