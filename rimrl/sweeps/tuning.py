"""Running a search (:mod:`rimrl.sweeps.search`) on Ray Tune.

Each trial is a Ray Tune function trainable that runs the trial's ordinary ``rimrl train``
(and ``rimrl evaluate``) command lines as child processes, and, while training runs, reports
each committed evaluation (:mod:`rimrl.commits`) to Tune: only evaluations whose iteration is
committed count, so a trial resumed after a crash reports nothing twice that differs. When
the scheduler stops a trial, its child gets SIGTERM and stops as after Ctrl-C if Ray leaves it
the time, else it dies with its worker; either way the run is whole at its last commit (about
the evaluation the scheduler judged): a stopped trial is a resumable run directory, marked
``trial_pruned.txt``. Children die with the Ray worker that runs them (Linux), so a lost node
leaves no training holding its run's lock.

Tune's experiment state lives in ``RUNS_DIR/NAME/ray``: a re-run of the same sweep file
restores it (the sampler's history included), resumes unfinished trials and samples the
rest; a changed search is refused.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rimrl.commits import read_commit
from rimrl.errors import UserError
from rimrl.progress import say
from rimrl.runs import (BEST_CONFIG, PRUNED_MARKER, SEARCH_RECORD, SWEEP_STATUS, TRIAL_LOG,
                        read_evaluations, write_json)
from rimrl.sweeps.plan import Trial, sweep_learner, trial_commands, trial_status
from rimrl.sweeps.ray_runner import (FAILED, attempt_commands, command_failed, failure_reason,
                                     progress_lines, ray_started, require_ray, start_attempt)
from rimrl.sweeps.search import (best_overrides, check_unchanged, committed_scores, plain,
                                 search_record, write_best_config)

#: seconds between two looks at a training trial's committed evaluations
POLL_SECONDS = 2.0
#: seconds a stopped trial's training gets to save its checkpoint before it is killed
STOP_GRACE_SECONDS = 120.0

#: ``python -m rimrl ARGS`` in a child the kernel kills when its parent, the Ray worker of
#: the trial, dies (a lost node must not leave a run holding its lock)
_LAUNCH = """
import ctypes, os, runpy, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG, Linux
except AttributeError:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the worker died before the line above
sys.argv = ["rimrl"] + sys.argv[2:]
runpy.run_module("rimrl", run_name="__main__", alter_sys=True)
"""


@dataclass
class SearchOutcome:
    """What a search left: each trial's status and last scores, the best trial."""

    trials: list[dict] = field(default_factory=list)
    best: Optional[dict] = None
    best_config: Optional[Path] = None


def trial_folder(trial_id: str) -> str:
    """A trial's run directory name: ``trial-`` and Tune's trial id (its last part, where
    the id has an experiment prefix: ``<experiment>_00003`` gives ``trial-00003``)."""
    return "trial-" + trial_id.rsplit("_", 1)[-1]


def rungs(grace: int, factor: int, budget: int) -> list[int]:
    """The steps where ASHA compares trials: ``grace`` x ``factor``^k below the budget."""
    points, step = [], grace
    while 0 < step < budget:
        points.append(step)
        step *= factor
    return points


def search_settings(sweep) -> dict[str, Any]:
    """The base config's budget and evaluation interval, and the sampler actually used
    (``random`` when Optuna is asked for and missing)."""
    cfg = sweep_learner(sweep).load_config(Trial("base", {}, sweep.root).overrides(sweep))
    search = sweep.search
    algorithm = search.algorithm
    if algorithm == "optuna" and importlib.util.find_spec("optuna") is None:
        algorithm = "random"
    grace = search.grace_steps or cfg.eval.every
    return {"budget": cfg.train.timesteps, "grace": grace, "algorithm": algorithm,
            "rungs": rungs(grace, search.reduction_factor, cfg.train.timesteps)
            if search.scheduler == "asha" else []}


def describe(sweep) -> str:
    """One paragraph on what a search will do (``--dry-run`` and the start of a run)."""
    s, settings = sweep.search, search_settings(sweep)
    sampler = {"optuna": "Optuna's TPE", "random": "random sampling"}[settings["algorithm"]]
    if settings["algorithm"] != s.algorithm:
        sampler += " (Optuna is not installed: pip install optuna, part of the sweep extra)"
    stop = (f"ASHA stops trials at {', '.join(f'{r:,}' for r in settings['rungs'])} steps "
            f"(top 1/{s.reduction_factor} go on)" if s.scheduler == "asha"
            else "no early stopping")
    lines = [f"search {sweep.name}: {s.trials} trials by {sampler}, each up to "
             f"{settings['budget']:,} steps, maximising {s.metric}; {stop}; in {sweep.root}"]
    lines += [f"  {d.key}: {d.kind} {list(d.values)}" for d in s.dimensions()]
    return "\n".join(lines)


def run_search(sweep, *, address: Optional[str] = None, num_cpus: Optional[int] = None,
               num_gpus: Optional[int] = None, show: bool = True) -> SearchOutcome:
    """Run (or resume) ``sweep``'s search on Ray; write ``sweep.json`` and the best trial's
    configuration (:data:`~rimrl.runs.BEST_CONFIG`)."""
    _, tune = require_ray()
    search, root = sweep.search, sweep.root
    settings = search_settings(sweep)
    recorded = check_unchanged(sweep)
    experiment = root / "ray" / sweep.name
    resources = {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu}
    with ray_started(root, address, num_cpus, num_gpus):
        trainable = tune.with_resources(tune.with_parameters(search_trial, sweep=sweep),
                                        resources)
        if recorded is not None and tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            if root.is_dir() and any(p.name.startswith("trial-") for p in root.iterdir()):
                raise UserError(f"{root} holds trials of a search whose Ray state is gone; "
                                "give the sweep another name or delete that folder")
            root.mkdir(parents=True, exist_ok=True)
            import yaml
            (root / SEARCH_RECORD).write_text(yaml.safe_dump(search_record(sweep)))
            tuner = tune.Tuner(
                trainable,
                param_space={d.key: d.domain(tune) for d in search.dimensions()},
                tune_config=tune.TuneConfig(
                    metric=search.metric, mode="max", num_samples=search.trials,
                    search_alg=_sampler(settings["algorithm"], search.seed,
                                        sweep.max_concurrent),
                    scheduler=_scheduler(search, settings),
                    max_concurrent_trials=sweep.max_concurrent or None,
                    trial_name_creator=_label, trial_dirname_creator=_label),
                run_config=tune.RunConfig(
                    name=sweep.name, storage_path=str(root / "ray"), verbose=0,
                    failure_config=tune.FailureConfig(max_failures=sweep.retries,
                                                      fail_fast=False),
                    callbacks=[progress_lines(tune, search.trials, show, _label)]))
        results = tuner.fit()
    return _outcome(sweep, results)


def _sampler(algorithm: str, seed: int, max_concurrent: int):
    if algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch  # optional
        return OptunaSearch(seed=seed)  # Tune limits its concurrency (max_concurrent_trials)
    from ray.tune.search.basic_variant import BasicVariantGenerator  # optional
    # Tune ignores max_concurrent_trials for a sampler it is handed: it is told here
    return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent)


def _scheduler(search, settings: dict):
    if search.scheduler == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler  # optional
    return ASHAScheduler(time_attr="timesteps", max_t=settings["budget"],
                         grace_period=min(settings["grace"], settings["budget"]),
                         reduction_factor=search.reduction_factor)


def _label(trial) -> str:
    return trial_folder(trial.trial_id)


def _outcome(sweep, results) -> SearchOutcome:
    """Each trial's status, read from its run directory as for a grid's trials (``done``:
    training reached the budget; ``pruned``: the scheduler stopped it first; ``failed``), its
    last committed evaluation, the best finished trial and its configuration file."""
    search, root = sweep.search, sweep.root
    learner = sweep_learner(sweep)
    outcome = SearchOutcome()
    for result in results:
        run_dir = root / Path(result.path).name  # Tune's folder is named as the run's
        last = last_scores(run_dir)
        entry = {"name": run_dir.name, "values": {k: plain(result.config[k])
                                                  for k in search.space},
                 "run_dir": str(run_dir), "timesteps": last.pop("timesteps", 0),
                 "metric": last.get(search.metric), "scores": last}
        reason = failure_reason(result)
        if reason is not None:
            entry.update(status="failed", error=reason, metric=None)
        elif learner.finished(run_dir):  # a trial stopped after its run ended is whole
            entry["status"] = "done"
        else:
            entry["status"] = "pruned"
            if run_dir.is_dir():
                (run_dir / PRUNED_MARKER).write_text(
                    f"stopped by the scheduler; its last evaluation: {entry['timesteps']} "
                    f"steps, {search.metric} {entry['metric']}\n")
        outcome.trials.append(entry)
    outcome.trials.sort(key=lambda e: e["name"])
    finished = [e for e in outcome.trials if e["status"] == "done" and e["metric"] is not None]
    if finished:
        best = max(finished, key=lambda e: e["metric"])
        outcome.best = best
        outcome.best_config = root / BEST_CONFIG
        write_best_config(
            outcome.best_config, best_overrides(sweep.overrides, best["values"]),
            f"best of search {sweep.name}: {best['name']}, {search.metric} {best['metric']} "
            f"at {best['timesteps']:,} steps (its last evaluation)\n"
            f"train it again: rimrl train {sweep.command} --config {outcome.best_config}")
    write_json(root / SWEEP_STATUS, {"metric": search.metric, "trials": outcome.trials,
                                     "best": outcome.best and outcome.best["name"]})
    return outcome


def run_scores(run_dir: Path, after: int = -1) -> list[dict]:
    """The run's committed evaluations past step ``after``, one result per step
    (:func:`committed_scores`); none for a run without a commit record yet."""
    commit = read_commit(run_dir) if run_dir.is_dir() else None
    if commit is None or not commit.evaluation_rows:
        return []
    return committed_scores(read_evaluations(run_dir), commit.evaluation_rows, after)


def last_scores(run_dir: Path) -> dict:
    """The run's last committed evaluation as a result; empty when it has none."""
    scores = run_scores(run_dir)
    return scores[-1] if scores else {}


def search_trial(values: dict, sweep) -> None:
    """The Ray Tune function trainable of one search trial (see the module docstring). A
    failing command ends the trial with a result that names the reason (:data:`FAILED`) and
    scores it NaN, which Optuna records as a failed trial: only a lost worker or node is an
    error, the kind Ray retries."""
    from ray import tune  # optional

    run_dir = sweep.root / trial_folder(tune.get_context().get_trial_id())
    values = {k: plain(v) for k, v in values.items()}
    trial = Trial(run_dir.name, values, run_dir)
    trial.status = trial_status(sweep_learner(sweep), run_dir, sweep.evaluate)
    start_attempt(run_dir)
    reported = 0
    for argv in attempt_commands(trial_commands(trial, sweep), run_dir):
        code, reported = _run_child(argv, run_dir, reported if argv[0] == "train" else None)
        if code != 0:
            tune.report({"timesteps": reported, sweep.search.metric: float("nan"),
                         FAILED: command_failed(run_dir)})
            return
    _report_new(run_dir, reported)  # a run another attempt finished: its scores all the same


def _run_child(argv: list[str], run_dir: Path, reported: Optional[int]) -> tuple[int, int]:
    """Run ``rimrl ARGV`` as a child, its output appended to the trial's log; with a step
    count in ``reported``, report the training's committed evaluations past it as they come.
    Returns the exit code and the last step reported."""
    with open(run_dir / TRIAL_LOG, "a") as log:
        log.write(f"$ rimrl {' '.join(argv)}\n")
        log.flush()
        child = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(os.getpid()), *argv],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            while True:
                code = child.poll()  # before the look: a finished run's rows are all seen
                if reported is not None:
                    reported = _report_new(run_dir, reported)
                if code is not None:
                    return code, reported or 0
                time.sleep(POLL_SECONDS)
        finally:
            if child.poll() is None:  # the scheduler stopped the trial (or Tune is ending)
                child.send_signal(signal.SIGTERM)  # stop with a checkpoint, as after Ctrl-C
                try:
                    child.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def _report_new(run_dir: Path, after: int) -> int:
    """Report the committed evaluations past step ``after`` to Tune; the last step reported."""
    from ray import tune  # optional

    for result in run_scores(run_dir, after):
        tune.report(result)
        after = result["timesteps"]
    return after


def print_outcome(outcome: SearchOutcome, metric: str) -> None:
    """The trials' table and where the best configuration is."""
    for e in outcome.trials:
        values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in e["values"].items())
        score = "-" if e["metric"] is None else f"{e['metric']:.3f}"
        others = "; ".join(f"{k} {v:.3f}" for k, v in sorted(e["scores"].items())
                           if k != metric)
        print(f"  {e['name']}: {e['status']} at {e['timesteps']:,} steps, {metric} {score}"
              + (f" ({others})" if others else "") + f" [{values}]"
              + (f" FAILED: {e['error']}" if e.get("error") else ""))
    if outcome.best is not None:
        say(f"best: {outcome.best['name']} ({metric} {outcome.best['metric']:.3f}); its "
            f"config: {outcome.best_config}")
