"""Mixup (Zhang et al., 2018), the pieces shared by all interpolation methods (thesis 4.2).

One mixing coefficient per batch, ``lam ~ Beta(alpha, alpha)``, and one pairing of every
example with a shuffled copy of the batch. Inputs (or hidden states) and one-hot targets are
mixed with the same ``lam``: ``mix(a, b) = lam * a + (1 - lam) * b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass
class MixPlan:
    """One batch's mixing: coefficient ``lam`` and pairing ``perm`` (example i with perm[i])."""

    lam: float
    perm: torch.Tensor


def plan_mix(batch_size: int, alpha: float, generator: Optional[torch.Generator] = None,
             device=None) -> MixPlan:
    """Draw ``lam ~ Beta(alpha, alpha)`` and a random pairing for a batch.

    Args:
        batch_size: examples in the batch.
        alpha: Beta concentration, > 0 (1.0 is uniform; the thesis uses 2.0 on CIFAR/SVHN).
        generator: optional torch generator for reproducibility.
    """
    if not alpha > 0:
        raise ValueError(f"mixup alpha must be positive, got {alpha}")
    # Beta(a, a) from two Gammas, so the draw follows ``generator``
    g1 = torch._standard_gamma(torch.full((1,), float(alpha)), generator=generator)
    g2 = torch._standard_gamma(torch.full((1,), float(alpha)), generator=generator)
    lam = float(g1 / (g1 + g2))
    perm = torch.randperm(batch_size, generator=generator)
    return MixPlan(lam, perm.to(device) if device is not None else perm)


def mix(x: torch.Tensor, plan: MixPlan) -> torch.Tensor:
    """``lam * x + (1 - lam) * x[perm]`` along the batch axis; differentiable in ``x``."""
    return plan.lam * x + (1.0 - plan.lam) * x[plan.perm]


def mixed_targets(y: torch.Tensor, num_classes: int, plan: MixPlan) -> torch.Tensor:
    """Mixed one-hot targets (rows sum to one)."""
    one_hot = F.one_hot(y, num_classes).float()
    return mix(one_hot, plan)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy against soft (probability) targets."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def mixed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, plan: MixPlan) -> torch.Tensor:
    """Cross entropy against the mixed targets: ``lam CE(y) + (1 - lam) CE(y[perm])``."""
    return soft_cross_entropy(logits, mixed_targets(y, logits.shape[-1], plan))
