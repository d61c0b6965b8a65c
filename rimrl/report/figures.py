"""Figures of ``rimrl compare`` (matplotlib, no display needed): learning curves with
bootstrap bands, the Fig. 5-style relative-improvement bars, aggregate intervals, RIM
activation patterns (thesis Fig. 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def x_label(frames_per_step: int) -> str:
    """What a curve's x axis counts: env frames where an agent step is several (Atari's
    frame skip), else agent steps."""
    if frames_per_step > 1:
        return f"environment frames ({frames_per_step} per agent step)"
    return "agent steps (env steps over all envs)"


def learning_curves(curves: dict, env: str, path: Path, frames_per_step: int = 1) -> Path:
    """One panel: mean raw score against env frames per method, 95% band over seeds."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, c in sorted(curves.items()):
        frames = np.array(c["frames"])
        n = len(c["seeds"])
        ax.plot(frames, c["mean"], label=f"{method} ({n} seed{'s' * (n > 1)}"
                                          f"{', no band' if c['ci95_low'] is None else ''})")
        if c["ci95_low"] is not None:
            ax.fill_between(frames, c["ci95_low"], c["ci95_high"], alpha=0.25)
    ax.set(title=env, xlabel=x_label(frames_per_step),
           ylabel="raw score (mean of the last 100 training episodes)")
    ax.legend()
    return _save(fig, path)


def generalization_curves(by_method: dict, env: str, path: Path, frames_per_step: int = 1) -> Path:
    """The thesis' Fig. 4 shape: one panel per split, success rate over training per method
    (evaluations during training), 95% band over seeds."""
    plt = _pyplot()
    splits = list(dict.fromkeys(s for curves in by_method.values() for s in curves))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.5 * len(splits), 3.8), squeeze=False,
                             sharey=True)
    for ax, split in zip(axes[0], splits):
        for method, curves in sorted(by_method.items()):
            c = curves.get(split)
            if c is None:
                continue
            n = len(c["seeds"])
            ax.plot(c["frames"], c["success_mean"], marker=".",
                    label=f"{method} ({n} seed{'s' * (n > 1)}"
                          f"{', no band' if c['ci95_low'] is None else ''})")
            if c["ci95_low"] is not None:
                ax.fill_between(c["frames"], c["ci95_low"], c["ci95_high"], alpha=0.25)
        ax.set(title=f"{env}: {split}", xlabel=x_label(frames_per_step), ylim=(-0.02, 1.02))
        ax.legend(fontsize="small")
    axes[0][0].set_ylabel("success rate (evaluation episodes)")
    return _save(fig, path)


def relative_bars(relative: dict, path: Path) -> Path:
    """Fig. 5 of the thesis: (method - baseline) / |baseline| per env, sorted."""
    plt = _pyplot()
    items = sorted(relative["per_env"].items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(items) + 2), 4))
    names = [k for k, _ in items]
    values = [100 * v for _, v in items]
    intervals = [relative.get("ci95", {}).get(k) for k in names]
    # 95% bootstrap intervals over seeds; a group of one run has none: its bar is hatched
    errors = np.array([[v - 100 * ci[0], 100 * ci[1] - v] if ci else [0, 0]
                       for v, ci in zip(values, intervals)]).T
    bars = ax.bar(range(len(items)), values, yerr=errors, capsize=4,
                  color=["tab:green" if v >= 0 else "tab:red" for v in values])
    for bar_, ci in zip(bars, intervals):
        if ci is None:
            bar_.set_hatch("//")
            bar_.set_alpha(0.5)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(items)), names, rotation=60, ha="right")
    ax.set(ylabel=f"({relative['method']} - {relative['baseline']}) / |{relative['baseline']}| "
                  "(%)", title=f"{relative['method']} vs {relative['baseline']} (95% CI over "
                  "seeds; hatched: n=1)")
    return _save(fig, path)


def aggregate_intervals(aggregate: dict, path: Path) -> Path:
    """IQM and optimality gap per method: point and 95% stratified-bootstrap interval."""
    plt = _pyplot()
    per = aggregate["per_method"]
    methods = sorted(per)
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.6 * len(methods) + 1.5))
    for ax, metric in zip(axes, ("iqm", "optimality_gap")):
        for i, m in enumerate(methods):
            point, low, high = per[m][metric]
            if low is not None:  # one run per env: a point without an interval
                ax.plot([low, high], [i, i], linewidth=6, alpha=0.5)
            ax.plot([point], [i], "k|", markersize=14)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_title("IQM" if metric == "iqm" else "optimality gap")
        ax.set_xlabel(aggregate.get("unit", "score"))
    return _save(fig, path)


def activation_pattern(activation: np.ndarray, title: str, path: Path,
                       episode_ends: np.ndarray | None = None) -> Path:
    """Which RIMs were active (rows) at each step (columns), like the thesis' Fig. 2; red
    lines where an episode ended."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.35 * activation.shape[0] + 1))
    ax.imshow(activation, aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
    for step in np.flatnonzero(episode_ends) if episode_ends is not None else ():
        ax.axvline(step + 0.5, color="tab:red", linewidth=1.5)
    ax.set(xlabel="step", ylabel="RIM", title=title)
    ax.set_yticks(range(activation.shape[0]))
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def draw_report(report: dict, runs: list, frames: dict, out: Path) -> dict:
    """Every figure of a ``rimrl compare`` report under ``out/figures`` (names from
    :func:`rimrl.runs.figure_path`); returns ``{key: path}`` and records the paths, relative
    to ``out``, in ``report["figures"]``."""
    from rimrl.report.compare import activation_runs
    from rimrl.runs import figure_path

    figures = {}
    for env, curves in report["curves"].items():
        figures["curve", env] = learning_curves(curves, env, figure_path(out, "curve", env),
                                                frames.get(env, 1))
    for env, by_method in report["generalization"].items():
        figures["generalization", env] = generalization_curves(
            by_method, env, figure_path(out, "generalization", env), frames.get(env, 1))
    if report["relative_improvement"]["per_env"]:
        figures["relative"] = relative_bars(report["relative_improvement"],
                                            figure_path(out, "relative_improvement"))
    if report["aggregate"]["per_method"]:
        figures["aggregate"] = aggregate_intervals(report["aggregate"],
                                                   figure_path(out, "aggregate"))
    for r in activation_runs(runs):
        name = f"{r.env} {r.method} seed {r.seed}"
        figures["activation", name] = activation_pattern(
            r.activation, name, figure_path(out, "activation", name), r.episode_ends)
    report["figures"] = {" ".join(k) if isinstance(k, tuple) else k: str(p.relative_to(out))
                         for k, p in figures.items()}
    return figures
