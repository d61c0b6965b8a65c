"""Interpolation Consistency Training (Verma et al., 2019; thesis chapter 6).

A student is trained on labelled data (optionally with mixup) and, on unlabelled pairs
``(u_j, u_k)``, to predict at ``Mix_lam(u_j, u_k)`` the mix of a mean teacher's predictions,
``Mix_lam(f_teacher(u_j), f_teacher(u_k))``. The teacher's weights are an exponential moving
average of the student's (decay 0.999) and receive no gradient. The consistency weight ramps
up as ``exp(-5 (1 - t/T)^2)`` over the first ``T`` steps::

    loss = supervised + max_weight * sigmoid_rampup(step, T) * ict_consistency(...)
"""

from __future__ import annotations

import copy
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from rimrl.regularize.mixup import mix, plan_mix


class EMATeacher:
    """A mean teacher: ``theta_t <- decay * theta_t + (1 - decay) * theta_s`` after each step.

    Args:
        student: the model being trained (copied once at construction).
        decay: EMA decay (ICT: 0.999).
        warmup: the mean-teacher and ICT codes' warm-up: update ``t`` (1, 2, ...) uses
            ``min(1 - 1 / (t + 1), decay)``, so the teacher starts as the running mean of
            the student's iterates instead of its random initialisation (without it, 0.999
            keeps ``0.999 ** t`` of the initial weights: 29% after 1,250 updates).
    """

    def __init__(self, student: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.model = copy.deepcopy(student)
        self.model.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        t = self.updates + 1
        return min(1.0 - 1.0 / (t + 1), self.decay) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        decay = self.current_decay()
        self.updates += 1
        for t, s in zip(self.model.parameters(), student.parameters()):
            t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
        for t, s in zip(self.model.buffers(), student.buffers()):
            t.copy_(s)  # batch-norm statistics are copied, as in mean-teacher code

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher class probabilities."""
        return F.softmax(self.model(x), dim=-1)


def sigmoid_rampup(step: float, length: float) -> float:
    """``exp(-5 (1 - t/T)^2)`` for ``t < T``, then 1 (Laine & Aila; ICT). 1.0 if T <= 0."""
    if length <= 0:
        return 1.0
    t = min(max(step, 0.0), length) / length
    return math.exp(-5.0 * (1.0 - t) ** 2)


def ict_consistency(student: nn.Module, teacher: EMATeacher, unlabeled: torch.Tensor,
                    alpha: float, generator: Optional[torch.Generator] = None,
                    loss: str = "mse") -> torch.Tensor:
    """Consistency between the student at mixed inputs and the mixed teacher predictions.

    Args:
        student, teacher: the models.
        unlabeled: a batch of unlabelled inputs ``u``; pairs are (u_j, u_perm[j]).
        alpha: Beta concentration of ``lam``.
        loss: ``mse`` (default, as in ICT) between probability vectors, or ``kl``.
    """
    plan = plan_mix(unlabeled.shape[0], alpha, generator, device=unlabeled.device)
    target = mix(teacher.predict(unlabeled), plan)
    return consistency_loss(student(mix(unlabeled, plan)), target, loss)


def mean_teacher_consistency(student: nn.Module, teacher: EMATeacher, unlabeled: torch.Tensor,
                             noise_std: float, generator: Optional[torch.Generator] = None,
                             loss: str = "mse") -> torch.Tensor:
    """The mean teacher's consistency (Tarvainen & Valpola, 2017; the baseline ICT is
    compared with, thesis ch. 6): student and teacher each see ``u`` with their own Gaussian
    input noise of std ``noise_std``; no interpolation."""
    def noisy(x: torch.Tensor) -> torch.Tensor:
        if noise_std == 0:
            return x
        return x + noise_std * torch.randn(x.shape, generator=generator).to(x.device)

    target = teacher.predict(noisy(unlabeled))
    return consistency_loss(student(noisy(unlabeled)), target, loss)


def consistency_loss(logits: torch.Tensor, target: torch.Tensor, loss: str = "mse"):
    """``mse`` between the student's probabilities and ``target`` (summed over classes,
    averaged over the batch, as in ICT), or ``kl`` (target || student)."""
    if loss == "mse":
        return F.mse_loss(F.softmax(logits, dim=-1), target, reduction="none").sum(-1).mean()
    if loss == "kl":
        return F.kl_div(F.log_softmax(logits, dim=-1), target, reduction="batchmean")
    raise ValueError(f"unknown consistency loss {loss!r}; choose mse or kl")
