"""What a command asks of a learner, as typed requests.

The CLI builds a :class:`TrainRequest` or :class:`EvalRequest` from its flags and hands it to
the registered learner; learners read fields, never parsed flags. A learner declares its own
``rimrl evaluate`` options as a frozen dataclass whose fields are made with :func:`option`
(:class:`PolicyEvalOptions` for the SB3-based learners); the CLI turns every learner's fields
into flags, labels each flag with the learners that read it, and refuses a flag the run's
learner does not declare. Each request checks itself when built, so a learner receives only
requests that make sense.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from rimrl.config import require_episodes, require_seed
from rimrl.errors import UserError


@dataclass(frozen=True)
class TrainRequest:
    """``rimrl train NAME``.

    Args:
        overrides: ``KEY=VALUE`` config overrides: ``--set`` first, then the learner's flags
            (so a flag wins).
        config_file: an extra YAML file merged over the defaults (``--config``).
        run_dir: the exact directory of a new run (``--run-dir``); ``None``: a new
            ``RUNS_DIR/<name>-<time>``.
        resume: the run to continue from its last checkpoint (``--resume``). A resumed run
            keeps its saved config and folder, so ``config_file`` and ``run_dir`` must be
            ``None`` (refused, not ignored).
        trust: load model files whose checksum differs from the recorded one (``--trust``).
        no_progress: hide the progress bar; ``quiet``: no bar and no progress lines.
    """

    overrides: tuple[str, ...] = ()
    config_file: Optional[Path] = None
    run_dir: Optional[Path] = None
    resume: Optional[Path] = None
    trust: bool = False
    no_progress: bool = False
    quiet: bool = False

    def __post_init__(self):
        if self.resume is None:
            return
        unused = [flag for flag, value in (("--config", self.config_file),
                                           ("--run-dir", self.run_dir)) if value is not None]
        if unused:
            raise UserError(f"--resume continues {self.resume} with its own saved config in "
                            f"its own folder, so {' and '.join(unused)} would be ignored; "
                            f"drop {'them' if len(unused) > 1 else 'it'}")


@dataclass(frozen=True)
class EvalRequest:
    """``rimrl evaluate RUN_DIR``.

    Args:
        run_dir: the run to evaluate (an rimrl run directory, checked by the CLI).
        options: the learner's own options (an instance of its ``eval_options`` class).
        trust, no_progress, quiet: as in :class:`TrainRequest`.
    """

    run_dir: Path
    options: Any = None
    trust: bool = False
    no_progress: bool = False
    quiet: bool = False


def option(default, help: str, *, kind: Optional[type] = None, many: bool = False,
           choices: Optional[tuple] = None, metavar: Optional[str] = None):
    """A field of a learner's evaluate options, and the ``--NAME`` flag that sets it.

    Args:
        default: the value when the flag is not given (``False`` for a switch).
        help: the flag's help, without the learner label (the CLI adds it).
        kind: the type of one value (default: ``type(default)``; required when the default
            is ``None``); ``bool``: a switch.
        many: the flag takes one or more values (a tuple).
        choices: the values allowed.
        metavar: the value's name in ``--help``.
    """
    kind = kind or type(default)
    return field(default=default,
                 metadata={"help": help, "kind": kind, "many": many, "choices": choices,
                           "metavar": metavar})


def option_fields(options_class: Optional[type]) -> dict:
    """``{name: dataclasses.Field}`` of a learner's evaluate options (empty for ``None``)."""
    return {f.name: f for f in fields(options_class)} if options_class is not None else {}


@dataclass(frozen=True)
class PolicyEvalOptions:
    """``rimrl evaluate`` options of the SB3-based learners (PPO, IQN): full episodes with the
    run's final (or latest) model, optionally per distractor split, with video."""

    episodes: int = option(10, "episodes to play (per split or probe row)")
    deterministic: bool = option(False, "greedy actions instead of sampling")
    video: bool = option(False, "save the first episode as a GIF in videos/ (one per split "
                         "with --distractors)")
    seed: Optional[int] = option(None, "seed of the evaluation envs (default: the run's "
                                 "seed + 10000)", kind=int)
    distractors: Optional[tuple[str, ...]] = option(
        None, "evaluate per distractor split (names, or 'all')", kind=str, many=True,
        metavar="SPLIT")

    def __post_init__(self):
        require_episodes("--episodes", self.episodes)
        if self.seed is not None:
            require_seed("--seed", self.seed)
