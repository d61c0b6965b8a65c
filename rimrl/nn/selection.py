"""How much RIMs' choice of active modules depends on the input (thesis 8.2: RIMs compete
to read the input; if the same k_A RIMs win whatever the input, the competition does
nothing).

The measures work on boolean activity masks ``(..., K)``: each position's active set is one
of C(K, k_A) sets.

- ``set_entropy_bits``: entropy of the distribution of active sets over the positions
  (0: always the same set; at most log2 C(K, k_A));
- ``top_set_share``: the share of positions on the most frequent set (1: one set only);
- ``distinct_sets``: how many sets occur;
- ``start_set_entropy_bits``: the entropy over positions where the state is zero (episode
  starts). There the active set is a function of the observation alone, so over distinct
  observations it *is* the mutual information between the active set and the observation;
  with a bias-free query it is exactly 0 (every RIM has the query 0: a tie).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def set_codes(active) -> np.ndarray:
    """One integer per position naming its active set (bit k set: RIM k active)."""
    mask = np.asarray(active, dtype=bool)
    weights = 1 << np.arange(mask.shape[-1], dtype=np.int64)
    return (mask.astype(np.int64) * weights).sum(-1).ravel()


def entropy_bits(codes) -> float:
    """Plug-in entropy, in bits, of the values in ``codes``."""
    counts = np.array(list(Counter(np.asarray(codes).ravel().tolist()).values()), dtype=float)
    if counts.sum() == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: one value gives 0.0, not -0.0


def max_entropy_bits(num_units: int, k_active: int) -> float:
    """log2 C(K, k_A): the entropy of a uniform choice among the possible active sets."""
    return math.log2(math.comb(num_units, k_active))


def activity_record(active, starts=None) -> dict[str, float]:
    """What rimrl logs about RIM activity (SB3 callback and the copying task alike), keyed
    as logged under ``rims/``: ``active_fraction/<k>`` (share of positions RIM k was
    active), ``active_fraction_mean`` and the :func:`selection_stats`."""
    mask = np.asarray(active, dtype=bool)
    fractions = mask.reshape(-1, mask.shape[-1]).mean(0)
    record = {f"active_fraction/{k}": float(v) for k, v in enumerate(fractions)}
    record["active_fraction_mean"] = float(fractions.mean())
    record.update(selection_stats(mask, starts))
    return record


def selection_stats(active, starts=None) -> dict[str, float]:
    """The measures above for masks ``active`` (..., K); ``starts`` (same leading shape,
    bool) marks the positions with a zero state (adds ``start_set_entropy_bits``)."""
    codes = set_codes(active)
    counts = Counter(codes.tolist())
    stats = {"set_entropy_bits": entropy_bits(codes),
             "top_set_share": max(counts.values()) / len(codes) if len(codes) else 0.0,
             "distinct_sets": float(len(counts))}
    if starts is not None:
        at_start = codes[np.asarray(starts, dtype=bool).ravel()]
        if len(at_start):
            stats["start_set_entropy_bits"] = entropy_bits(at_start)
    return stats
