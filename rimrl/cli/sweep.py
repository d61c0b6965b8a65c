"""``rimrl sweep SWEEP.yaml``: a grid or a search of training runs on Ray Tune (planning in
:mod:`rimrl.sweeps.plan` and :mod:`rimrl.sweeps.search`, running in
:mod:`rimrl.sweeps.ray_runner` and :mod:`rimrl.sweeps.tuning`). Re-running the same sweep
skips finished trials and resumes interrupted ones."""

from __future__ import annotations

import functools
import itertools
import sys
from pathlib import Path
from typing import Callable

from rimrl.cli.common import add_progress_args
from rimrl.runs import SWEEP_STATUS

#: trials ``--dry-run`` lists before it says how many more there are
DRY_RUN_LINES = 50


def register(commands, execute: Callable[[list[str]], int]) -> None:
    """``rimrl sweep``; ``execute`` runs one ``rimrl`` command line in a trial's worker (the
    CLI's ``main``, passed in so that this module never imports its own package)."""
    p = commands.add_parser("sweep", help="run a grid, or a search with early stopping "
                                          "(Optuna, ASHA), of trainings on Ray Tune")
    p.add_argument("sweep_file", type=Path, metavar="SWEEP.yaml")
    p.add_argument("--address", help="join this Ray cluster (e.g. ray://head:10001 or auto) "
                                     "instead of starting a local one")
    p.add_argument("--num-cpus", type=int, help="local Ray: cores to use (default: all)")
    p.add_argument("--num-gpus", type=int, help="local Ray: GPUs to use (default: all)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the trials and what each needs, check every setting, run "
                        "nothing")
    add_progress_args(p)
    p.set_defaults(handler=functools.partial(run, execute=execute))


def run(args, execute: Callable[[list[str]], int]) -> int:
    from rimrl.sweeps.plan import (iter_trials, load_sweep, sweep_learner, trial_commands,
                                   validate_sweep, write_status)
    from rimrl.sweeps.ray_runner import run_on_ray

    sweep = load_sweep(args.sweep_file)
    sweep_learner(sweep)
    if sweep.search is not None:
        return run_search_sweep(args, sweep)
    if args.dry_run:  # the first lines at once, then the check of every setting
        print(f"sweep {sweep.name}: {sweep.size()} trials in {sweep.root}", flush=True)
        for t in itertools.islice(iter_trials(sweep), DRY_RUN_LINES):
            steps = "; ".join("rimrl " + " ".join(c[:2]) for c in trial_commands(t, sweep))
            print(f"  {t.name}: {t.status}" + (f" -> {steps}" if steps else ""), flush=True)
        if sweep.size() > DRY_RUN_LINES:
            print(f"  ... and {sweep.size() - DRY_RUN_LINES} more", flush=True)
        print(f"checked {validate_sweep(sweep)} distinct settings: every value of every key")
        return 0
    validate_sweep(sweep)
    trials = list(iter_trials(sweep))
    todo = [t for t in trials if t.status != "done"]
    print(f"sweep {sweep.name}: {len(trials)} trials in {sweep.root}; "
          + ", ".join(f"{sum(t.status == s for t in trials)} {s}"
                      for s in ("new", "failed", "interrupted", "trained", "done")))
    if not todo:
        write_status(sweep, trials, {})
        print("nothing to do: every trial is done")
        return 0
    errors = run_on_ray(sweep, todo, execute, address=args.address, num_cpus=args.num_cpus,
                        num_gpus=args.num_gpus, show=not args.quiet)
    trials = list(iter_trials(sweep))  # re-read what the trials left behind
    status = write_status(sweep, trials, errors)
    for t in trials:
        print(f"  {t.name}: {t.status}" + (f" FAILED: {errors[t.name]}" if t.name in errors
                                            else ""))
    print(f"status: {status}; compare with: rimrl compare {sweep.root}")
    if errors:
        print(f"rimrl: {len(errors)} of {len(todo)} trials failed; re-run the sweep to retry "
              "them", file=sys.stderr)
        return 1
    return 0


def run_search_sweep(args, sweep) -> int:
    """A sweep file with a ``search:`` section: sample, stop early, write the best config."""
    from rimrl.sweeps.plan import validate_sweep
    from rimrl.sweeps.tuning import describe, print_outcome, run_search

    if args.dry_run:
        print(describe(sweep), flush=True)
        print(f"checked {validate_sweep(sweep)} distinct settings: both ends of every range, "
              "every choice")
        return 0
    validate_sweep(sweep)
    print(describe(sweep), flush=True)
    outcome = run_search(sweep, address=args.address, num_cpus=args.num_cpus,
                         num_gpus=args.num_gpus, show=not args.quiet)
    print_outcome(outcome, sweep.search.metric)
    print(f"status: {sweep.root / SWEEP_STATUS}; compare with: rimrl compare {sweep.root}")
    failed = sum(t["status"] == "failed" for t in outcome.trials)
    if outcome.best is None:
        print("rimrl: no trial finished its budget; nothing to call best (see the trials' "
              "trial.log)", file=sys.stderr)
        return 1
    if failed:
        print(f"rimrl: {failed} of {len(outcome.trials)} trials failed", file=sys.stderr)
        return 1
    return 0
