"""Confidence intervals for evaluation tables."""

from __future__ import annotations

import math
from typing import Sequence

Z95 = 1.959963984540054


def mean_ci(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """Mean and the normal-approximation 95% interval ``mean +- z * s / sqrt(n)``.

    ``s`` is the sample standard deviation (n - 1); with one value the interval is the point.
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return mean, mean - half, mean + half


def wilson_ci(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Success rate and its Wilson score 95% interval (sound near 0 and 1, unlike +-)."""
    if n == 0:
        raise ValueError("no trials")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)
