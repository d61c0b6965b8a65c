"""One step of Recurrent Independent Mechanisms (thesis chapter 8; Goyal et al., 2019):
:class:`RIMCell` and the internal state layout. Its settings: :mod:`rimrl.nn.rims_settings`.

One step, in the four stages of section 8.2:
1. *Input attention* (eq. 8.1-8.3): each RIM forms a query from its state; keys and values
   come from the input elements plus a zero "null" element. Key and value maps have no bias,
   so the null key and value are exactly zero and the null logit is exactly 0.
2. *Selection*: the ``k_active`` RIMs that put the least attention on the null element
   (averaged over heads) are active. In the spatial mode each input position is, in addition,
   read only by the ``k_active`` RIMs that attend to it most (position-specific competition).
3. *Independent dynamics* (8.2.3): every RIM has its own LSTM or GRU parameters. Active RIMs
   update; inactive RIMs keep h (and c) exactly. ``torch.where`` selects the new state, so no
   gradient enters an inactive RIM's update on that step while gradient still flows through
   its carried state.
4. *Communication* (8.2.4): active RIMs read from all RIMs with multi-head key-value attention
   and a residual connection, optionally top-k sparse. Two readings exist (``comm_reads``,
   ``comm_output``): the thesis' equation, a plain map of what RIMs read, from the states
   inactive RIMs keep; and the official code's, a bounded gated write
   ``sigmoid(gate(ctx)) * tanh(fc(ctx))`` read from every RIM's fresh state, with no gradient
   into the fresh state of an inactive RIM (``rimrl.nn.rims_settings.VARIANTS``).

The sequence module (:class:`rimrl.nn.rims.RIMs`) runs this step over time.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from rimrl.nn.attention import topk_mask
from rimrl.nn.grouped import grouped_bias, grouped_linear, grouped_parameter
from rimrl.nn.rims_settings import (DYNAMICS_GATES, SETTINGS, RIMsSettings,
                                    check_rims_settings)

State = tuple[torch.Tensor, torch.Tensor]


class RIMCell(nn.Module):
    """One step of RIMs: input attention, top-k_A selection, per-RIM dynamics, communication.

    Args:
        input_size: size of one input element (the feature size F).
        hidden_size: total hidden size H = num_units x per-RIM size; must divide evenly.
        settings: a :class:`~rimrl.nn.rims_settings.RIMsSettings` (each setting's meaning
            and default is there); default: the thesis' settings.
        **changes: fields of ``settings`` to change, e.g. ``k_active=5``.
    """

    def __init__(self, input_size: int, hidden_size: int,
                 settings: Optional[RIMsSettings] = None, **changes):
        super().__init__()
        s = dataclasses.replace(settings or RIMsSettings(), **changes)
        check_rims_settings(hidden_size, s)
        if input_size < 1:
            raise ValueError(f"input_size must be positive, got {input_size}")
        self.settings = s
        for field in SETTINGS:  # cell.k_active, cell.comm_heads, ...: read on every step
            setattr(self, field.name, getattr(s, field.name))
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.unit_size = hidden_size // s.num_units
        self.input_value_size = s.input_value_size or s.input_value_scale * self.unit_size

        K, hs = s.num_units, self.unit_size
        heads, dk = s.input_heads, s.input_key_size
        gates = DYNAMICS_GATES[s.dynamics] * hs
        self.gate_size = gates
        # Input attention: keys and values shared by all RIMs, bias-free so the null row
        # (zeros) has a zero key and value; queries per RIM (theta_k^in = W_k^q, W^e, W^v).
        self.input_key = nn.Linear(input_size, heads * dk, bias=False)
        self.input_value = nn.Linear(input_size, heads * self.input_value_size, bias=False)
        self.input_query = grouped_parameter(K, hs, heads * dk)
        # Per-RIM dynamics D_k.
        self.weight_ih = grouped_parameter(K, heads * self.input_value_size, gates)
        self.weight_hh = grouped_parameter(K, hs, gates)
        self.bias_ih = grouped_bias(K, hs, gates)
        self.bias_hh = grouped_bias(K, hs, gates) if s.dynamics == "gru" else None
        # Communication (theta_k^c): per-RIM query/key/value maps, then the write: a per-RIM
        # output projection (linear) or the official code's shared gate and map (gated).
        comm_values = s.comm_heads * s.comm_value_size
        self._comm_split = (s.comm_heads * s.comm_key_size, s.comm_heads * s.comm_key_size,
                            comm_values)
        self.comm_qkv = grouped_parameter(K, hs, sum(self._comm_split))
        gated = s.comm_output == "gated"
        self.comm_out = None if gated else grouped_parameter(K, comm_values, hs)
        if s.dynamics == "lstm" and s.forget_bias is not None:
            with torch.no_grad():
                self.bias_ih[:, :, hs:2 * hs].fill_(s.forget_bias)
        # created last, so the other parameters draw the same initial values as without them
        self.input_query_bias = grouped_bias(K, hs, heads * dk) if s.query_bias else None
        self.comm_fc = nn.Linear(comm_values, hs) if gated else None
        self.comm_gate = nn.Linear(comm_values, hs) if gated else None
        if s.attention_init_std is not None:
            with torch.no_grad():
                for weight in self.attention_weights():
                    weight.normal_(0.0, s.attention_init_std)

    def attention_weights(self) -> list[nn.Parameter]:
        """The query, key and value maps of both attentions (``attention_init_std``)."""
        return [self.input_key.weight, self.input_value.weight, self.input_query,
                self.comm_qkv]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before the query bias existed: a zero bias is their exact behaviour
        key = prefix + "input_query_bias"
        if self.input_query_bias is not None and key not in state_dict:
            state_dict[key] = torch.zeros_like(self.input_query_bias)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ input precomputation
    def precompute(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input-only quantities of the vector mode, for any number of leading axes.

        Args:
            x: (..., F), one input element per step.

        Returns:
            keys (..., heads, key_size), already scaled by 1/sqrt(key_size), and ``U`` (..., K,
            heads, gates): each head's value
            already pushed through every RIM's input weights, so a step only scales it by
            that RIM's attention probability.
        """
        heads = self.input_heads
        keys = self._keys(x)
        values = self._values(x)
        w = self.weight_ih.unflatten(1, (heads, self.input_value_size))  # (K, heads, dv, G)
        return keys, torch.einsum("...hd,khdg->...khg", values, w)

    def precompute_spatial(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (..., N, heads, key_size; scaled as in :meth:`precompute`) and values (..., N,
        heads, value_size) of a set."""
        return self._keys(x), self._values(x)

    def _values(self, x: torch.Tensor) -> torch.Tensor:
        # dropout on a value before it is read equals dropout on the read (p * v): same mask
        values = F.dropout(self.input_value(x), self.input_dropout, self.training)
        return values.unflatten(-1, (self.input_heads, self.input_value_size))

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        # the attention's 1/sqrt(d) goes on the keys, once per sequence, not on every
        # step's logits
        keys = self.input_key(x).unflatten(-1, (self.input_heads, self.input_key_size))
        return keys * (1.0 / math.sqrt(self.input_key_size))

    def recurrent_weight(self) -> torch.Tensor:
        """Hidden-to-gates and hidden-to-query weights side by side: one bmm per step."""
        return torch.cat([self.weight_hh, self.input_query], dim=2)

    def recurrent_bias(self) -> torch.Tensor:
        """The biases that go with :meth:`recurrent_weight`'s columns (the LSTM's gate bias
        or the GRU's hidden bias, then the query bias), added by the same ``baddbmm``."""
        gates = self.bias_ih if self.dynamics == "lstm" else self.bias_hh
        query = (self.input_query_bias if self.input_query_bias is not None
                 else gates.new_zeros(gates.shape[0], 1, self.input_query.shape[2]))
        return torch.cat([gates, query], dim=2)

    # ------------------------------------------------------------------------------ one step
    def step(
        self, keys: torch.Tensor, inp: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
        spatial: bool, recurrent_weight: Optional[torch.Tensor] = None,
        recurrent_bias: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance one step on precomputed input (see :meth:`precompute`).

        ``h`` and ``c`` are in the internal layout (K, B, unit_size). Vector mode: ``keys``
        (B, heads, key_size), ``inp`` = U moved to (K, B, heads, gates). Spatial mode: ``keys``
        and ``inp`` as returned by :meth:`precompute_spatial`. Returns the new h, c and the
        boolean activity mask (K, B). ``recurrent_weight`` and ``recurrent_bias`` are
        :meth:`recurrent_weight` and :meth:`recurrent_bias`, passed in by sequence callers so
        they are built once per sequence rather than once per step.
        """
        if recurrent_weight is None:
            recurrent_weight = self.recurrent_weight()
        if recurrent_bias is None:
            recurrent_bias = self.recurrent_bias()
        return self.step_with(
            keys, inp, h, c, spatial,
            recurrent=partial(grouped_linear, weight=recurrent_weight, bias=recurrent_bias),
            comm_qkv=partial(grouped_linear, weight=self.comm_qkv),
            comm_out=partial(grouped_linear, weight=self.comm_out))

    def step_with(self, keys, inp, h, c, spatial: bool, recurrent: Callable,
                  comm_qkv: Callable, comm_out: Callable):
        """:meth:`step` with the three per-step weight maps given as callables on (K, B, in)
        tensors: ``recurrent`` (:meth:`recurrent_weight` and :meth:`recurrent_bias`),
        ``comm_qkv`` and ``comm_out``; :class:`RIMs` passes
        :class:`~rimrl.nn.shared_weight.SharedWeight` maps in eager training."""
        heads, dk = self.input_heads, self.input_key_size
        # one op per step for the hidden-to-gates and hidden-to-query maps and their biases
        hq = recurrent(h)
        hh, query = hq.split([self.gate_size, heads * dk], dim=2)
        query = query.unflatten(-1, (heads, dk))  # (K, B, heads, dk)

        if not spatial:
            # One element plus the null row: softmax over [0, s] puts sigmoid(s) on the input.
            read = torch.sigmoid((query * keys.unsqueeze(0)).sum(-1))  # (K, B, heads)
            if heads == 1:  # the paper's setting: no mean or sum over one head
                active = topk_mask(read[..., 0], self.k_active, dim=0)
                gates_in = read * inp[:, :, 0]
            else:
                active = topk_mask(read.mean(-1), self.k_active, dim=0)
                gates_in = (read.unsqueeze(-1) * inp).sum(2)  # inp: (K, B, heads, G)
        else:
            logits = torch.einsum("kbhd,bnhd->kbhn", query, keys)
            null = logits.new_zeros(logits.shape[:-1] + (1,))
            probs = torch.softmax(torch.cat([null, logits], dim=-1), dim=-1)
            active = topk_mask(1.0 - probs[..., 0].mean(-1), self.k_active, dim=0)
            read = probs[..., 1:]  # (K, B, heads, N)
            if self.spatial_competition:
                winners = topk_mask(read.mean(2), self.k_active, dim=0)  # (K, B, N)
                read = read * winners.unsqueeze(2)
            attended = torch.einsum("kbhn,bnhd->kbhd", read, inp).flatten(2)
            gates_in = grouped_linear(attended, self.weight_ih)

        h_new, c_new = self._dynamics(gates_in, hh, h, c)
        mask = active.unsqueeze(-1)
        if self.comm_reads == "fresh":  # official: no gradient into an inactive fresh state
            reads = torch.where(mask, h_new, h_new.detach())
        else:
            reads = torch.where(mask, h_new, h)
        h_next = torch.where(mask, h_new + self._communicate(reads, comm_qkv, comm_out), h)
        c_next = torch.where(mask, c_new, c)
        return h_next, c_next, active

    def _dynamics(self, gates_in, hh, h, c):
        # hh already holds the LSTM's gate bias or the GRU's hidden bias (recurrent_bias)
        if self.dynamics == "lstm":
            i, f, g, o = (gates_in + hh).chunk(4, dim=-1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c_new), c_new
        gi = gates_in + self.bias_ih
        gh = hh
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (h - n), c  # GRU keeps c as a passive second state tensor

    def _communicate(self, h_tilde: torch.Tensor, comm_qkv: Callable,
                     comm_out: Callable) -> torch.Tensor:
        K, B = h_tilde.shape[:2]
        heads, dk, dv = self.comm_heads, self.comm_key_size, self.comm_value_size
        q, k, v = comm_qkv(h_tilde).split(self._comm_split, dim=2)
        q = q.reshape(K, B, heads, dk).permute(1, 2, 0, 3)  # (B, heads, K, dk)
        k = k.reshape(K, B, heads, dk).permute(1, 2, 3, 0)  # (B, heads, dk, K)
        v = v.reshape(K, B, heads, dv).permute(1, 2, 0, 3)
        mask = None
        if self.comm_topk is not None and self.comm_topk < K:
            mask = topk_mask(torch.matmul(q, k), self.comm_topk, dim=-1)
        context = F.scaled_dot_product_attention(q, k.transpose(-1, -2), v, attn_mask=mask)
        context = context.permute(2, 0, 1, 3).reshape(K, B, heads * dv)
        if self.comm_gate is None:
            return F.dropout(comm_out(context), self.comm_dropout, self.training)
        write = F.dropout(self.comm_fc(context), self.comm_dropout, self.training)
        return torch.sigmoid(self.comm_gate(context)) * torch.tanh(write)

    # ------------------------------------------------------------------- public one-step API
    def forward(self, x: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        """One step. ``x``: (B, F) or (B, N, F); ``state``: (h, c), each (B, H).

        Returns ``(h, (h, c))`` with h, c of shape (B, H) and stores the activity mask
        (B, K) in ``self.last_active``.
        """
        spatial = x.dim() == 3
        B = x.shape[0]
        h, c = state if state is not None else (x.new_zeros(B, self.hidden_size),) * 2
        if spatial:
            keys, inp = self.precompute_spatial(x)
        else:
            keys, inp = self.precompute(x)
            inp = inp.transpose(0, 1)
        h_k, c_k, active = self.step(keys, inp, to_units(h, self.num_units),
                                     to_units(c, self.num_units), spatial)
        self.last_active = active.t().detach()
        h, c = from_units(h_k), from_units(c_k)
        return h, (h, c)


def to_units(state: torch.Tensor, num_units: int) -> torch.Tensor:
    """(B, K*hs) -> the internal layout (K, B, hs)."""
    return state.unflatten(-1, (num_units, -1)).transpose(0, 1).contiguous()


def from_units(state: torch.Tensor) -> torch.Tensor:
    """(K, B, hs) -> (B, K*hs)."""
    return state.transpose(0, 1).flatten(1)
