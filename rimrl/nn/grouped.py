"""Per-module ("grouped") parameters applied to all modules at once.

RIMs give every module its own weights (thesis section 8.2.3, "each RIM has its own separate
parameters"). Instead of a Python loop over modules, or one dense matrix re-masked into
block-diagonal form at every step (what made the official code ~40x slower than an LSTM),
weights are stored as one tensor with a leading module axis and applied with a single
batched matrix multiply (:func:`grouped_linear`).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn


def grouped_parameter(num_groups: int, in_features: int, out_features: int) -> nn.Parameter:
    """A (num_groups, in_features, out_features) weight, initialised like ``nn.Linear``."""
    bound = 1.0 / math.sqrt(in_features)
    return nn.Parameter(torch.empty(num_groups, in_features, out_features).uniform_(-bound, bound))


def grouped_bias(num_groups: int, fan_in: int, out_features: int) -> nn.Parameter:
    """A (num_groups, 1, out_features) bias, broadcast over the batch axis."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(num_groups, 1, out_features).uniform_(-bound, bound))


def grouped_linear(h: torch.Tensor, weight: torch.Tensor,
                   bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Every group's own linear map at once: ``h @ weight (+ bias)`` for h (G, B, in), weight
    (G, in, out) and bias (G, 1, out), as one ``bmm`` (one ``baddbmm`` with the bias)."""
    return torch.bmm(h, weight) if bias is None else torch.baddbmm(bias, h, weight)
