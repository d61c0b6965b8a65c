"""The registry of learners: the one list of what ``rimrl`` can train.

Each entry names a module of this package that defines ``LEARNER``, a
:class:`rimrl.learners.base.Learner` owning everything rimrl knows about that learner: its
config class and defaults file, the env-family rules, validation, model build and load,
training, evaluation, whether it can be swept and how reports group its runs. The CLI,
``rimrl sweep``, ``rimrl evaluate`` and ``rimrl compare`` all read from here; adding a learner
is one module and one line below (see ``docs/adding-a-learner.md``).

Modules are imported on first use, so listing names costs nothing and ``rimrl --help`` stays
instant; heavy imports (torch, SB3, envs) happen inside the learners' methods.
"""

from __future__ import annotations

import importlib

from rimrl.errors import UserError, unknown_name

#: learner name -> module defining ``LEARNER``
REGISTRY = {
    "ppo": "rimrl.learners.ppo",
    "iqn": "rimrl.learners.iqn",
    "copy": "rimrl.learners.copy",
    "supervised": "rimrl.learners.supervised",
}


def names() -> list[str]:
    """Every registered learner name, in registry order."""
    return list(REGISTRY)


def get(name: str):
    """The :class:`~rimrl.learners.base.Learner` registered as ``name``; a one-line error
    with the closest names for anything else."""
    if name not in REGISTRY:
        raise UserError(unknown_name("learner", name, names()))
    return importlib.import_module(REGISTRY[name]).LEARNER


def all_learners() -> list:
    """Every registered learner (imports each module; still no torch)."""
    return [get(name) for name in REGISTRY]
