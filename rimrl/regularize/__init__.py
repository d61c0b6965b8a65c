"""Interpolation-based regularizers, usable with any ``nn.Module`` (thesis ch. 4 and 6).

- :mod:`rimrl.regularize.mixup`: input mixup and the shared pieces (lambda, pairing, mixed
  targets, mixed loss);
- :mod:`rimrl.regularize.manifold`: Manifold Mixup at a randomly chosen eligible layer;
- :mod:`rimrl.regularize.ict`: Interpolation Consistency Training with a mean teacher.
"""

from rimrl.regularize.ict import (EMATeacher, ict_consistency, mean_teacher_consistency,
                                  sigmoid_rampup)
from rimrl.regularize.manifold import ManifoldMixup
from rimrl.regularize.mixup import MixPlan, mix, mixed_cross_entropy, mixed_targets, plan_mix

__all__ = ["MixPlan", "plan_mix", "mix", "mixed_targets", "mixed_cross_entropy",
           "ManifoldMixup", "EMATeacher", "ict_consistency", "mean_teacher_consistency",
           "sigmoid_rampup"]
