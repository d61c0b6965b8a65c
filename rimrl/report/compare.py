"""The numbers of ``rimrl compare``: learning curves with 95% bands over seeds, final
scores, the thesis' Fig. 5 relative improvement, aggregate IQM and optimality gap with
stratified-bootstrap intervals, and distractor splits side by side with paired differences.
Seed-level intervals are Student-t below ``T_BELOW`` seeds (:func:`seed_mean_ci`). Every number shown in
the report comes from :func:`build_report`'s dictionary, which is also written as JSON."""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import numpy as np

from rimrl.report.collect import Run
from rimrl.report.stats import (human_normalized, iqm, optimality_gap, paired_difference,
                                relative_improvement, seed_mean_ci, stratified_bootstrap_ci)


def group(runs: list[Run]) -> dict[str, dict[str, list[Run]]]:
    """runs[env][method] -> runs sorted by seed."""
    out: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in sorted(runs, key=lambda r: (r.env, r.method, r.seed, str(r.path))):
        out[run.env][run.method].append(run)
    return {env: dict(methods) for env, methods in sorted(out.items())}


def curve(runs: list[Run], frames_per_step: int, points: int, reps: int) -> dict:
    """Mean learning curve over seeds on a common grid of env frames (the range every seed
    covers), with a 95% band over seeds (:func:`seed_mean_ci`; none for one run: ``None``)."""
    start = max(r.steps[0] for r in runs)
    stop = min(r.steps[-1] for r in runs)
    grid = np.linspace(start, stop, points) if stop > start else np.array([stop])
    values = np.stack([np.interp(grid, r.steps, r.scores) for r in runs])
    mean, low, high = seed_mean_ci(values, reps=reps)
    single = len(runs) == 1
    return {"frames": (grid * frames_per_step).tolist(), "mean": np.atleast_1d(mean).tolist(),
            "ci95_low": None if single else np.atleast_1d(low).tolist(),
            "ci95_high": None if single else np.atleast_1d(high).tolist(),
            "seeds": [r.seed for r in runs]}


def final_scores(runs: list[Run], reps: int) -> dict:
    """Mean final score over seeds with its 95% interval over seeds; one run has
    no interval (``ci95`` is ``None``): a single seed says nothing about the spread."""
    scores = np.array([r.final_score for r in runs])
    mean, low, high = seed_mean_ci(scores, reps=reps)
    return {"mean": float(mean), "n": len(runs),
            "ci95": None if len(runs) == 1 else [float(low), float(high)],
            "scores": scores.tolist(), "seeds": [r.seed for r in runs],
            "sources": sorted({r.score_source.split(" (")[0] for r in runs})}


def evaluation_points(run: Run, split: str) -> dict[int, float]:
    """Step -> success of ``run``'s evaluations on ``split``, each row at the multiple of
    ``eval.every`` it was made for. A row is made at the end of the first rollout at or past
    a multiple, so a run resumed from a checkpoint taken between rollout ends evaluates at
    other steps than an uninterrupted one (e.g. 400,352 against 401,408); the multiple
    (400,000) puts both on one grid. A second row for the same multiple (the evaluation at
    the end of training) keeps its own step; without ``eval_every``, every row does."""
    points: dict[int, float] = {}
    for row in run.evaluations:
        if row["split"] != split:
            continue
        step = due = row["step"]
        if run.eval_every:
            due = step // run.eval_every * run.eval_every
        points[step if due in points else due] = row["success_rate"]
    return points


def generalization(runs: list[Run], frames_per_step: int, reps: int) -> dict:
    """Per split: success over training from the runs' evaluations during training (the
    thesis' Fig. 4 shape), mean over seeds at the evaluation steps every seed has
    (:func:`evaluation_points`), with a 95% band over seeds (``None`` for one
    run)."""
    splits = [s for s in dict.fromkeys(r["split"] for run in runs for r in run.evaluations)]
    out = {}
    for split in splits:
        by_seed = [evaluation_points(run, split) for run in runs]
        if not all(by_seed):
            continue
        steps = sorted(set.intersection(*(set(d) for d in by_seed)))
        if not steps:
            continue
        values = np.array([[d[s] for s in steps] for d in by_seed])
        mean, low, high = seed_mean_ci(values, reps=reps)
        single = len(runs) == 1
        out[split] = {"frames": [s * frames_per_step for s in steps],
                      "success_mean": np.atleast_1d(mean).tolist(),
                      "ci95_low": None if single else np.atleast_1d(low).tolist(),
                      "ci95_high": None if single else np.atleast_1d(high).tolist(),
                      "seeds": [r.seed for r in runs]}
    return out


def build_report(runs: list[Run], frames_per_step: dict[str, int],
                 reference: dict[str, tuple[float, float]], method: str = "rims",
                 baseline: str = "lstm", points: int = 50, reps: int = 2000) -> dict:
    """Everything the report shows.

    Args:
        runs: the runs (:func:`rimrl.report.collect.find_runs`).
        frames_per_step: env frames per agent step for each env (4 for Atari's frame skip).
        reference: (random, human) scores per env for human normalization; envs without one
            are aggregated on raw scores.
        method, baseline: the two methods of the relative-improvement chart.
        points: grid points of the learning curves.
        reps: bootstrap replicates.
    """
    grouped = group(runs)
    methods = sorted({r.method for r in runs})
    report: dict = {
        "runs": [{"path": str(r.path), "env": r.env, "method": r.method, "seed": r.seed,
                  "final_score": r.final_score} for r in runs],
        "methods": methods,
        "curves": {env: {m: curve(rs, frames_per_step.get(env, 1), points, reps)
                         for m, rs in by_method.items()} for env, by_method in grouped.items()},
        "final_scores": {env: {m: final_scores(rs, reps) for m, rs in by_method.items()}
                         for env, by_method in grouped.items()},
    }
    report["relative_improvement"] = _relative(report["final_scores"], method, baseline, reps)
    report["aggregate"] = _aggregate(grouped, reference, methods, reps)
    report["distractors"] = _distractors(grouped)
    report["paired"] = _paired(grouped, method, baseline, reps)
    report["generalization"] = _generalization(grouped, frames_per_step, reps)
    report["selection"] = _selection(grouped)
    report["warnings"] = _warnings(grouped)
    return report


def _generalization(grouped: dict, frames_per_step: dict, reps: int) -> dict:
    """env -> method -> split -> curve, for the groups whose runs evaluated during training."""
    out: dict = {}
    for env, by_method in grouped.items():
        for m, rs in by_method.items():
            curves = generalization(rs, frames_per_step.get(env, 1), reps)
            if curves:
                out.setdefault(env, {})[m] = curves
    return out


def _warnings(grouped: dict) -> list[str]:
    from rimrl.provenance import differences

    warnings = []
    single = [f"{env} / {m}" for env, by in grouped.items() for m, rs in by.items()
              if len(rs) == 1]
    if single:
        warnings.append(f"{len(single)} group(s) rest on a single run and have no interval "
                        f"over seeds (n=1): {', '.join(single)}; train more seeds before "
                        "drawing conclusions")
    for env, by in grouped.items():
        for m, rs in by.items():
            sources = sorted({r.score_source.split(" (")[0] for r in rs})
            if len(sources) > 1:
                warnings.append(f"{env} / {m}: its final scores are of different kinds "
                                f"({'; '.join(sources)}) and are averaged together; evaluate "
                                f"every run the same way (e.g. --eval-every for all)")
            differ = differences([r.provenance or {} for r in rs])
            if differ:
                warnings.append(f"{env} / {m}: its runs come from different code or libraries ("
                                + "; ".join(f"{k}: {', '.join(v)}" for k, v in differ.items())
                                + "); compare runs of one version")
    return warnings


def _relative(finals: dict, method: str, baseline: str, reps: int = 2000) -> dict:
    both = {env: by for env, by in finals.items() if method in by and baseline in by}
    per_env = {env: relative_improvement(by[method]["mean"], by[baseline]["mean"])
               for env, by in both.items()}
    intervals = {env: relative_interval(by[method]["scores"], by[baseline]["scores"], reps)
                 for env, by in both.items()}
    seeds = {env: {method: by[method]["n"], baseline: by[baseline]["n"]}
             for env, by in both.items()}
    return {"method": method, "baseline": baseline, "per_env": per_env, "seeds": seeds,
            "ci95": intervals,
            "formula": f"({method} - {baseline}) / |{baseline}| of the mean final score"}


def relative_interval(method: list, baseline: list, reps: int) -> Optional[list]:
    """A 95% percentile bootstrap interval of the relative improvement, resampling each
    method's seeds independently; ``None`` when either side has one run (no spread)."""
    if len(method) < 2 or len(baseline) < 2:
        return None
    rng = np.random.default_rng(0)
    a, b = np.asarray(method, float), np.asarray(baseline, float)
    draws = [relative_improvement(a[rng.integers(0, len(a), len(a))].mean(),
                                  b[rng.integers(0, len(b), len(b))].mean()) for _ in range(reps)]
    draws = np.asarray(draws)[np.isfinite(draws)]
    return [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] \
        if len(draws) else None


def _aggregate(grouped: dict, reference: dict, methods: list[str], reps: int) -> dict:
    """IQM and optimality gap per method over the envs every method ran on."""
    envs = [env for env, by in grouped.items() if all(m in by for m in methods)]
    normalized = {env: env in reference for env in envs}
    per_method = {}
    for m in methods:
        scores = []
        for env in envs:
            raw = np.array([r.final_score for r in grouped[env][m]])
            scores.append(human_normalized(raw, *reference[env]) if normalized[env] else raw)
        if not scores:
            continue
        metrics = {"iqm": list(stratified_bootstrap_ci(scores, iqm, reps)),
                   "optimality_gap": list(stratified_bootstrap_ci(scores, optimality_gap, reps))}
        if all(len(s) == 1 for s in scores):  # one run per env: no spread to resample
            metrics = {k: [v[0], None, None] for k, v in metrics.items()}
        per_method[m] = {**metrics, "scores": {env: s.tolist() for env, s in zip(envs, scores)}}
    return {"envs": envs, "human_normalized": normalized, "per_method": per_method,
            "note": "point estimate, 95% stratified-bootstrap interval (low, high)",
            "unit": ("human-normalized score" if envs and all(normalized.values())
                     else "raw score" if not any(normalized.values())
                     else "score (human-normalized on Atari, raw elsewhere)")}


#: per-run quantities of a distractor evaluation, and the key of each one's episode interval
_SPLIT_VALUES = {"success_rate": "success_ci95", "return_mean": "return_ci95",
                 "score_drop_fraction": None}


def _distractors(grouped: dict) -> dict:
    """Per env, split and method: each evaluated run with its own episode-level 95% interval
    (Wilson for success rates, bootstrap over episodes for returns) and, over the runs, the
    mean with the spread over seeds (sample sd, min, max; none for one run)."""
    out: dict = {}
    for env, by_method in grouped.items():
        table: dict = defaultdict(dict)
        for m, rs in by_method.items():
            evaluated = [(r.seed, r.distractors) for r in rs if r.distractors]
            if not evaluated:
                continue
            for split in evaluated[0][1]["splits"]:
                rows = [(seed, d["splits"][split]) for seed, d in evaluated
                        if split in d["splits"]]
                entry: dict = {"runs": len(rows), "per_run": [
                    {"seed": seed, "episodes": row.get("episodes"),
                     **{k: row.get(k) for k in _SPLIT_VALUES},
                     **{ci: row.get(ci) for ci in _SPLIT_VALUES.values() if ci}}
                    for seed, row in rows]}
                for key in _SPLIT_VALUES:
                    vals = np.array([row[key] for _, row in rows if row.get(key) is not None])
                    if len(vals):
                        entry[key] = {"mean": float(vals.mean()),
                                      "sd": float(vals.std(ddof=1)) if len(vals) > 1 else None,
                                      "min": float(vals.min()), "max": float(vals.max())}
                table[split][m] = entry
        if table:
            out[env] = dict(table)
    return out


def _paired(grouped: dict, method: str, baseline: str, reps: int) -> dict:
    """Per env and split: ``method - baseline`` success on the distractor evaluations, paired
    by seed over the seeds both have (:func:`paired_difference`: t-interval below 10 seeds,
    sign-flip p-value). Envs where fewer than two seeds pair are left out."""
    out: dict = {}
    for env, by_method in grouped.items():
        if method not in by_method or baseline not in by_method:
            continue
        a = {r.seed: r.distractors["splits"] for r in by_method[method] if r.distractors}
        b = {r.seed: r.distractors["splits"] for r in by_method[baseline] if r.distractors}
        seeds = sorted(set(a) & set(b))
        if len(seeds) < 2:
            continue
        splits = [s for s in a[seeds[0]] if all(s in a[k] and s in b[k] for k in seeds)]
        out[env] = {split: {**paired_difference(
            [a[k][split]["success_rate"] for k in seeds],
            [b[k][split]["success_rate"] for k in seeds], reps=reps), "seeds": seeds}
            for split in splits}
    return {"method": method, "baseline": baseline, "per_env": out}


def _selection(grouped: dict) -> dict:
    """Per env and method, for each run with a RIM activation record (env 0's last logged
    rollout): how much the choice of active RIMs depends on the input
    (:func:`rimrl.nn.selection.selection_stats`; episode starts follow the recorded ends)."""
    from rimrl.nn.selection import selection_stats

    out: dict = {}
    for env, by_method in grouped.items():
        for m, rs in by_method.items():
            rows = []
            for r in rs:
                if r.activation is None:
                    continue
                masks = np.asarray(r.activation, dtype=bool).T  # (steps, RIMs)
                starts = None
                if r.episode_ends is not None:
                    starts = np.concatenate([[False], np.asarray(r.episode_ends, bool)[:-1]])
                rows.append({"seed": r.seed, **selection_stats(masks, starts)})
            if rows:
                out.setdefault(env, {})[m] = rows
    return out


def activation_runs(runs: list[Run]) -> list[Run]:
    """One run per env and method with a RIM activation record (the lowest seed)."""
    seen, chosen = set(), []
    for r in sorted(runs, key=lambda r: (r.env, r.method, r.seed)):
        if r.activation is not None and (r.env, r.method) not in seen:
            seen.add((r.env, r.method))
            chosen.append(r)
    return chosen


def format_number(x: Optional[float]) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
