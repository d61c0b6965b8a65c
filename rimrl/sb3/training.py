"""The part of ``rimrl train`` that every SB3 learner shares: logging, checkpoints, the
budget left after a resume, Ctrl-C, divergence, the final model and the run summary."""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from stable_baselines3.common.callbacks import CallbackList

from rimrl.commits import committed_checkpoint
from rimrl.config import to_dict
from rimrl.errors import UserError
from rimrl.progress import shows_bar
from rimrl.runs import LOG_DIR, MODEL_ZIP, RunSummary, record_checksum, remove_new_run
from rimrl.sb3.callbacks import (DivergenceGuard, ProgressLines, TrainingProgress,
                                 non_finite_parameter, save_model_atomically)
from rimrl.sb3.environments import final_score_text
from rimrl.sb3.iterations import IterationCommit
from rimrl.sb3.logs import log_scalars, run_logger
from rimrl.sb3.periodic_evaluation import PeriodicEvaluation
from rimrl.tracking import Tracker

#: exit code of a training run that diverged (non-finite loss or weights)
DIVERGED = 3


def learn_and_save(model, env, cfg, run_dir: Path, request, learner: str, tags: dict,
                   commit, extra_callbacks=(), save_replay: bool = False) -> int:
    """Train ``model`` up to ``cfg.train.timesteps`` env steps (what a resumed run has done
    counts), committing its iterations (:mod:`rimrl.commits`); then write ``model.zip`` and
    ``train_summary.json``.

    While it runs: a progress bar (unless ``--no-progress``/``--quiet``) and one line every
    ``train.print_interval`` log dumps (unless ``--quiet``). Ctrl-C stops after the current
    step, saves a checkpoint, prints the resume command and returns 130 (SIGTERM: 143,
    SIGHUP: 129, :class:`StopOnInterrupt`); a second one exits at once. Training that
    diverges (non-finite loss, outputs or weights) returns :data:`DIVERGED` and keeps the
    last finite checkpoint.

    Args:
        model: an SB3 model, fresh or loaded from the run's latest checkpoint.
        env: its env (closed at the end).
        cfg: the run config (``train`` section: timesteps, checkpoint_every,
            checkpoint_minutes, keep_checkpoints, log_interval, print_interval).
        run_dir: the run directory.
        request: the command's :class:`~rimrl.learners.requests.TrainRequest` (``no_progress``,
            ``quiet``).
        learner: the learner's name, for the resume command it prints.
        commit: the run's last :class:`~rimrl.commits.Commit` (the model is its checkpoint's).
        tags: fields naming the model in the summary, e.g. ``{"core": "rims"}``.
        extra_callbacks: more SB3 callbacks (e.g. RIM activity logging).
        save_replay: checkpoints also write the replay memory (off-policy learners).

    With ``train.track`` the run is also sent to Weights & Biases (:mod:`rimrl.tracking`).
    """
    t = cfg.train
    tracker = None
    if getattr(t, "track", False):  # before the TensorBoard writer: W&B syncs its scalars

        tracker = Tracker(run_dir, to_dict(cfg), t.wandb_project, group=tags.get("core"))
        try:
            tracker.start()
        except UserError:
            if request.resume is None:  # a run made by this command: nothing of it is kept
                remove_new_run(run_dir, keep_folder=request.run_dir is not None)
            raise
    try:
        return _learn_and_save(model, env, cfg, run_dir, request, learner, tags,
                               extra_callbacks, save_replay, commit)
    finally:
        if tracker is not None:
            tracker.finish()


def _learn_and_save(model, env, cfg, run_dir: Path, request, learner: str, tags: dict,
                    extra_callbacks, save_replay: bool, commit) -> int:
    t = cfg.train
    done = model.num_timesteps
    remaining = t.timesteps - done
    guard = DivergenceGuard()
    start = time.perf_counter()
    # the handlers come first: a signal from the moment the logs exist stops cleanly, with a
    # checkpoint and the resume command, instead of killing the process
    with StopOnInterrupt() as interrupt:
        # a resumed run continues the curve: rows after its checkpoint are dropped, not doubled
        logger = run_logger(run_dir / LOG_DIR, resume_step=done or None)
        if not request.quiet:
            logger.output_formats.append(
                ProgressLines(t.timesteps, lambda: len(model.ep_info_buffer or ()),
                              every=t.print_interval))
        model.set_logger(logger)
        print(f"run directory: {run_dir}" + (f" (resuming at {done} steps)" if done else ""),
              flush=True)
        progress = TrainingProgress(t.timesteps, show_bar=shows_bar(request),
                                    stop_requested=lambda: interrupt.requested)
        evaluation = periodic_evaluation(cfg, run_dir, request, lambda: interrupt.requested,
                                         lambda values, step: log_scalars(logger, values, step))
        if evaluation is not None:
            evaluation.start(done)
        iterations = IterationCommit(run_dir, t, commit, evaluation, save_replay=save_replay)
        callbacks = [guard, iterations.callback(guard.check), progress, *extra_callbacks]
        if remaining > 0:
            try:
                model.learn(remaining, callback=CallbackList(callbacks),
                            log_interval=t.log_interval, reset_num_timesteps=done == 0)
            except ValueError as exc:
                # overflowing weights fail inside an update (torch refuses a distribution
                # with NaN logits) before the guard's next look: divergence, not a bug
                if guard.check() is None and "invalid values" not in str(exc):
                    raise
                guard.diverged = guard.diverged or (
                    f"non-finite policy outputs at step {model.num_timesteps}")
            if guard.check() is not None:
                return _diverged(model, env, logger, run_dir, guard.diverged, tags, cfg,
                                 evaluation)
        # the last iteration (the final one with its evaluation, or the one a stop ended);
        # a run resumed at its budget (killed after its last commit) only tidies up here
        path = iterations.run(model, final=not interrupt.requested)
        if evaluation is not None:
            evaluation.close()
        if interrupt.requested:
            logger.close()
            env.close()
            print(f"interrupted at {model.num_timesteps} steps; checkpoint saved: {path}\n"
                  f"continue with: rimrl train {learner} --resume {run_dir}", flush=True)
            return interrupt.exit_code
    save_model_atomically(model, run_dir / MODEL_ZIP)
    record_checksum(run_dir, run_dir / MODEL_ZIP)
    logger.close()
    env.close()
    scores = [float(e["r"]) for e in model.ep_info_buffer]
    summary = RunSummary(timesteps=int(model.num_timesteps), env=cfg.env.id, tags=tags,
                         seconds=round(time.perf_counter() - start, 1),
                         recent_episode_scores=scores)
    summary.write(run_dir)
    label = ", ".join(f"{k} {v}" for k, v in tags.items())
    meaning = final_score_text(cfg.env.id, scores, int(model.num_timesteps))
    print(f"trained on {cfg.env.id} ({label}) to {model.num_timesteps} steps in "
          f"{summary.seconds:.0f} s; {meaning}; model: {run_dir / MODEL_ZIP}")
    return 0


def periodic_evaluation(cfg, run_dir: Path, request, stop_requested, record=None):
    """The run's evaluations during training, or ``None`` when ``eval.every`` is 0."""
    e = getattr(cfg, "eval", None)
    if e is None or not e.every:
        return None

    return PeriodicEvaluation(cfg, run_dir, stop_requested, record=record,
                              say=None if request.quiet else lambda line: print(line, flush=True))


def _diverged(model, env, logger, run_dir: Path, what: str, tags: dict, cfg,
              evaluation) -> int:
    """Training produced NaN/inf: record it, keep the last finite checkpoint, exit 3."""
    if evaluation is not None:
        evaluation.close()
    logger.close()
    env.close()
    last = committed_checkpoint(run_dir)
    RunSummary(timesteps=int(model.num_timesteps), env=cfg.env.id, tags=tags, diverged=what,
               last_finite_checkpoint=last.name if last else None).write(run_dir)
    keep = (f"the newest checkpoint, {last.name}, is the last finite one" if last
            else "no finite checkpoint was written")
    print(f"rimrl: error: training diverged: {what}; {keep}; lower the learning rate "
          "(or max_grad_norm) and start again", file=sys.stderr)
    return DIVERGED


class StopOnInterrupt:
    """While active, the first Ctrl-C (SIGINT), SIGTERM (schedulers, ``timeout``, container
    stops) or SIGHUP (a closed terminal) only sets ``requested`` so that training can stop
    cleanly after the current step and save a checkpoint; a second one ends the process at
    once. :attr:`exit_code` is the shell's for that signal: 128 + its number (130, 143, 129).

    Outside the main thread (e.g. a Ray worker) signals cannot be caught: it does nothing.
    """

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self):
        self.requested = False
        self.signum: Optional[int] = None
        self._previous: dict = {}

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            # asked twice: no cleanup, no waiting on threads or worker pools
            os._exit(128 + signum)
        self.requested = True
        self.signum = signum
        print(f"\nrimrl: {signal.Signals(signum).name}: stopping after this step to save a "
              "checkpoint (Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> "StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                if hasattr(signal, name):  # SIGHUP: not on Windows
                    number = getattr(signal, name)
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}


def load_sb3_model(cls, label: str, path: Path, env=None, device: str = "cpu"):
    """``cls.load(path)``; a one-line error for a missing or corrupt file. Models saved
    before ``agents`` and ``envs`` moved under ``rimrl`` load too."""
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")

    try:
        with legacy_module_names():
            model = cls.load(path, env=env, device=device)
    except Exception as exc:  # zip, pickle and torch errors of many types
        raise UserError(f"{path} is corrupt or not a rimrl {label} model "
                        f"({type(exc).__name__}); delete it to resume from an earlier "
                        "checkpoint") from None
    bad = non_finite_parameter(model.policy)
    if bad is not None:
        raise UserError(f"{path} holds non-finite weights ('{bad}'): its run diverged; use "
                        "an earlier checkpoint (delete this file) or train again")
    return model


# top-level names under which rimrl 0.1.0's first models pickled their classes
LEGACY_PACKAGES = {"agents": "rimrl.agents", "envs": "rimrl.envs"}


@contextlib.contextmanager
def legacy_module_names():
    """While active, ``agents.*`` and ``envs.*`` name the modules of ``rimrl.agents`` and
    ``rimrl.envs``, so that pickles of class paths written before the move resolve. Names a
    process already imported (a user's own ``agents`` package) are left alone."""
    added = []
    for old, new in LEGACY_PACKAGES.items():
        if old in sys.modules:
            continue
        package = importlib.import_module(new)
        names = [new] + [m.name for m in pkgutil.walk_packages(package.__path__, new + ".")]
        for name in names:
            alias = old + name[len(new):]
            sys.modules[alias] = importlib.import_module(name)
            added.append(alias)
    try:
        yield
    finally:
        for alias in added:
            sys.modules.pop(alias, None)
