"""``rimrl compare RUNS_OR_SWEEP_DIR``: learning curves, final scores, the thesis' Fig. 5
chart, aggregate IQM / optimality gap, distractor splits and RIM activation patterns, as PNG
figures, a Markdown report and the JSON of every number."""

from __future__ import annotations

import sys
from pathlib import Path

from rimrl.cli.common import add_progress_args
from rimrl.config import require_between
from rimrl.progress import shows_bar

#: the largest ``--points`` and ``--reps``: bigger ones only exhaust memory
MAX_POINTS = 10_000
MAX_REPS = 100_000


def register(commands) -> None:
    p = commands.add_parser("compare", help="compare runs (e.g. a sweep): curves, tables, "
                                            "aggregate statistics")
    p.add_argument("runs_dir", type=Path, metavar="RUNS_OR_SWEEP_DIR")
    p.add_argument("--out", type=Path, help="report directory (default: RUNS_DIR/report)")
    p.add_argument("--by", help="config key naming a run's method (default: core.name for "
                                "PPO runs, policy.encoder for IQN runs)")
    p.add_argument("--method", default="rims", help="method of the relative-improvement chart")
    p.add_argument("--baseline", default="lstm", help="its baseline")
    p.add_argument("--points", type=int, default=50, help="grid points per learning curve")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap replicates")
    add_progress_args(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from rimrl.report.compare import build_report
    from rimrl.report.figures import draw_report
    from rimrl.report.markdown import write_markdown
    from rimrl.report.collect import find_runs
    from rimrl.runs import REPORT_JSON, write_json

    require_between("--points", args.points, 2, MAX_POINTS, "a curve's grid")
    require_between("--reps", args.reps, 1, MAX_REPS,
                    "bootstrap replicates: beyond it the interval no longer moves")
    from rimrl import learners

    grouping = {l.name: l.group_key for l in learners.all_learners() if l.group_key}
    runs = find_runs(args.runs_dir, grouping, args.by, show=shows_bar(args))
    out = args.out or args.runs_dir / "report"
    from rimrl.sb3.environments import env_references

    frames, reference = env_references(sorted({r.env for r in runs}))
    report = build_report(runs, frames, reference, args.method, args.baseline, args.points,
                          args.reps)
    figures = draw_report(report, runs, frames, out)
    write_json(out / REPORT_JSON, report)
    md = write_markdown(report, figures, out)
    print(f"{len(runs)} runs, {len(report['curves'])} envs, methods "
          f"{', '.join(report['methods'])}")
    for m, a in report["aggregate"]["per_method"].items():
        point, low, high = a["iqm"]
        interval = "(n=1, no interval)" if low is None else f"[{low:.3g}, {high:.3g}]"
        print(f"  {m}: IQM {point:.3g} {interval}")
    paired = report["paired"]
    for env, splits in paired["per_env"].items():
        print(f"  {env}: {paired['method']} - {paired['baseline']} success, paired over "
              f"seeds [95% t-interval] (sign-flip p): " + "; ".join(
                  f"{split} {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] "
                  f"(p {d['p']:.2f})" for split, d in splits.items()))
    for warning in report["warnings"]:
        print(f"rimrl: warning: {warning}", file=sys.stderr)
    print(f"report: {md}\nnumbers: {out / REPORT_JSON}")
    return 0

