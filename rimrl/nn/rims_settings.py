"""Every RIMs setting, declared once (:class:`RIMsSettings`), its one check
(:func:`check_rims_settings`) and the named presets with the source of each value
(:data:`VARIANTS`, :data:`ATARI_RIMS`, :data:`COPY_RIMS`).

:class:`~rimrl.nn.rim_cell.RIMCell` takes a :class:`RIMsSettings` (or its fields as keywords);
:class:`~rimrl.nn.cores.CoreConfig` *is* one (plus the core's name, size and compile switch),
so a new setting is added here and reaches the cell, the sequence module, ``build_core`` and
the YAML config (``core.<setting>``) without another list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

DYNAMICS_GATES = {"lstm": 4, "gru": 3}
#: how communication writes into a RIM's state: the thesis' plain map, or the official gate
COMM_OUTPUTS = ("linear", "gated")
#: which states communication reads: inactive RIMs' stored ones, or every RIM's fresh one
COMM_READS = ("stored", "fresh")


@dataclass
class RIMsSettings:
    """The settings of one RIMs core besides its input and total hidden size. Defaults: the
    thesis' text (section 8.2, copying setup of 8.4.1) plus rimrl's two additions (spatial
    competition, query bias); ``docs/rims.md`` compares them with the official code.

    Args:
        num_units: K, the number of RIMs (paper: 6).
        k_active: k_A, how many RIMs are active each step (paper: 4 of 6).
        dynamics: ``"lstm"`` or ``"gru"`` per-RIM transition dynamics (section 8.2.3).
        input_heads: heads of the input attention (paper copying setup: 1).
        input_key_size: key/query size per input head (paper: 64).
        input_value_size: value size per input head; ``None``: ``input_value_scale`` x the
            per-RIM hidden size.
        input_value_scale: the default value size in per-RIM sizes (thesis: 1; official
            code: 4, ``att_out = block_size * 4``).
        input_dropout: dropout on the values RIMs read (official code: 0.1). One mask per
            value element, shared by the RIMs that read it (the official code draws one per
            RIM; sharing keeps the read a single product over the sequence).
        comm_heads: heads of the communication attention (paper: 4).
        comm_key_size: key/query size per communication head (paper: 32; official code: 16).
        comm_value_size: value size per communication head (paper: 32; official code: 16).
        comm_topk: if set, each RIM reads from only its ``comm_topk`` best-matching RIMs.
        comm_output: ``"linear"``: a per-RIM linear map of what a RIM read is added to its
            state (rimrl's reading of eq. 8.2.4; unbounded); ``"gated"``: the official code's
            ``sigmoid(gate(ctx)) * tanh(fc(ctx))``, ``gate`` and ``fc`` shared by all RIMs,
            so one step adds at most 1 per unit.
        comm_dropout: dropout on the communication write (before ``tanh`` when gated;
            official: 0.1).
        comm_reads: ``"stored"``: communication reads inactive RIMs' kept states;
            ``"fresh"``: every RIM's freshly computed state, with gradient blocked into the
            inactive ones (official code, ``blocked_grad``). Inactive RIMs keep their old
            state either way.
        spatial_competition: in the spatial mode, each position is read only by the
            ``k_active`` RIMs that attend to it most (eq. 8.3).
        attention_init_std: initialisation of the attention maps (input key, value and query;
            communication query, key and value): ``None``, ``nn.Linear``'s uniform
            (1/sqrt(fan_in) bound); a number, a normal with that standard deviation (official
            code: 0.01, ``GroupLinearLayer``'s ``0.01 * randn``, so attention starts near
            uniform). Drawn after every other parameter, so the others start alike either way.
        forget_bias: LSTM dynamics: the forget-gate bias at initialisation (1.0, the usual
            remedy for long gaps; ``None``: the layer's own initialisation, as the official
            code leaves it). The ``lstm`` core reads the same setting, so a baseline LSTM
            starts like the RIMs it is compared with.
        query_bias: a learned per-RIM bias on the input-attention query. Without it a zero
            state (every episode start) gives every RIM the query 0: all logits are 0, every
            RIM reads the same uniform mix, and the top-k_A choice is a tie that the same
            RIMs win whatever the input. With it, selection from a zero state is
            ``b_k . key(x)``: it depends on the input. Models saved without it load with a
            zero bias (their exact behaviour).
    """

    num_units: int = 6
    k_active: int = 4
    dynamics: str = "lstm"
    input_heads: int = 1
    input_key_size: int = 64
    input_value_size: Optional[int] = None
    input_value_scale: int = 1
    input_dropout: float = 0.0
    comm_heads: int = 4
    comm_key_size: int = 32
    comm_value_size: int = 32
    comm_topk: Optional[int] = None
    comm_output: str = "linear"
    comm_dropout: float = 0.0
    comm_reads: str = "stored"
    spatial_competition: bool = True
    attention_init_std: Optional[float] = None
    forget_bias: Optional[float] = 1.0
    query_bias: bool = True

    def rims_settings(self) -> "RIMsSettings":
        """Just the RIMs settings (a subclass such as ``CoreConfig`` carries more)."""
        return RIMsSettings(**{f.name: getattr(self, f.name) for f in SETTINGS})

    def check(self, hidden_size: int) -> None:
        """:func:`check_rims_settings` on these settings and a total ``hidden_size``."""
        check_rims_settings(hidden_size, self.rims_settings())


SETTINGS = dataclasses.fields(RIMsSettings)


def check_rims_settings(hidden_size: int, s: RIMsSettings) -> None:
    """The one check of RIMs settings: a ``ValueError`` naming the setting and a valid
    choice (the config prefixes ``core.``)."""
    if s.dynamics not in DYNAMICS_GATES:
        raise ValueError(f"dynamics {s.dynamics!r} is unknown; choose lstm or gru")
    for name, choices in (("comm_output", COMM_OUTPUTS), ("comm_reads", COMM_READS)):
        if getattr(s, name) not in choices:
            raise ValueError(f"{name} {getattr(s, name)!r} is unknown; choose "
                             f"{' or '.join(choices)}")
    if s.num_units < 1:
        raise ValueError(f"num_units must be positive, got {s.num_units}")
    if not 1 <= s.k_active <= s.num_units:
        raise ValueError(f"k_active ({s.k_active}) must be between 1 and num_units "
                         f"({s.num_units}); lower k_active or raise num_units")
    if hidden_size < 1 or hidden_size % s.num_units:
        raise ValueError(f"hidden_size {hidden_size} is not a positive multiple of num_units "
                         f"{s.num_units}; use e.g. "
                         f"{s.num_units * max(1, round(hidden_size / s.num_units))}")
    if s.comm_topk is not None and not 1 <= s.comm_topk <= s.num_units:
        raise ValueError(f"comm_topk must be between 1 and num_units ({s.num_units}), "
                         f"got {s.comm_topk}")
    for name in ("input_heads", "input_key_size", "input_value_size", "input_value_scale",
                 "comm_heads", "comm_key_size", "comm_value_size"):
        value = getattr(s, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    for name in ("input_dropout", "comm_dropout"):
        if not 0.0 <= getattr(s, name) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(s, name)}")
    if s.attention_init_std is not None and not 0.0 < s.attention_init_std <= 10.0:
        raise ValueError(f"attention_init_std must be in (0, 10] (or null: nn.Linear's "
                         f"init), got {s.attention_init_std}")
    if s.forget_bias is not None and not -100.0 <= s.forget_bias <= 100.0:
        raise ValueError(f"forget_bias must be in [-100, 100] (or null: the layer's init), "
                         f"got {s.forget_bias}")


# ------------------------------------------------------------------------------ presets
#: RIMs variants, selected with ``core.variant``: a variant the user names sets the settings
#: it lists (over the config files, under explicit ``--set core.<setting>``). ``official`` is
#: every choice of the authors' sequence-task code (anirudh9119/RIMs, ``event_based/``
#: blocks_core.py and attention.py, input attention "version 1": a zero null row, softmax over
#: the inputs), read in shared/notes/REFERENCE.md. Their Atari PPO code (``blocks_atari``)
#: runs a "version 2" that is a different read, not a few settings (no null row, softmax
#: across RIMs, sparse top-k read), so it is not a variant here: docs/rims.md lists it.
#: ``thesis`` sets the same settings to RIMsSettings' own defaults (the thesis' text with
#: rimrl's query bias).
_OFFICIAL: dict[str, Any] = {
    "input_heads": 1,            # inp_att: n_head=1
    "input_key_size": 64,        # inp_att: d_k=64
    "input_value_size": None,    # d_v = att_out = block_size_out * 4 ...
    "input_value_scale": 4,      # ... 4x the per-RIM size
    "input_dropout": 0.1,        # MultiHeadAttention(dropout=0.1) on the read
    "comm_heads": 4,             # mha: n_head=4
    "comm_key_size": 16,         # mha: d_k=16
    "comm_value_size": 16,       # mha: d_v=16
    "comm_topk": None,           # mha: topk=num_blocks_out (dense)
    "comm_output": "gated",      # sigmoid(gate_fc(ctx)) * tanh(fc(ctx))
    "comm_dropout": 0.1,         # dropout(fc(ctx)) before the tanh
    "comm_reads": "fresh",       # blocked_grad(hx_new, mask) read by all, then revert
    "attention_init_std": 0.01,  # GroupLinearLayer: 0.01 * torch.randn for q, k and v
    "forget_bias": None,         # nn.LSTMCell's own init, no forget-gate offset
    "query_bias": False,         # GroupLinearLayer queries have no bias
}
VARIANTS: dict[str, dict[str, Any]] = {
    "thesis": {key: getattr(RIMsSettings, key) for key in _OFFICIAL},
    "official": _OFFICIAL,
}

#: The RIMs paper's Atari PPO core (appendix; REFERENCE.md): 6 RIMs, 4 active, GRU dynamics,
#: 6 x 85 = 510 units (512 does not divide by 6), in the official code's variant without its
#: dropout: PPO's default (``rimrl train ppo`` and the SB3 policy classes). Official, for the
#: bounded state and calmer updates it gave at equal success (benchmarks/RESULTS.md,
#: "rims-variants-pickup"). No dropout, because PPO needs one policy for acting and
#: learning: sb3-contrib collects in eval mode and updates in train mode, so with dropout the
#: first epoch's log-probabilities already differ from the rollout's
#: (:func:`rimrl.agents.ppo.policies.check_one_policy`; RESULTS, "one-policy").
ATARI_RIMS = dict(name="rims", hidden_size=510, num_units=6, k_active=4, dynamics="gru",
                  variant="official", **(_OFFICIAL | {"input_dropout": 0.0,
                                                      "comm_dropout": 0.0}))
#: the copying task (RIMs paper, Table 1): 6 RIMs of 100 units, k_A = 4 (the thesis'
#: section 8.4.1 sizes; ``rimrl train copy``'s defaults). Thesis variant: it copies better
#: than the official one and keeps more of it at longer gaps (benchmarks/RESULTS.md,
#: "copying-table1").
COPY_RIMS = dict(name="rims", hidden_size=600, num_units=6, k_active=4, variant="thesis")


def variant_values(variant: Optional[str]) -> dict[str, Any]:
    """The settings ``variant`` sets; a ``ValueError`` naming the choices if unknown."""
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is unknown; choose {' or '.join(VARIANTS)}")
    return dict(VARIANTS[variant])
