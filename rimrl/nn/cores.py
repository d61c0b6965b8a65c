"""Recurrent cores by name: ``lstm``, ``gru``, ``rims``, and ``none`` (no state: the memoryless
floor they are measured against). The one place a core is chosen.

Every core has the call convention of ``torch.nn.LSTM`` (time-major input (T, B, F), a
two-tensor state each (1, B, H), output (T, B, H)) plus an optional ``episode_starts``
(T, B) keyword that zeroes a sequence's state before the marked step. Algorithms call
:func:`build_core` with a :class:`CoreConfig` and never branch on the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from rimrl.config import default_of
from rimrl.errors import UserError, unknown_name
from rimrl.nn.rims import RIMs
from rimrl.nn.rims_settings import RIMsSettings, variant_values


@dataclass
class CoreConfig(RIMsSettings):
    """Choice and size of the recurrent core: every RIMs setting
    (:class:`~rimrl.nn.rims_settings.RIMsSettings`, read by ``rims`` only) plus:

    Args:
        name: ``lstm``, ``gru``, ``rims`` or ``none`` (no state; its output is its input).
        hidden_size: total hidden size H (for RIMs: num_units x per-RIM size; ``none``
            ignores it).
        variant: RIMs only: the named set of settings this config was built from
            (``thesis`` or ``official``, :data:`~rimrl.nn.rims_settings.VARIANTS`). Naming
            one (``--set core.variant=official``) applies its settings over the config files
            and under explicit ``--set core.<setting>`` (:meth:`with_variant`); stored
            configs keep their resolved values.
        compile: RIMs only: ``torch.compile`` the step (faster, ~30 s to compile once).
    """

    name: str = "rims"
    # a size for a config built bare; every learner sets its own (PPO: ATARI_RIMS and the
    # grid section, copy: COPY_RIMS)
    hidden_size: int = 192
    variant: str = "thesis"
    compile: bool = default_of(RIMs, "compile")

    def __post_init__(self):
        if self.name not in CORES:
            raise UserError(unknown_name("core", self.name, CORES))
        if self.hidden_size < 1:
            raise UserError(f"core hidden_size must be positive, got {self.hidden_size}")
        try:
            variant_values(self.variant)
            if self.name == "rims":
                self.check(self.hidden_size)
        except ValueError as exc:  # the config's names: core.<setting>
            raise UserError(f"core.{exc}") from None

    @staticmethod
    def with_variant(values: dict, explicit: dict = ()) -> dict:
        """``values`` (core settings from defaults and files) with ``explicit`` ones (a
        user's own) over them; when ``explicit`` names a ``variant``, that variant's
        settings sit between the two."""
        explicit = dict(explicit)
        if "variant" not in explicit:
            return dict(values) | explicit
        try:
            preset = variant_values(explicit["variant"])
        except ValueError as exc:
            raise UserError(f"core.{exc}") from None
        return dict(values) | preset | explicit


class LSTMCore(nn.LSTM):
    """``torch.nn.LSTM`` (one layer) that also honours ``episode_starts``.

    Without episode starts it is one fused call. With starts at few time steps (at most
    :data:`FUSED_CUTS`, the usual case on Atari), the fused kernel runs over the pieces
    between them, zeroing the state of the sequences that start at each cut. With more, the
    input projection of every step is one matrix product and the recurrence runs step by
    step on the same weights: there each fused call's set-up would dominate the short pieces
    (measured: 1 cut 0.73x the step loop's time, 2 cuts 0.80x, 4 cuts 1.3x, 8 cuts 2.3x;
    T=32, B=8, H=510, forward and backward). Both paths give the step-by-step result.
    """

    def forward(self, x, state=None, episode_starts=None):
        if episode_starts is None:
            return super().forward(x, state)
        cuts = _cuts(episode_starts)
        if len(cuts) <= FUSED_CUTS:
            return _fused_pieces(super().forward, x, state, episode_starts, cuts,
                                 self.hidden_size)
        T, B = x.shape[:2]
        if state is None:
            zeros = x.new_zeros(B, self.hidden_size)
            h, c = zeros, zeros
        else:
            h, c = state[0][0], state[1][0]
        keep = (1.0 - episode_starts.to(x.dtype)).view(T, B, 1).unbind(0)
        inputs = _input_projection(x, self.weight_ih_l0, self.bias_ih_l0 + self.bias_hh_l0)
        w_hh = self.weight_hh_l0.t()
        outputs = []
        for t in range(T):
            h, c = h * keep[t], c * keep[t]
            i, f, g, o = torch.addmm(inputs[t], h, w_hh).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))


class GRUCore(nn.Module):
    """``torch.nn.GRU`` behind the LSTM convention: a second state tensor, carried as zeros.
    With ``episode_starts``: fused pieces or the step loop, as in :class:`LSTMCore`."""

    num_layers = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size

    def forward(self, x, state=None, episode_starts=None):
        T, B = x.shape[:2]
        h = x.new_zeros(1, B, self.hidden_size) if state is None else state[0]
        if episode_starts is None:
            out, h = self.gru(x, h)
            return out, (h, torch.zeros_like(h))
        cuts = _cuts(episode_starts)
        if len(cuts) <= FUSED_CUTS:
            def gru(piece, s):
                out, h_out = self.gru(piece, s[0])
                return out, (h_out, s[1])
            return _fused_pieces(gru, x, (h, torch.zeros_like(h)), episode_starts, cuts,
                                 self.hidden_size)
        g = self.gru
        keep = (1.0 - episode_starts.to(x.dtype)).view(T, B, 1).unbind(0)
        inputs = _input_projection(x, g.weight_ih_l0, g.bias_ih_l0)
        w_hh, b_hh = g.weight_hh_l0.t(), g.bias_hh_l0
        h = h[0]
        outputs = []
        for t in range(T):
            h = h * keep[t]
            i_r, i_z, i_n = inputs[t].chunk(3, dim=1)
            h_r, h_z, h_n = torch.addmm(b_hh, h, w_hh).chunk(3, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = n + z * (h - n)
            outputs.append(h)
        h = h.unsqueeze(0)
        return torch.stack(outputs), (h, torch.zeros_like(h))


class NoCore(nn.Module):
    """No recurrent core: the features pass straight through (output size = input size) and
    the state is handed back untouched, so a policy built on it has no memory at all. It
    keeps the cores' call convention so that the same algorithm trains it; it is the floor a
    recurrent core's memory is measured against (a trained memoryless policy, where zeroing
    a recurrent policy's state only gives a lower bound)."""

    num_layers = 1

    def __init__(self, input_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = input_size

    def forward(self, x, state=None, episode_starts=None):
        if state is None:
            zeros = x.new_zeros(1, x.shape[1], 1)
            state = (zeros, zeros)
        return x, state


#: at most this many time steps with an episode start: fused kernel over the pieces
FUSED_CUTS = 2


def _cuts(episode_starts: torch.Tensor) -> list[int]:
    """The time steps at which some sequence starts an episode."""
    return torch.nonzero(episode_starts.reshape(episode_starts.shape[0], -1).any(1))\
        .flatten().tolist()


def _fused_pieces(fused, x, state, episode_starts, cuts: list[int], hidden_size: int):
    """Run ``fused(piece, (h, c))`` over the pieces of ``x`` between ``cuts``, zeroing the
    state of the sequences that start at each cut."""
    T, B = x.shape[:2]
    if state is None:
        zeros = x.new_zeros(1, B, hidden_size)
        state = (zeros, zeros)
    h, c = state
    outputs = []
    bounds = sorted(set([0, T] + cuts))
    for start, stop in zip(bounds[:-1], bounds[1:]):
        if start in cuts:
            keep = (1.0 - episode_starts[start].to(x.dtype)).view(1, B, 1)
            h, c = h * keep, c * keep
        out, (h, c) = fused(x[start:stop], (h, c))
        outputs.append(out)
    return torch.cat(outputs), (h, c)


def _input_projection(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
    """``x W^T + b`` for all steps in one matrix product, split into per-step tensors."""
    T, B = x.shape[:2]
    return torch.addmm(bias, x.reshape(T * B, -1), weight.t()).view(T, B, -1).unbind(0)


def _rims(input_size: int, cfg: CoreConfig, elements: int = 1) -> nn.Module:
    return RIMs(input_size, cfg.hidden_size, elements=elements, compile=cfg.compile,
                settings=cfg.rims_settings())


def _lstm(input_size: int, cfg: CoreConfig, elements: int = 1) -> nn.Module:
    core = LSTMCore(input_size, cfg.hidden_size)
    if cfg.forget_bias is not None:  # the same start as RIMs on LSTM dynamics
        with torch.no_grad():
            H = cfg.hidden_size
            core.bias_ih_l0[H:2 * H].fill_(cfg.forget_bias)
            core.bias_hh_l0[H:2 * H].zero_()
    return core


CORES: dict[str, Callable[..., nn.Module]] = {
    "lstm": _lstm,
    "gru": lambda input_size, cfg, elements=1: GRUCore(input_size, cfg.hidden_size),
    "rims": _rims,
    "none": lambda input_size, cfg, elements=1: NoCore(input_size),
}


def build_core(input_size: int, cfg: CoreConfig, elements: int = 1) -> nn.Module:
    """The recurrent core named ``cfg.name`` with (flat) input size ``input_size``.

    ``elements`` > 1 says the input is that many equal elements, flattened (from a set
    encoder): RIMs then compete per element (spatial mode); LSTM and GRU read the flat vector.
    """
    if cfg.name not in CORES:
        raise UserError(unknown_name("core", cfg.name, CORES))
    return CORES[cfg.name](input_size, cfg, elements)
