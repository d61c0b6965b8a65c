"""Recurrent Independent Mechanisms over a sequence (thesis chapter 8; Goyal et al., 2019):
:class:`RIMs`, with the call convention of ``torch.nn.LSTM``. One step (input attention,
selection, independent dynamics, communication) is :class:`rimrl.nn.rim_cell.RIMCell`.

Speed: everything that depends only on the input is computed for the whole sequence before
the time loop. In the vector mode the input read of RIM k is ``p_k * (x W^v) W^ih_k``, so
``(x W^v) W^ih_k`` is one GEMM over all steps and the loop only scales it by the attention
probability. Per-RIM weights are batched (:mod:`rimrl.nn.grouped`), never a Python loop over
RIMs.
"""

from __future__ import annotations

import warnings
from typing import Callable, Optional

import torch
from torch import nn

from rimrl.nn.rim_cell import RIMCell, State, from_units, to_units
from rimrl.nn.rims_settings import DYNAMICS_GATES, RIMsSettings, check_rims_settings
from rimrl.nn.shared_weight import SharedWeight

# RIMCell and its helpers live in rim_cell; rimrl.nn.rims keeps offering their names
__all__ = ["RIMs", "RIMCell", "RIMsSettings", "State", "DYNAMICS_GATES", "check_rims_settings",
           "to_units", "from_units"]


class RIMs(nn.Module):
    """RIMs over a sequence, with the call convention of ``torch.nn.LSTM`` (batch_first=False).

    ``module(x, (h, c)) -> (out, (h, c))`` with x of shape (T, B, F) (vector mode: one input
    element per step) or (T, B, N, F) (spatial mode: a set of N elements per step, section
    8.2.2), out (T, B, H), and h, c of shape (1, B, H), H = num_units x per-RIM size. RIM k
    owns slice ``[k * H/K, (k + 1) * H/K)`` of h and c. GRU dynamics keep the same two-tensor
    state (c is carried unchanged) so the module stands in for an LSTM anywhere, e.g. inside
    sb3-contrib's RecurrentPPO.

    Defaults are the paper's copying-task settings (K=6, k_A=4; input attention 1 head, key
    64; communication 4 heads, key and value 32). See :class:`RIMCell` for the arguments.

    ``elements=N`` (> 1) declares flat input of N equal elements: x (T, B, N * F) is read as
    (T, B, N, F) in the spatial mode, so the module keeps a flat ``input_size`` (= N * F) for
    callers that expect an LSTM (e.g. an SB3 encoder producing a set, flattened).

    Extra keyword ``episode_starts`` (T, B): where 1, that sequence's state is reset to zero
    before the step. After each call ``last_active`` holds the (T, B, K) boolean mask of
    active RIMs, for plots and logging.
    """

    num_layers = 1
    bidirectional = False
    batch_first = False

    def __init__(self, input_size: int, hidden_size: int, compile: bool = False,
                 elements: int = 1, **cell_kwargs):
        super().__init__()
        if elements < 1 or input_size % elements:
            raise ValueError(f"input_size {input_size} is not divisible into {elements} elements")
        self.elements = elements
        # torch.compile fuses a step's ~30 small ops (forward and backward) into a few C++
        # kernels: about 2x faster on CPU at small batch, for ~30 s of compilation.
        self.compile = compile
        self._compiled_step = None
        self.cell = RIMCell(input_size // elements, hidden_size, **cell_kwargs)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.last_active: Optional[torch.Tensor] = None

    @property
    def num_units(self) -> int:
        return self.cell.num_units

    @property
    def k_active(self) -> int:
        return self.cell.k_active

    def forward(
        self,
        x: torch.Tensor,
        state: Optional[State] = None,
        episode_starts: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, State]:
        element = self.cell.input_size
        if not ((x.dim() == 3 and x.shape[-1] == self.input_size)
                or (x.dim() == 4 and x.shape[-1] == element)):
            raise ValueError(
                f"RIMs expects input (T, B, {self.input_size}) or (T, B, N, {element}), "
                f"got {tuple(x.shape)}"
            )
        if self.elements > 1 and x.dim() == 3:
            x = x.unflatten(-1, (self.elements, -1))
        spatial = x.dim() == 4
        T, B = x.shape[:2]
        cell, K = self.cell, self.num_units
        if state is None:
            zeros = x.new_zeros(B, self.hidden_size)
            h, c = to_units(zeros, K), to_units(zeros, K)
        else:
            h, c = to_units(state[0][0], K), to_units(state[1][0], K)

        if spatial:
            keys, inp = cell.precompute_spatial(x)
        else:
            keys, inp = cell.precompute(x)
            inp = inp.permute(0, 2, 1, 3, 4)  # (T, K, B, heads, G): a step reads one slice

        # unbind, not keys[t]: indexing a graph tensor T times costs O(T^2) in backward.
        keys, inp = keys.unbind(0), inp.unbind(0)
        keep = None
        if episode_starts is not None:
            keep = (1.0 - episode_starts.to(x.dtype)).view(T, 1, B, 1).unbind(0)
        weight, bias = cell.recurrent_weight(), cell.recurrent_bias()
        step = self._sequence_step(weight, bias)
        outputs, actives = [], []
        for t in range(T):
            if keep is not None:
                h, c = h * keep[t], c * keep[t]
            try:
                h, c, active = step(keys[t], inp[t], h, c, spatial)
            except Exception as exc:  # noqa: BLE001
                if not self.compile:
                    raise
                self._disable_compile(exc)
                step = self._sequence_step(weight, bias)
                h, c, active = step(keys[t], inp[t], h, c, spatial)
            outputs.append(h)
            actives.append(active)
        h_last, c_last = from_units(h).unsqueeze(0), from_units(c).unsqueeze(0)
        if T == 1:  # a rollout step: the output is the new state, no stacking
            self.last_active = active.t().unsqueeze(0).detach()
            return h_last.clone(), (h_last, c_last)
        out = torch.stack(outputs).permute(0, 2, 1, 3).reshape(T, B, self.hidden_size)
        self.last_active = torch.stack(actives).transpose(1, 2).detach()
        return out, (h_last, c_last)

    def _sequence_step(self, weight: torch.Tensor, bias: torch.Tensor) -> Callable:
        """One sequence's step function ``(keys, inp, h, c, spatial) -> (h, c, active)``:
        the compiled step, or in eager mode the step with
        :class:`~rimrl.nn.shared_weight.SharedWeight` maps, so each weight's gradient is one
        matmul over the sequence instead of one per step (the same numbers, tested)."""
        cell = self.cell
        if self.compile:
            compiled = self._compiled()
            return lambda k, i, h, c, s: compiled(k, i, h, c, s, weight, bias)
        maps = dict(recurrent=SharedWeight(weight, bias), comm_qkv=SharedWeight(cell.comm_qkv),
                    comm_out=None if cell.comm_out is None else SharedWeight(cell.comm_out))
        return lambda k, i, h, c, s: cell.step_with(k, i, h, c, s, **maps)

    def _compiled(self):
        if self._compiled_step is None:
            # the attention-fusion patterns of inductor mis-handle this graph at some batch
            # sizes (torch 2.13); the step already calls scaled_dot_product_attention itself
            self._compiled_step = torch.compile(self.cell.step, dynamic=False,
                                                options={"pattern_matcher": False})
        return self._compiled_step

    def _disable_compile(self, exc: Exception) -> None:
        """A compilation failure falls back to the eager step (same maths), once, loudly."""
        warnings.warn(f"torch.compile of the RIMs step failed ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200]}); continuing without compilation")
        self.compile = False
        self._compiled_step = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_compiled_step"] = None  # compiled functions are rebuilt, never pickled
        return state

    def extra_repr(self) -> str:
        c = self.cell
        return (f"{self.input_size}, {self.hidden_size}, num_units={self.num_units}, "
                f"k_active={self.k_active}, dynamics={c.dynamics!r}, "
                f"comm_output={c.comm_output!r}, comm_reads={c.comm_reads!r}")
