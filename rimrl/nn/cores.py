"""Recurrent cores by name: ``lstm``, ``gru``, ``rims``. The one place a core is chosen.

Every core has the call convention of ``torch.nn.LSTM`` (time-major input (T, B, F), a
two-tensor state each (1, B, H), output (T, B, H)) plus an optional ``episode_starts``
(T, B) keyword that zeroes a sequence's state before the marked step. Algorithms call
:func:`build_core` with a :class:`CoreConfig` and never branch on the name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from rimrl.errors import UserError
from rimrl.nn.rims import RIMs


@dataclass
class CoreConfig:
    """Choice and size of the recurrent core.

    Args:
        name: ``lstm``, ``gru`` or ``rims``.
        hidden_size: total hidden size H (for RIMs: num_units x per-RIM size).
        num_units: RIMs only: K, the number of RIMs (thesis 8.4: 6).
        k_active: RIMs only: k_A, RIMs active per step (thesis 8.4: 4 of 6).
        dynamics: RIMs only: per-RIM ``lstm`` or ``gru`` dynamics.
        input_heads, input_key_size, input_value_size: RIMs input attention (paper: 1, 64,
            value defaults to the per-RIM size).
        comm_heads, comm_key_size, comm_value_size, comm_topk: RIMs communication attention
            (paper: 4 heads, key and value 32, dense).
        spatial_competition: RIMs only: in the spatial mode each position is read only by the
            k_A RIMs attending to it most.
        compile: RIMs only: ``torch.compile`` the step (faster, ~30 s to compile once).
    """

    name: str = "rims"
    hidden_size: int = 600
    num_units: int = 6
    k_active: int = 4
    dynamics: str = "lstm"
    input_heads: int = 1
    input_key_size: int = 64
    input_value_size: Optional[int] = None
    comm_heads: int = 4
    comm_key_size: int = 32
    comm_value_size: int = 32
    comm_topk: Optional[int] = None
    spatial_competition: bool = True
    compile: bool = False

    def __post_init__(self):
        if self.name not in CORES:
            raise UserError(unknown_name("core", self.name, CORES))
        if self.hidden_size < 1:
            raise UserError(f"core hidden_size must be positive, got {self.hidden_size}")
        if self.name == "rims":
            if self.num_units < 1:
                raise UserError(f"num_units must be positive, got {self.num_units}")
            if not 1 <= self.k_active <= self.num_units:
                raise UserError(
                    f"k_active ({self.k_active}) must be between 1 and num_units "
                    f"({self.num_units}); lower core.k_active or raise core.num_units"
                )
            if self.hidden_size % self.num_units:
                raise UserError(
                    f"hidden_size {self.hidden_size} is not divisible by num_units "
                    f"{self.num_units}; use a multiple such as "
                    f"{self.num_units * max(1, round(self.hidden_size / self.num_units))}"
                )
            if self.dynamics not in ("lstm", "gru"):
                raise UserError(f"unknown RIM dynamics {self.dynamics!r}; choose lstm or gru")


def unknown_name(kind: str, name: str, choices) -> str:
    """One line: the unknown name, the nearest valid one and all valid ones."""
    near = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.4)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown {kind} '{name}'; {hint}choose one of: {', '.join(sorted(choices))}"


class LSTMCore(nn.LSTM):
    """``torch.nn.LSTM`` (one layer) that also honours ``episode_starts``.

    Without episode starts it is one fused call. With them, the sequence is cut at the steps
    where any sequence starts, each piece runs fused, and the starting sequences' state is
    zeroed at the cut: the same result as a per-step loop at a fraction of the cost.
    """

    def forward(self, x, state=None, episode_starts=None):
        if episode_starts is None:
            return super().forward(x, state)
        T, B = x.shape[:2]
        if state is None:
            zeros = x.new_zeros(1, B, self.hidden_size)
            state = (zeros, zeros)
        starts = episode_starts.to(x.dtype)
        cuts = [0] + [t for t in range(1, T) if bool(starts[t].any())] + [T]
        outputs = []
        h, c = state
        for begin, end in zip(cuts[:-1], cuts[1:]):
            keep = (1.0 - starts[begin]).view(1, B, 1)
            out, (h, c) = super().forward(x[begin:end], (h * keep, c * keep))
            outputs.append(out)
        return torch.cat(outputs), (h, c)


class GRUCore(nn.Module):
    """``torch.nn.GRU`` behind the LSTM convention: a second state tensor, carried as zeros."""

    num_layers = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size

    def forward(self, x, state=None, episode_starts=None):
        T, B = x.shape[:2]
        h = x.new_zeros(1, B, self.hidden_size) if state is None else state[0]
        starts = episode_starts.to(x.dtype) if episode_starts is not None else None
        cuts = [0, T]
        if starts is not None:
            cuts = [0] + [t for t in range(1, T) if bool(starts[t].any())] + [T]
        outputs = []
        for begin, end in zip(cuts[:-1], cuts[1:]):
            if starts is not None:
                h = h * (1.0 - starts[begin]).view(1, B, 1)
            out, h = self.gru(x[begin:end], h)
            outputs.append(out)
        return torch.cat(outputs), (h, torch.zeros_like(h))


def _rims(input_size: int, cfg: CoreConfig, elements: int = 1) -> nn.Module:
    return RIMs(
        input_size, cfg.hidden_size, elements=elements, num_units=cfg.num_units, k_active=cfg.k_active,
        dynamics=cfg.dynamics, compile=cfg.compile, input_heads=cfg.input_heads,
        input_key_size=cfg.input_key_size, input_value_size=cfg.input_value_size,
        comm_heads=cfg.comm_heads, comm_key_size=cfg.comm_key_size,
        comm_value_size=cfg.comm_value_size, comm_topk=cfg.comm_topk,
        spatial_competition=cfg.spatial_competition,
    )


CORES: dict[str, Callable[..., nn.Module]] = {
    "lstm": lambda input_size, cfg, elements=1: LSTMCore(input_size, cfg.hidden_size),
    "gru": lambda input_size, cfg, elements=1: GRUCore(input_size, cfg.hidden_size),
    "rims": _rims,
}


# Cores that can read a set of elements (spatial mode) rather than one vector.
READS_SETS = {"rims"}


def build_core(input_size: int, cfg: CoreConfig, elements: int = 1) -> nn.Module:
    """The recurrent core named ``cfg.name`` with (flat) input size ``input_size``.

    ``elements`` > 1 says the input is that many equal elements, flattened (from a set
    encoder): RIMs then compete per element (spatial mode); LSTM and GRU read the flat vector.
    """
    if cfg.name not in CORES:
        raise UserError(unknown_name("core", cfg.name, CORES))
    return CORES[cfg.name](input_size, cfg, elements)
