"""Every statistic rimrl reports, in one module: intervals of one run's evaluation (Wilson
interval of a success rate, bootstrap over episodes), seed-level intervals (Student-t below
:data:`T_BELOW` seeds, bootstrap from there), paired differences with a sign-flip
permutation p-value, and the aggregate metrics
of Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice", the rliable
library): interquartile mean and optimality gap with stratified-bootstrap confidence
intervals.

Scores of one method are a list with one entry per task (game), each an array of per-run
(per-seed) scores; tasks may have different numbers of runs.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

Scores = Sequence[np.ndarray]  # one array of run scores per task

Z95 = 1.959963984540054


def wilson_ci(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Success rate and its Wilson score 95% interval (sound near 0 and 1, unlike +-)."""
    if n == 0:
        raise ValueError("no trials")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean_ci(values: np.ndarray, reps: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean over runs (axis 0) and its percentile-bootstrap interval, resampling runs.

    ``values`` (runs, ...) -> (mean, low, high), each of shape ``values.shape[1:]``. One run
    gives a zero-width interval.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(0)
    if len(values) < 2:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(reps, len(values)))
    means = values[idx].mean(1)
    tail = 100 * (1 - confidence) / 2
    return mean, np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


#: seed-level intervals use Student's t below this many seeds, the percentile bootstrap from
#: here on: at 5 seeds a 95% percentile bootstrap covers only ~83% of the time (its resamples
#: cannot spread wider than the seeds drawn), a t-interval holds its 95% (tested).
T_BELOW = 10


def seed_mean_ci(values: np.ndarray, reps: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and its interval: ``mean +- t_{n-1} * sd / sqrt(n)`` below
    :data:`T_BELOW` seeds, :func:`bootstrap_mean_ci` from there. One seed gives a zero-width
    interval (callers show none)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n >= T_BELOW:
        return bootstrap_mean_ci(values, reps=reps, seed=seed, confidence=confidence)
    mean = values.mean(0)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    half = t.ppf(0.5 + confidence / 2, n - 1) * values.std(0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def sign_flip_p(differences: np.ndarray, reps: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip permutation test of mean difference 0: the
    share of sign patterns whose mean is at least as far from 0 as the observed one. Exact
    (all 2^n patterns) up to 16 pairs, ``reps`` random patterns beyond."""
    d = np.asarray(differences, dtype=np.float64).ravel()
    n = len(d)
    if n == 0:
        raise ValueError("no pairs")
    if n <= 16:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(reps, n))
    means = np.abs(signs @ d) / n
    return float(np.mean(means >= abs(d.mean()) - 1e-12))


def paired_difference(a: Sequence[float], b: Sequence[float], reps: int = 2000,
                      seed: int = 0) -> dict:
    """``a - b`` paired by position (seed): the mean difference, its :func:`seed_mean_ci`
    interval, the sign-flip p-value and how many pairs and which interval."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean, low, high = seed_mean_ci(d, reps=reps, seed=seed)
    return {"mean": float(mean), "n": len(d),
            "ci95": [float(low), float(high)] if len(d) > 1 else None,
            "p": sign_flip_p(d) if len(d) > 1 else None,
            "interval": "t" if len(d) < T_BELOW else "bootstrap"}


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the pooled scores after cutting ``floor(n / 4)`` from
    each end (``scipy.stats.trim_mean(x, 0.25)``, which rliable uses)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    cut = len(x) // 4
    return float(x[cut:len(x) - cut].mean())


def optimality_gap(values: np.ndarray, threshold: float = 1.0) -> float:
    """Mean shortfall below ``threshold`` (human-normalized: 1 = human): mean(max(0, t - x))."""
    x = np.asarray(values, dtype=np.float64).ravel()
    return float(np.maximum(threshold - x, 0.0).mean())


def pooled(scores: Scores) -> np.ndarray:
    return np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in scores])


def stratified_bootstrap_ci(scores: Scores, statistic: Callable[[np.ndarray], float],
                            reps: int = 2000, seed: int = 0,
                            confidence: float = 0.95) -> tuple[float, float, float]:
    """``statistic`` of the pooled scores and its stratified-bootstrap interval: each
    replicate resamples the runs of every task independently, with replacement (tasks are
    the strata), then pools them (rliable's ``StratifiedBootstrap``)."""
    rng = np.random.default_rng(seed)
    point = statistic(pooled(scores))
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in scores]
    stats = np.empty(reps)
    for r in range(reps):
        stats[r] = statistic(np.concatenate([a[rng.integers(0, len(a), len(a))]
                                             for a in arrays]))
    tail = 100 * (1 - confidence) / 2
    return point, float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def human_normalized(score: float, random: float, human: float) -> float:
    """``(score - random) / (human - random)``: 0 = random play, 1 = human."""
    return (score - random) / (human - random)


def relative_improvement(method: float, baseline: float) -> float:
    """The thesis' Fig. 5 bar: ``(method - baseline) / |baseline|`` (inf-free: a zero
    baseline gives nan)."""
    return (method - baseline) / abs(baseline) if baseline != 0 else float("nan")
