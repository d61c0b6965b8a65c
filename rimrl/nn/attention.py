"""Small attention helpers shared by RIMs and NFM."""

from __future__ import annotations

import torch


def topk_mask(scores: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Boolean mask marking the ``k`` largest entries of ``scores`` along ``dim``.

    Exactly ``k`` entries are marked per slice, also when scores tie (ties go to the lower
    index, as ``torch.topk`` orders them).
    """
    if k >= scores.shape[dim]:
        return torch.ones_like(scores, dtype=torch.bool)
    index = scores.topk(k, dim=dim).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(dim, index, True)
