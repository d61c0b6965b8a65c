"""Running a sweep's trials on Ray Tune.

Ray is an optional extra (``pip install -e ".[sweep]"``). By default an embedded local Ray
uses this machine's cores; an ``address`` joins an existing Ray cluster. Each trial runs the
ordinary ``rimrl train`` (and ``rimrl evaluate``) command lines of
:func:`rimrl.sweeps.plan.trial_commands` in a Ray worker with the resources the sweep file
asks for; a failing trial is reported and the others go on. The local Ray processes are
recorded in the sweep's folder so that a later run can stop those a killed driver left.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Optional

from rimrl.errors import UserError
from rimrl.progress import say
from rimrl.runs import FAILED_MARKER, META_FILE, RAY_PROCESSES, TRIAL_LOG

#: the result key of a trial whose command failed: its reason (a result, not an error)
FAILED = "failed"


def run_on_ray(sweep, todo: list, execute: Callable[[list[str]], int], *,
               address: Optional[str] = None, num_cpus: Optional[int] = None,
               num_gpus: Optional[int] = None, show: bool = True) -> dict[str, str]:
    """Run the ``todo`` trials of ``sweep`` on Ray; returns ``{trial name: error line}`` of
    the trials that failed.

    Args:
        sweep: the :class:`~rimrl.sweeps.plan.SweepConfig`.
        todo: the trials to run (:class:`~rimrl.sweeps.plan.Trial`, not ``done``).
        execute: runs one ``rimrl`` command line in a worker, returns its exit code.
        address: a Ray cluster to join; ``None``: start a local Ray.
        num_cpus, num_gpus: a local Ray's resources (default: all of the machine's).
        show: print a line whenever a trial starts, finishes or fails.
    """
    from rimrl.sweeps.plan import trial_commands

    _, tune = require_ray()
    specs = [{"name": t.name, "run_dir": str(t.run_dir), "commands": trial_commands(t, sweep)}
             for t in todo]
    resources = {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu}
    errors = {}
    with ray_started(sweep.root, address, num_cpus, num_gpus):
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(run_trial, execute=execute), resources),
            param_space={"trial": tune.grid_search(specs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=sweep.max_concurrent or None,
                                        trial_name_creator=_trial_label,
                                        trial_dirname_creator=_trial_label),
            run_config=tune.RunConfig(name=sweep.name, storage_path=str(sweep.root / "ray"),
                                      failure_config=tune.FailureConfig(
                                          max_failures=sweep.retries, fail_fast=False),
                                      callbacks=[progress_lines(tune, len(todo), show,
                                                                _trial_label)],
                                      verbose=0),
        )
        for result in tuner.fit():
            reason = failure_reason(result)
            if reason is not None:
                errors[result.config["trial"]["name"]] = reason
    return errors


@contextlib.contextmanager
def ray_started(root: Path, address: Optional[str], num_cpus: Optional[int],
                num_gpus: Optional[int]):
    """Start a local Ray (stopping the processes a killed driver of this sweep left) or join
    the cluster at ``address``; shut down on exit."""
    ray, _ = require_ray()
    init = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    if address:
        init["address"] = address
    else:
        init.update(num_cpus=num_cpus, num_gpus=num_gpus)
        stop_orphaned_ray(root)
    try:
        ray.init(**init)
    except Exception as exc:  # connection errors come in many types
        raise UserError(f"could not start or join Ray ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not address:
        record_ray_processes(root)
    try:
        yield ray
    finally:
        ray.shutdown()
        (root / RAY_PROCESSES).unlink(missing_ok=True)


def failure_reason(result) -> Optional[str]:
    """Why a trial failed (``None``: it did not): the reason its failing command reported
    (:data:`FAILED`), else the last line of Ray's error (a worker or node lost once more than
    the retries allow)."""
    if (result.metrics or {}).get(FAILED):
        return result.metrics[FAILED]
    if result.error is not None:
        return str(result.error).strip().splitlines()[-1][:300]
    return None


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


def run_trial(config: dict, execute: Callable[[list[str]], int]) -> None:
    """A Ray Tune function trainable: run a trial's ``rimrl`` commands in this worker through
    ``execute`` (the CLI's ``main``, handed down by the caller: this package sits below the
    CLI), their whole output (tracebacks included) appended to ``RUN_DIR/trial.log``. A
    failing command ends the trial with its reason reported as a result (:data:`FAILED`)
    and left in ``RUN_DIR/trial_failed.txt``: only a lost worker or node is an error, the
    kind Ray retries."""
    import traceback

    from ray import tune

    from rimrl.runs import RunSummary

    spec = config["trial"]
    run_dir = Path(spec["run_dir"])
    start_attempt(run_dir)
    for argv in attempt_commands(spec["commands"], run_dir):
        with open(run_dir / TRIAL_LOG, "a") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):
            print(f"$ rimrl {' '.join(argv)}", flush=True)
            try:
                code = execute(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
            except Exception:  # a bug: its traceback belongs in the trial's log
                traceback.print_exc()
                code = 1
        if code != 0:
            tune.report({FAILED: command_failed(run_dir)})
            return
    summary = RunSummary.read(run_dir)
    tune.report({"timesteps": summary.timesteps, "final_score": summary.mean_recent_score})


def start_attempt(run_dir: Path) -> None:
    """A new attempt of a trial: its folder, no failure marker of an earlier one, and a
    line in its log naming the Ray node it runs on (on a cluster, where to look)."""
    import socket

    import ray

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_MARKER).unlink(missing_ok=True)
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "(none)"
    with open(run_dir / TRIAL_LOG, "a") as log:
        log.write(f"# attempt on Ray node {node} ({socket.gethostname()})\n")


def command_failed(run_dir: Path) -> str:
    """Record why a trial's command failed (the last line of its log) in
    ``trial_failed.txt``; returns that line."""
    reason = last_line(run_dir / TRIAL_LOG)
    (run_dir / FAILED_MARKER).write_text(reason + "\n")
    return reason


def attempt_commands(commands: list[list[str]], run_dir: Path) -> list[list[str]]:
    """The trial's commands for this attempt: a ``train --run-dir`` planned before the run
    existed becomes ``train --resume`` once it does (Ray retrying the trial after its node
    was lost, or a run that started before a crash), so the attempt continues the run."""
    if not (run_dir / META_FILE).is_file():
        return commands
    return [["train", argv[1], "--resume", str(run_dir), "--no-progress"]
            if argv[0] == "train" and "--run-dir" in argv else argv for argv in commands]


def record_ray_processes(root: Path) -> None:
    """Write the PIDs of the local Ray processes this driver started (``RAY_PROCESSES``), so
    that a re-run after the driver was killed (kill -9 leaves raylet and the GCS server
    running) can stop them."""
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


def progress_lines(tune, total: int, enabled: bool, label: Callable):
    """A Tune callback printing one line whenever a trial starts, finishes or fails, with
    the counts of trials done, running and failed; ``label(trial)`` names a trial."""

    class SweepProgress(tune.Callback):
        def __init__(self):
            self.running, self.done, self.failed = set(), 0, 0

        def _line(self, trial, event: str) -> None:
            say(f"  {label(trial)}: {event} ({self.done} done, {len(self.running)} "
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
