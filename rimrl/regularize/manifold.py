"""Manifold Mixup (Verma et al., 2019; thesis chapter 4).

Each batch, one layer ``k`` is drawn uniformly from the eligible set (the input counts as
layer 0); the forward pass runs normally up to layer ``k``, the hidden states there are mixed
with a shuffled copy of the batch (one ``lam ~ Beta(alpha, alpha)``), and the pass continues
from the mixed states. Targets are mixed with the same ``lam``. Gradients flow through the
whole network, layers before the mixing point included. Layer 0 is exactly input mixup.

Works with any ``nn.Module``: eligible layers are named sub-modules, and the mixing is done
by a forward hook on the chosen one, so the model's code is untouched::

    mm = ManifoldMixup(model, layers=["hidden1", "hidden2"], alpha=2.0)
    logits, targets = mm(x, y, num_classes=10)      # one training batch
    loss = soft_cross_entropy(logits, targets)
"""

from __future__ import annotations

import contextlib
from typing import Optional, Sequence

import torch
from torch import nn

from rimrl.regularize.mixup import MixPlan, mix, mixed_targets, plan_mix


class ManifoldMixup:
    """Mix hidden states at a random eligible layer of ``model``.

    Args:
        model: any module mapping a batch of inputs to logits.
        layers: names (as in ``model.named_modules()``) of the eligible hidden layers; their
            *outputs* are mixed. The input (layer 0) is eligible unless ``include_input`` is
            False.
        alpha: Beta concentration of ``lam``.
        include_input: make the input eligible (then layer 0 = input mixup).
        generator: torch generator for the layer, ``lam`` and pairing draws.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], alpha: float = 2.0,
                 include_input: bool = True, generator: Optional[torch.Generator] = None):
        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            raise ValueError(f"no layer named {missing} in the model; names: "
                             f"{[n for n in modules if n]}")
        if not alpha > 0:
            raise ValueError(f"mixup alpha must be positive, got {alpha}")
        if not layers and not include_input:
            raise ValueError("no eligible layer: give layers or include_input=True")
        self.model = model
        self.layers = [None] * include_input + [modules[name] for name in layers]
        self.alpha = alpha
        self.generator = generator
        self.last_layer: Optional[int] = None
        self.last_plan: Optional[MixPlan] = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                 layer: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward one mixed batch; returns (logits, mixed one-hot targets).

        ``layer`` forces an index into the eligible list (0 is the input when eligible);
        by default it is drawn uniformly.
        """
        if layer is None:
            layer = int(torch.randint(len(self.layers), (1,), generator=self.generator))
        plan = plan_mix(x.shape[0], self.alpha, self.generator, device=x.device)
        self.last_layer, self.last_plan = layer, plan
        target = self.layers[layer]
        if target is None:
            logits = self.model(mix(x, plan))
        else:
            with self._mixing_hook(target, plan):
                logits = self.model(x)
        return logits, mixed_targets(y, num_classes, plan)

    @staticmethod
    @contextlib.contextmanager
    def _mixing_hook(module: nn.Module, plan: MixPlan):
        handle = module.register_forward_hook(lambda _m, _inp, out: mix(out, plan))
        try:
            yield
        finally:
            handle.remove()
