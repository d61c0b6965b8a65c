"""What a learner is (:class:`Learner`; :class:`SB3Learner` for those whose model is a
Stable-Baselines3 algorithm) and the run setup every ``rimrl train`` shares."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rimrl.commits import Commit, recover
from rimrl.config import config_dir, load_config, read_yaml, save_config, to_dict
from rimrl.errors import NothingToDo, UserError
from rimrl.learners.requests import EvalRequest, TrainRequest
from rimrl.nn.rims_settings import VARIANTS
from rimrl.provenance import provenance
from rimrl.runs import (CONFIG_FILE, MODEL_ZIP, PRE_RUN_FILES, RunLock, RunSummary, is_temporary,
                        new_run_dir, read_meta, refuse_inside_a_run, remove_torn_files,
                        require_run_dir, verify_checksum, write_meta)
from rimrl.sb3.environments import family_section, make_env


@dataclass(frozen=True)
class Flag:
    """A ``rimrl train NAME`` flag that sets one config key: ``--NAME VALUE`` is read as
    ``--set KEY=VALUE`` (given after the ``--set`` ones, so it wins)."""

    name: str  # underscores; the flag spells them as dashes
    key: str
    help: str
    type: type = str


class Learner(ABC):
    """Everything rimrl knows about one learner, in one place.

    A learner module defines a subclass and one instance, ``LEARNER``, registered in
    :data:`rimrl.learners.REGISTRY`. The CLI only parses flags into config overrides and
    hands them to these methods; sweeps, evaluation and reports ask the same object.

    Attributes:
        name: the ``rimrl train NAME`` command and the ``kind`` in ``run.json``.
        summary: one line for ``--help``.
        defaults_file: the YAML file under ``configs/`` merged over the config class'
            defaults; it may hold family sections beside ``default``.
        budget_keys: config keys ``--resume`` may change (the training budget).
        group_key: the config key ``rimrl compare`` groups runs by (e.g. ``core.name``);
            ``None``: its runs are not compared.
        sweepable: whether a sweep file may name it as ``command``.
        flags: its own ``rimrl train`` flags (``--seed``, ``--runs-dir``, ``--device``,
            ``--set`` and the rest are every learner's).
        set_example: a ``--set`` the command accepts, shown in its help (tested).
        final_file: the file a finished run holds (its final model), named in
            :mod:`rimrl.runs`.
        eval_options: the frozen dataclass of its ``rimrl evaluate`` options, fields made
            with :func:`rimrl.learners.requests.option` (the CLI makes them flags);
            ``None``: its runs have no separate evaluation.
    """

    name: str = ""
    summary: str = ""
    defaults_file: str = ""
    budget_keys: tuple[str, ...] = ()
    group_key: Optional[str] = None
    sweepable: bool = False
    flags: tuple[Flag, ...] = ()
    set_example: str = "seed=1"
    eval_options: Optional[type] = None
    final_file: str = ""

    # --------------------------------------------------------------------------- config
    @abstractmethod
    def config_class(self) -> type:
        """The typed config dataclass (imported on demand), a subclass of
        :class:`rimrl.config.RunSettings` (seed, device, runs_dir, threads)."""

    def section(self, requested: dict) -> Optional[str]:
        """The family section of :attr:`defaults_file` for the values the user asked for
        (the files' ``default`` sections with the overrides applied); ``None``: none."""
        return None

    def load_config(self, overrides: list[str] = (), extra_file: Optional[Path] = None):
        """The config a new run would get: class defaults, then :attr:`defaults_file`
        (``default`` and the family section), then ``extra_file``, then ``overrides``;
        validated (:meth:`validate`)."""
        files = [config_dir() / self.defaults_file] + ([extra_file] if extra_file else [])
        config = load_config(self.config_class(), files, list(overrides), section=self.section,
                             presets=self.presets)
        self.validate(config)
        return config

    def presets(self, data: dict, explicit: dict) -> None:
        """Named presets of a new run's config, applied over the learner's defaults and
        under the user's own values (``explicit``): the RIMs ``variant`` a user names in the
        ``core`` section."""
        if isinstance(data.get("core"), dict):
            from rimrl.nn.cores import CoreConfig  # heavy
            user_core = explicit.get("core")
            data["core"] = CoreConfig.with_variant(
                data["core"], user_core if isinstance(user_core, dict) else {})

    def validate(self, config) -> None:
        """The rules a config must meet beyond its types, environment rules included;
        cheap (no env or network is built). Raises :class:`~rimrl.errors.UserError`."""
        if hasattr(config, "validate"):
            config.validate()

    def check(self, config) -> None:
        """Checks of a new run that need more than the config (build one env, an encoder,
        the memory a run will take); run before anything is written."""

    def finished(self, run_dir: Path) -> bool:
        """Training of the run reached the budget of its saved config: :attr:`final_file`
        and a summary at the budget (:attr:`budget_keys`), not diverged. Unreadable files
        count as not finished."""
        from rimrl.report.collect import config_value  # heavy

        try:
            summary = RunSummary.read(run_dir)
            budget = config_value(read_yaml(run_dir / CONFIG_FILE), self.budget_keys[0])
        except (OSError, ValueError, KeyError, IndexError, UserError):
            return False
        return ((run_dir / self.final_file).is_file() and summary is not None
                and summary.diverged is None and summary.timesteps >= budget)

    def tags(self, config) -> dict:
        """The fields that name a run's model in its summary and evaluations (e.g.
        ``{"core": "rims"}``), derived from the config here and nowhere else."""
        return {}

    def run_name(self, config) -> str:
        """The stem of a new run directory's name."""
        return f"{self.name}-s{config.seed}"

    # ------------------------------------------------------------------------- commands
    @abstractmethod
    def train(self, request: TrainRequest) -> int:
        """``rimrl train NAME``: returns the exit code."""

    def evaluate(self, request: EvalRequest) -> int:
        """``rimrl evaluate RUN_DIR`` of one of this learner's runs (``request.options``: an
        instance of :attr:`eval_options`)."""
        raise UserError(f"'{self.name}' runs have no separate evaluation: their results "
                        f"are in the run directory")


class SB3Learner(Learner):
    """A learner whose model is a Stable-Baselines3 algorithm (PPO, IQN): one training and
    one evaluation for all of them, on the shared runtime of :mod:`rimrl.sb3`. A subclass
    says how to build, load and prepare its model.
    """

    budget_keys = ("train.timesteps",)
    sweepable = True
    final_file = MODEL_ZIP

    @abstractmethod
    def build_model(self, cfg, env):
        """A fresh model for a new run."""

    @abstractmethod
    def load_model(self, path: Path, env=None, device: str = "cpu"):
        """A saved model; a one-line error for a missing or corrupt file."""

    def resumed(self, model, cfg, run_dir: Path, commit) -> None:
        """After a model is loaded from the run's committed checkpoint (e.g. its replay
        memory)."""

    def ready(self, model, cfg) -> None:
        """Before training, fresh or resumed (settings a resume may change)."""

    def callbacks(self, cfg, run_dir: Path) -> list:
        """Its own SB3 callbacks besides the shared ones."""
        return []

    def saves_replay(self, cfg) -> bool:
        """Whether checkpoints also write the replay memory (off-policy learners)."""
        return False

    def section(self, requested: dict) -> Optional[str]:
        return family_section(requested)

    def train(self, request: TrainRequest) -> int:
        from rimrl.sb3.training import learn_and_save  # heavy

        cfg, run_dir, commit, lock = prepare_run(request, self)
        with lock:  # this process is the run's only writer until it ends
            env = make_env(cfg)
            ckpt = commit.path(run_dir, commit.checkpoint)
            if ckpt is None:  # a new run, or one interrupted before its first commit
                model = self.build_model(cfg, env)
            else:
                verify_checksum(run_dir, ckpt, trust=request.trust)
                model = self.load_model(ckpt, env, cfg.device)
                self.resumed(model, cfg, run_dir, commit)
            self.ready(model, cfg)
            if request.resume is not None:
                save_config(cfg, run_dir / CONFIG_FILE)
            return learn_and_save(model, env, cfg, run_dir, request, self.name,
                                  self.tags(cfg), commit,
                                  extra_callbacks=self.callbacks(cfg, run_dir),
                                  save_replay=self.saves_replay(cfg))

    def evaluate(self, request: EvalRequest) -> int:
        from rimrl.sb3.evaluation import evaluate_run  # heavy

        cfg = saved_config(self.config_class(), request.run_dir)
        return evaluate_run(request, cfg, self.load_model, self.tags(cfg))


#: config keys that change how a run computes, not what it learns: --resume may change them
RUNTIME_KEYS = ("threads", "ppo.rollout_threads")


def saved_config(config, run_dir: Path, overrides=()):
    """The config saved in ``run_dir`` (``config.yaml``), over ``config``'s defaults (an
    instance of the learner's config class), then ``overrides``.

    A run saved before ``core.variant`` existed lacks the RIMs settings that came
    with it (gated communication, fresh reads, dropouts, value scale); it was trained with
    the thesis' values, so those keys take them, not today's defaults (PPO's are the official
    variant's): a resume or an evaluation describes the model the run holds."""
    path = Path(run_dir) / CONFIG_FILE
    saved = read_yaml(path)
    if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        # rimrl writes it whole (atomically) and YAML's dump ends every line: a cut file
        # would silently take defaults for what it lost
        raise UserError(f"{path} is truncated (it ends mid-line); restore it")
    core = saved.get("core")
    if isinstance(core, dict) and "variant" not in core:
        saved["core"] = {**VARIANTS["thesis"], "variant": "thesis", **core}
    return load_config(config, [saved], list(overrides))


def use_threads(threads: int) -> None:
    """torch's CPU threads for this process (0: leave torch's default)."""
    if threads:
        import torch  # heavy
        torch.set_num_threads(threads)


def prepare_run(request: TrainRequest, learner: Learner):
    """Resolve the config and the run directory; when resuming, bring the run back to its
    last commit (:func:`rimrl.commits.recover`).

    Returns (config, run_dir, commit, lock): ``commit`` is the run's last
    :class:`~rimrl.commits.Commit` (its ``checkpoint`` is ``None`` for a new run or one
    killed before its first commit: it starts over); ``lock`` is the run's
    :class:`~rimrl.runs.RunLock`, already held; use it as ``with lock:`` around the training.
    Everything is validated before a directory is created or a file written, so bad input
    leaves nothing behind; a run another process is writing is refused.
    """
    if request.resume is not None:
        return _resume_run(request, learner)
    return _new_run(request, learner)


def _resume_run(request: TrainRequest, learner: Learner):
    """``--resume``: the saved config (only the budget and runtime keys may change), the
    run locked and brought back to its last commit."""
    run_dir = require_run_dir(request.resume)
    kind = read_meta(run_dir).get("kind")
    if kind != learner.name:
        raise UserError(f"{run_dir} is a '{kind}' run, not a '{learner.name}' run")
    allowed = learner.budget_keys + RUNTIME_KEYS
    for text in request.overrides:
        if text.split("=", 1)[0].replace("-", "_") not in allowed:
            raise UserError(
                f"--resume continues a run with its saved config; '{text}' cannot change "
                f"it (only these can: {', '.join(allowed)})")
    config = saved_config(learner.config_class(), run_dir, list(request.overrides))
    _refuse_finished(learner, run_dir, config)
    use_threads(config.threads)
    lock = RunLock(run_dir).acquire()
    torn = remove_torn_files(run_dir)  # left by a kill during a checkpoint write
    if torn:
        print(f"removed {len(torn)} torn temporary file(s) of an interrupted write")
    try:
        commit = recover(run_dir)
    except UserError:
        lock.release()
        raise
    meta = read_meta(run_dir)
    now = provenance(config.device, config.threads)
    if now != meta.get("provenance"):  # each resume on other code is kept, in order
        meta.setdefault("resumed_with", []).append(now)
        write_meta(run_dir, meta)
    return config, run_dir, commit, lock


def _new_run(request: TrainRequest, learner: Learner):
    """A new run: the config checked, its folder (``--run-dir`` or a new one under
    ``runs_dir``) locked, then ``config.yaml``, an empty commit record and last
    ``run.json``."""
    config = learner.load_config(list(request.overrides), request.config_file)
    use_threads(config.threads)
    learner.check(config)
    if request.run_dir is not None:
        run_dir, lock = _claim_run_dir(Path(request.run_dir))
    else:
        run_dir = new_run_dir(config.runs_dir, learner.run_name(config))  # atomic mkdir
        lock = RunLock(run_dir).acquire()
    save_config(config, run_dir / CONFIG_FILE)
    commit = Commit()
    if learner.budget_keys:  # a run that resumes: nothing committed yet
        commit.write(run_dir)
    # last: a folder is a run once it has run.json (before it, --run-dir may start it again)
    write_meta(run_dir, {"kind": learner.name, "argv": sys.argv[1:],
                         "provenance": provenance(config.device, config.threads)})
    return config, run_dir, commit, lock


def _claim_run_dir(run_dir: Path):
    """``--run-dir``: a new or empty folder, or one a kill left before its ``run.json``;
    returns it with its lock held. Anything else is refused before a file is written."""
    refuse_inside_a_run(run_dir, "--run-dir")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir} is a file, not a directory; choose another "
                        "--run-dir")
    if run_dir.is_dir() and not read_meta(run_dir, missing_ok=True) and any(
            p.name not in PRE_RUN_FILES and not is_temporary(p.name)
            for p in run_dir.iterdir()):
        raise UserError(f"--run-dir {run_dir} is a folder that rimrl did not make (it has "
                        "files and no run.json); choose a new or empty folder")
    already = (f"{run_dir} already holds a run; continue it with --resume {run_dir} or "
               "choose another --run-dir")
    if run_dir.is_dir() and read_meta(run_dir, missing_ok=True):
        raise UserError(already)  # before the lock: its file is the run's, not ours
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir).acquire()
    if read_meta(run_dir, missing_ok=True):  # again under the lock: no race
        lock.release()
        raise UserError(already)
    remove_torn_files(run_dir)  # of a start that a kill cut before run.json
    return run_dir, lock


def _refuse_finished(learner: Learner, run_dir: Path, config) -> None:
    """:class:`NothingToDo` when the run's completed training (its ``train_summary.json``)
    already reached the budget asked for: a resume would only rewrite what is there."""
    from rimrl.report.collect import config_value  # heavy

    summary = RunSummary.read(run_dir) if learner.budget_keys else None
    if summary is None:
        return
    done = int(summary.timesteps)
    key = learner.budget_keys[0]
    budget = config_value(to_dict(config), key)
    if summary.diverged is None and done >= budget:
        flag = "--" + key.split(".")[-1]
        raise NothingToDo(f"{run_dir} is already at {done} steps (budget {budget}); raise "
                          f"{flag} to continue it")


def short_env_name(env_id: str) -> str:
    """An env id as it appears in run directory names."""
    return env_id.replace("ALE/", "").replace("/", "-")
