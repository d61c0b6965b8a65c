"""``rimrl sweep SWEEP.yaml``: a grid of training runs on Ray Tune.

Ray is an optional extra (``pip install -e ".[sweep]"``). By default an embedded local Ray
uses this machine's cores; ``--address`` joins an existing Ray cluster. Each trial runs the
ordinary ``rimrl train`` (and ``rimrl evaluate``) in a Ray worker with the resources the
sweep file asks for, writing its run directory under ``RUNS_DIR/NAME/``; a failing trial is
reported and the others go on. Re-running the same sweep skips finished trials and resumes
interrupted ones (see :mod:`rimrl.sweeps`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from rimrl.cli.common import add_progress_args
from rimrl.errors import UserError
from rimrl.progress import say


def register(commands) -> None:
    p = commands.add_parser("sweep", help="run a grid of trainings on Ray Tune")
    p.add_argument("sweep_file", type=Path, metavar="SWEEP.yaml")
    p.add_argument("--address", help="join this Ray cluster (e.g. ray://head:10001 or auto) "
                                     "instead of starting a local one")
    p.add_argument("--num-cpus", type=int, help="local Ray: cores to use (default: all)")
    p.add_argument("--num-gpus", type=int, help="local Ray: GPUs to use (default: all)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the trials and what each needs, run nothing")
    add_progress_args(p)
    p.set_defaults(handler=run)


def require_ray():
    import logging
    import os

    # rimrl prints its own per-trial summary; Tune's live tables and per-trial tracebacks
    # would bury it (they stay in the trial logs and RUN_DIR/trial.log)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # no usage reports leave the machine unless the user opts in
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError("rimrl sweep needs Ray Tune, an optional extra: "
                        "pip install -e \".[sweep]\" (or pip install \"ray[tune]\")") from None
    return ray, tune


def sweep_learner(sweep):
    """The registered learner a sweep file's ``command`` names; it must be sweepable."""
    from rimrl import learners

    sweepable = [name for name in learners.names() if learners.get(name).sweepable]
    if sweep.command not in sweepable:
        raise UserError(f"sweep command '{sweep.command}' is not one of: {', '.join(sweepable)}")
    return learners.get(sweep.command)


def validate_trials(trials, sweep) -> None:
    """Load and check every new trial's config exactly as ``rimrl train`` does: a trial
    that training would refuse stops the sweep (and ``--dry-run``) before anything runs,
    with the trial's name in the one-line error."""
    from rimrl.learners.evaluation import requested_splits

    learner = sweep_learner(sweep)
    for trial in trials:
        if trial.status != "new":
            continue
        try:
            cfg = learner.load_config(trial.overrides(sweep))
            learner.check(cfg)  # what rimrl train checks before it creates the run
            if sweep.evaluate is not None:
                requested_splits(cfg.env.id, sweep.evaluate.distractors)
        except UserError as exc:
            raise UserError(f"trial {trial.name}: {exc}") from None


def run_trial(config: dict) -> None:
    """A Ray Tune function trainable: run a trial's ``rimrl`` commands in this worker, their
    whole output (tracebacks included) appended to ``RUN_DIR/trial.log``; a failing command
    fails the trial and leaves its reason in ``RUN_DIR/trial_failed.txt``."""
    import traceback

    from ray import tune

    from rimrl.cli import main
    from rimrl.runs import FAILED_MARKER, TRIAL_LOG, RunSummary

    spec = config["trial"]
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_MARKER).unlink(missing_ok=True)  # a new attempt
    for argv in spec["commands"]:
        with open(run_dir / TRIAL_LOG, "a") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):
            print(f"$ rimrl {' '.join(argv)}", flush=True)
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
            except Exception:  # a bug: its traceback belongs in the trial's log
                traceback.print_exc()
                code = 1
        if code != 0:
            reason = last_line(run_dir / TRIAL_LOG)
            (run_dir / FAILED_MARKER).write_text(reason + "\n")
            raise RuntimeError(f"'rimrl {' '.join(argv[:2])}' exited with {code}: {reason}")
    summary = RunSummary.read(run_dir)
    tune.report({"timesteps": summary.timesteps, "final_score": summary.mean_recent_score})


def run(args) -> int:
    from rimrl.runs import FAILED_MARKER
    from rimrl.sweeps import load_sweep, plan_trials, trial_commands

    sweep = load_sweep(args.sweep_file)
    sweep_learner(sweep)
    trials = plan_trials(sweep)
    validate_trials(trials, sweep)
    root = Path(sweep.runs_dir).resolve() / sweep.name
    todo = [t for t in trials if t.status != "done"]
    print(f"sweep {sweep.name}: {len(trials)} trials in {root}; "
          + ", ".join(f"{sum(t.status == s for t in trials)} {s}"
                      for s in ("new", "failed", "interrupted", "trained", "done")))
    if args.dry_run:
        for t in trials:
            steps = "; ".join("rimrl " + " ".join(c[:2]) for c in trial_commands(t, sweep))
            print(f"  {t.name}: {t.status}" + (f" -> {steps}" if steps else ""))
        return 0
    if not todo:
        _write_status(root, trials, {})
        print("nothing to do: every trial is done")
        return 0
    ray, tune = require_ray()
    init = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    if args.address:
        init["address"] = args.address
    else:
        init.update(num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    if not args.address:
        stop_orphaned_ray(root)
    try:
        ray.init(**init)
    except Exception as exc:  # connection errors come in many types
        raise UserError(f"could not start or join Ray ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not args.address:
        record_ray_processes(root)
    specs = [{"name": t.name, "run_dir": str(t.run_dir), "commands": trial_commands(t, sweep)}
             for t in todo]
    resources = {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu}
    tuner = tune.Tuner(
        tune.with_resources(run_trial, resources),
        param_space={"trial": tune.grid_search(specs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=sweep.max_concurrent or None,
                                    trial_name_creator=_trial_label,
                                    trial_dirname_creator=_trial_label),
        run_config=tune.RunConfig(name=sweep.name, storage_path=str(root / "ray"),
                                  failure_config=tune.FailureConfig(max_failures=0,
                                                                    fail_fast=False),
                                  callbacks=[_progress_lines(tune, len(todo), not args.quiet)],
                                  verbose=0),
    )
    errors = {}
    try:
        results = tuner.fit()
        for result in results:
            if result.error is not None:
                spec = result.config["trial"]
                marker = Path(spec["run_dir"]) / FAILED_MARKER
                errors[spec["name"]] = (marker.read_text().strip() if marker.is_file() else
                                        str(result.error).strip().splitlines()[-1][:300])
    finally:
        ray.shutdown()
        (root / RAY_PROCESSES).unlink(missing_ok=True)
    trials = plan_trials(sweep)  # re-read what the trials left behind
    _write_status(root, trials, errors)
    for t in trials:
        line = f"  {t.name}: {t.status}"
        if t.name in errors:
            line += f" FAILED: {errors[t.name]}"
        print(line)
    print(f"status: {root / 'sweep.json'}; compare with: rimrl compare {root}")
    if errors:
        print(f"rimrl: {len(errors)} of {len(todo)} trials failed; re-run the sweep to retry "
              "them", file=sys.stderr)
        return 1
    return 0


# the local Ray processes a sweep driver started, so that a re-run after the driver was
# killed (kill -9 leaves raylet and the GCS server running) can stop them
RAY_PROCESSES = "ray_processes.json"


def record_ray_processes(root: Path) -> None:
    import os

    try:  # Ray's node object is private API: if it moves, only the clean-up is lost
        from ray._private import worker
        node = worker._global_node
        pids = [info.process.pid for infos in node.all_processes.values() for info in infos]
    except Exception:
        return
    root.mkdir(parents=True, exist_ok=True)
    (root / RAY_PROCESSES).write_text(json.dumps({"driver": os.getpid(), "pids": pids}))


def stop_orphaned_ray(root: Path) -> list[int]:
    """Stop the Ray processes of an earlier driver of this sweep that died without shutting
    them down; returns the PIDs stopped. Only processes still running Ray are touched."""
    import os
    import signal
    import time

    path = root / RAY_PROCESSES
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return []

    def alive(pid: int) -> bool:
        try:
            return "ray" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False

    if Path(f"/proc/{record.get('driver', -1)}").exists():
        return []  # that driver is still running: not orphans
    stopped = [pid for pid in record.get("pids", []) if alive(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in [p for p in stopped if alive(p)]:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        time.sleep(1)
    path.unlink(missing_ok=True)
    if stopped:
        say(f"stopped {len(stopped)} Ray processes left by an earlier, killed sweep driver")
    return stopped


def last_line(path: Path) -> str:
    """The last non-empty line of a log (a trial's error), at most 300 characters."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")[:300]


def _progress_lines(tune, total: int, enabled: bool):
    """A Tune callback printing one line whenever a trial starts, finishes or fails, with
    the counts of trials done, running and failed."""

    class SweepProgress(tune.Callback):
        def __init__(self):
            self.running, self.done, self.failed = set(), 0, 0

        def _line(self, trial, event: str) -> None:
            say(f"  {_trial_label(trial)}: {event} ({self.done} done, {len(self.running)} "
                f"running, {self.failed} failed, of {total})", enabled=enabled)

        def on_trial_start(self, iteration, trials, trial, **info):
            self.running.add(trial.trial_id)
            self._line(trial, "started")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.running.discard(trial.trial_id)
            self.done += 1
            self._line(trial, "finished")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.running.discard(trial.trial_id)
            self.failed += 1
            self._line(trial, "FAILED")

    return SweepProgress()


def _trial_label(trial) -> str:
    return trial.config["trial"]["name"]


def _write_status(root: Path, trials, errors: dict) -> None:
    from rimrl.runs import write_json

    write_json(root / "sweep.json", {"trials": [
        {"name": t.name, "values": t.values, "run_dir": str(t.run_dir), "status": t.status,
         **({"error": errors[t.name]} if t.name in errors else {})} for t in trials]})
