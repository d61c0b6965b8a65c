"""``rimrl evaluate RUN_DIR``: the flags come from every learner's declared evaluate options;
the run's learner receives an :class:`~rimrl.learners.requests.EvalRequest` with its own."""

from __future__ import annotations

import argparse
from dataclasses import Field
from pathlib import Path

from rimrl import learners
from rimrl.cli.common import add_progress_args, add_trust_arg
from rimrl.errors import UserError
from rimrl.learners.requests import EvalRequest, option_fields


def declared_options() -> dict[str, tuple[Field, list[str]]]:
    """``{option name: (its field, the learners that declare it)}`` over the registry."""
    declared: dict[str, tuple[Field, list[str]]] = {}
    for learner in learners.all_learners():
        for name, f in option_fields(learner.eval_options).items():
            declared.setdefault(name, (f, []))[1].append(learner.name)
    return declared


def register(commands) -> None:
    p = commands.add_parser("evaluate", help="evaluate a trained run")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    for name, (f, users) in declared_options().items():
        meta = f.metadata
        help_text = f"{', '.join(users)} runs: {meta['help']}"
        flag = "--" + name.replace("_", "-")
        if meta["kind"] is bool:
            p.add_argument(flag, dest=name, action="store_const", const=True, help=help_text)
        else:  # None when not given, so a flag the run's learner lacks is seen
            p.add_argument(flag, dest=name, type=meta["kind"], choices=meta["choices"],
                           nargs="+" if meta["many"] else None, metavar=meta["metavar"],
                           help=help_text)
    add_progress_args(p)
    add_trust_arg(p)
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from rimrl.runs import read_meta, require_run_dir

    run_dir = require_run_dir(args.run_dir)
    kind = read_meta(run_dir).get("kind")
    if kind not in learners.names():
        raise UserError(f"cannot evaluate a '{kind}' run: no such learner")
    learner = learners.get(kind)
    own = option_fields(learner.eval_options)
    given = {name: getattr(args, name) for name in declared_options()
             if getattr(args, name) is not None}
    foreign = [name for name in given if name not in own]
    if learner.eval_options is None:
        return learner.evaluate(EvalRequest(run_dir))  # says why it has no evaluation
    if foreign:
        flags = ", ".join("--" + n.replace("_", "-") for n in own) or "none"
        raise UserError(f"--{foreign[0].replace('_', '-')} does not apply to '{kind}' runs "
                        f"(their evaluate flags: {flags})")
    options = learner.eval_options(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in given.items()})
    return learner.evaluate(EvalRequest(run_dir, options, trust=args.trust,
                                        no_progress=args.no_progress, quiet=args.quiet))
