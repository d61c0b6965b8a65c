"""Weights used at every step of a recurrence, with their gradient summed once per sequence.

Autograd's usual path computes ``dW_t = h_t^T g_t`` at every step and adds it to a running
total. For RIMs at small batch that is, per step and per weight, a (K, in, out) matmul and an
add of the same size: memory-bound work that costs more than the step's own forward. Here
each step's matmul keeps ``(h_t, g_t)`` during the backward pass, and the weight's gradient
is one batched matmul over all steps, computed when autograd reaches the weight. Every step
uses the weight, so the engine reaches it only after the last step's backward.

Exactly the same gradients as plain :func:`~rimrl.nn.grouped.grouped_linear` (up to float
summation order; tested); no double backward. Used by :class:`rimrl.nn.rims.RIMs` in eager
mode when gradients are on.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd import Function

from rimrl.nn.grouped import grouped_linear


class _StepInputs:
    """What the steps' backward passes leave for the weight's gradient."""

    __slots__ = ("inputs", "grads")

    def __init__(self):
        self.inputs: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []


class _Shared(Function):
    """Identity on the weight (and bias) whose backward sums every step's contribution."""

    @staticmethod
    def forward(ctx, steps: _StepInputs, weight: torch.Tensor, bias: Optional[torch.Tensor]):
        ctx.steps, ctx.has_bias = steps, bias is not None
        ctx.set_materialize_grads(False)
        weight = weight.detach().view_as(weight)
        return (weight, bias.detach().view_as(bias)) if bias is not None else weight

    @staticmethod
    def backward(ctx, *grads):
        grad_weight, grad_bias = grads if ctx.has_bias else (grads[0], None)
        steps = ctx.steps
        if steps.inputs:
            h = torch.cat(steps.inputs, dim=1)  # (K, T*B, in)
            g = torch.cat(steps.grads, dim=1)  # (K, T*B, out)
            steps.inputs.clear()
            steps.grads.clear()
            dw = torch.bmm(h.transpose(1, 2), g)
            grad_weight = dw if grad_weight is None else grad_weight + dw
            if ctx.has_bias:
                db = g.sum(1, keepdim=True)
                grad_bias = db if grad_bias is None else grad_bias + db
        return None, grad_weight, grad_bias


class _StepMatmul(Function):
    """``h @ weight (+ bias)`` whose backward returns only h's gradient and keeps (h, g)."""

    @staticmethod
    def forward(ctx, steps: _StepInputs, h: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor]):
        ctx.steps = steps
        ctx.save_for_backward(h, weight)
        return grouped_linear(h, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        h, weight = ctx.saved_tensors
        ctx.steps.inputs.append(h)
        ctx.steps.grads.append(grad)
        grad_h = torch.bmm(grad, weight.transpose(1, 2)) if ctx.needs_input_grad[1] else None
        # no gradient for weight and bias here: _Shared computes them from what this step
        # kept, once the engine has passed every step (each step is one of its consumers)
        return None, grad_h, None, None


class SharedWeight:
    """A grouped weight (K, in, out), optionally with a bias (K, 1, out), applied at every
    step of one sequence: ``shared(h)`` = ``h @ weight (+ bias)`` for h of shape (K, B, in).

    Build one per sequence (per forward call). Without gradients it is plain
    :func:`~rimrl.nn.grouped.grouped_linear`.
    """

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor] = None):
        self.deferred = torch.is_grad_enabled() and (
            weight.requires_grad or (bias is not None and bias.requires_grad))
        self.steps = _StepInputs()
        if self.deferred:
            shared = _Shared.apply(self.steps, weight, bias)
            weight, bias = shared if bias is not None else (shared, None)
        self.weight, self.bias = weight, bias

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        if self.deferred:
            return _StepMatmul.apply(self.steps, h, self.weight, self.bias)
        return grouped_linear(h, self.weight, self.bias)
