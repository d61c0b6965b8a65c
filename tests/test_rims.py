"""Properties of the RIMs core (thesis section 8.2), each checked directly."""

import math

import pytest
import torch

from rimrl.nn import RIMCell, RIMs
from rimrl.nn.attention import topk_mask
from rimrl.nn.rims import from_units, to_units


def small(dynamics="lstm", **kw):
    torch.manual_seed(0)
    args = dict(input_size=5, hidden_size=12, num_units=4, k_active=2, dynamics=dynamics,
                input_key_size=6, comm_key_size=4, comm_value_size=4, comm_heads=2)
    args.update(kw)
    return RIMs(**args)


def reference_step(cell: RIMCell, x, h, c):
    """A slow, literal RIMs step: loops over RIMs, softmax over [null row; input rows]."""
    K, hs = cell.num_units, cell.unit_size
    B = x.shape[0]
    elements = x.unsqueeze(1) if x.dim() == 2 else x  # (B, N, F)
    X = torch.cat([torch.zeros_like(elements[:, :1]), elements], dim=1)  # eq. 8.1
    heads, dk, dv = cell.input_heads, cell.input_key_size, cell.input_value_size
    keys = cell.input_key(X).view(B, -1, heads, dk)
    values = cell.input_value(X).view(B, -1, heads, dv)
    hk = h.view(B, K, hs)
    ck = c.view(B, K, hs)
    probs = []
    for k in range(K):
        q = hk[:, k] @ cell.input_query[k]
        if cell.input_query_bias is not None:
            q = q + cell.input_query_bias[k]
        q = q.view(B, heads, dk)
        p = torch.softmax(torch.einsum("bhd,bnhd->bhn", q, keys) / math.sqrt(dk), -1)
        probs.append(p)
    probs = torch.stack(probs, 1)  # (B, K, heads, N+1)
    null = probs[..., 0].mean(-1)  # (B, K)
    active = topk_mask(-null, cell.k_active, dim=1)
    read = probs[..., 1:]
    if x.dim() == 3 and cell.spatial_competition:
        read = read * topk_mask(read.mean(2), cell.k_active, dim=1).unsqueeze(2)
    new_h, new_c = [], []
    for k in range(K):
        a = torch.einsum("bhn,bnhd->bhd", read[:, k], values[:, 1:]).reshape(B, -1)
        g = a @ cell.weight_ih[k] + hk[:, k] @ cell.weight_hh[k] + cell.bias_ih[k, 0]
        if cell.dynamics == "lstm":
            i, f, gg, o = g.chunk(4, -1)
            cn = torch.sigmoid(f) * ck[:, k] + torch.sigmoid(i) * torch.tanh(gg)
            hn = torch.sigmoid(o) * torch.tanh(cn)
        else:
            gi = a @ cell.weight_ih[k] + cell.bias_ih[k, 0]
            gh = hk[:, k] @ cell.weight_hh[k] + cell.bias_hh[k, 0]
            r = torch.sigmoid(gi[:, :hs] + gh[:, :hs])
            z = torch.sigmoid(gi[:, hs:2 * hs] + gh[:, hs:2 * hs])
            n = torch.tanh(gi[:, 2 * hs:] + r * gh[:, 2 * hs:])
            hn, cn = (1 - z) * n + z * hk[:, k], ck[:, k]
        new_h.append(hn)
        new_c.append(cn)
    fresh = torch.stack(new_h, 1)
    ht = torch.where(active.unsqueeze(-1), fresh, hk)
    # communication: active RIMs read from all RIMs (eq. in 8.2.4), residual; the official
    # code reads every RIM's fresh state instead of the kept state of inactive ones
    reads = fresh if cell.comm_reads == "fresh" else ht
    H, ck_, cv = cell.comm_heads, cell.comm_key_size, cell.comm_value_size
    qs, ks, vs = [], [], []
    for k in range(K):
        q, kk, v = (reads[:, k] @ cell.comm_qkv[k]).split(cell._comm_split, -1)
        qs.append(q.view(B, H, ck_)), ks.append(kk.view(B, H, ck_)), vs.append(v.view(B, H, cv))
    Q, Kt, V = torch.stack(qs, 2), torch.stack(ks, 2), torch.stack(vs, 2)  # (B, H, K, d)
    scores = Q @ Kt.transpose(-1, -2) / math.sqrt(ck_)  # (B, H, K reading, K read)
    if cell.comm_topk is not None:  # each RIM reads only its comm_topk best-matching RIMs
        for b in range(B):
            for hh in range(H):
                for k in range(K):
                    row = scores[b, hh, k]
                    keep = sorted(range(K), key=lambda j: -float(row[j]))[:cell.comm_topk]
                    scores[b, hh, k] = torch.where(
                        torch.tensor([j in keep for j in range(K)]), row,
                        torch.tensor(float("-inf")))
    att = torch.softmax(scores, -1)
    ctx = (att @ V).permute(0, 2, 1, 3).reshape(B, K, H * cv)
    if cell.comm_output == "gated":  # official: sigmoid(gate_fc(ctx)) * tanh(fc(ctx)), shared
        gate = torch.sigmoid(ctx @ cell.comm_gate.weight.T + cell.comm_gate.bias)
        comm = gate * torch.tanh(ctx @ cell.comm_fc.weight.T + cell.comm_fc.bias)
    else:
        comm = torch.stack([ctx[:, k] @ cell.comm_out[k] for k in range(K)], 1)
    h_next = torch.where(active.unsqueeze(-1), ht + comm, hk)
    c_next = torch.where(active.unsqueeze(-1), torch.stack(new_c, 1), ck)
    return h_next.reshape(B, -1), c_next.reshape(B, -1), active


@pytest.mark.parametrize("dynamics", ["lstm", "gru"])
@pytest.mark.parametrize("heads", [1, 3])
def test_step_matches_literal_reference(dynamics, heads):
    m = small(dynamics, input_heads=heads)
    x = torch.randn(3, 5)
    h, c = torch.randn(3, 12), torch.randn(3, 12)
    out, (h1, c1) = m(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
    rh, rc, ractive = reference_step(m.cell, x, h, c)
    assert torch.allclose(h1[0], rh, atol=1e-5)
    assert torch.allclose(c1[0], rc, atol=1e-5)
    assert torch.equal(m.last_active[0], ractive)
    assert torch.allclose(out[0], h1[0])


def test_spatial_step_matches_literal_reference():
    m = small(input_heads=2)
    x = torch.randn(3, 7, 5)  # 7 positions
    h, c = torch.randn(3, 12), torch.randn(3, 12)
    _, (h1, c1) = m(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
    rh, rc, ractive = reference_step(m.cell, x, h, c)
    assert torch.allclose(h1[0], rh, atol=1e-5)
    assert torch.allclose(c1[0], rc, atol=1e-5)
    assert torch.equal(m.last_active[0], ractive)


def test_lstm_compatible_shapes_and_attributes():
    m = small()
    assert (m.input_size, m.hidden_size, m.num_layers) == (5, 12, 1)
    out, (h, c) = m(torch.randn(7, 3, 5))
    assert out.shape == (7, 3, 12) and h.shape == (1, 3, 12) and c.shape == (1, 3, 12)
    out2, _ = m(torch.randn(7, 3, 5), (h, c))
    assert out2.shape == (7, 3, 12)
    assert m.last_active.shape == (7, 3, 4) and m.last_active.dtype == torch.bool


@pytest.mark.parametrize("spatial", [False, True])
def test_exactly_k_active(spatial):
    m = small(num_units=6, hidden_size=18, k_active=4)
    x = torch.randn(9, 4, 3, 5) if spatial else torch.randn(9, 4, 5)
    out, _ = m(x)
    assert out.shape == (9, 4, 18)
    assert (m.last_active.sum(-1) == 4).all()


@pytest.mark.parametrize("dynamics", ["lstm", "gru"])
def test_inactive_units_keep_state_exactly(dynamics):
    m = small(dynamics)
    h, c = torch.randn(1, 6, 12), torch.randn(1, 6, 12)
    _, (h1, c1) = m(torch.randn(1, 6, 5), (h, c))
    inactive = ~m.last_active[0]  # (B, K)
    hu, h1u = h[0].view(6, 4, 3), h1[0].view(6, 4, 3)
    cu, c1u = c[0].view(6, 4, 3), c1[0].view(6, 4, 3)
    assert inactive.sum() == 6 * 2
    assert torch.equal(h1u[inactive], hu[inactive])
    assert torch.equal(c1u[inactive], cu[inactive])
    active = ~inactive
    assert not torch.allclose(h1u[active], hu[active])


def test_null_rule_selects_least_null_attention():
    """Hand-built case: RIM queries aligned with the input key win."""
    m = small(num_units=3, hidden_size=3, k_active=1, input_key_size=1, comm_key_size=1,
              comm_value_size=1, comm_heads=1)
    cell = m.cell
    with torch.no_grad():
        cell.input_key.weight.fill_(1.0)  # key(x) = sum(x)
        cell.input_query.copy_(torch.tensor([1.0, -2.0, 3.0]).view(3, 1, 1))  # q_k = w_k * h_k
    x = torch.ones(1, 1, 5)  # key = 5
    h = torch.ones(1, 1, 3)
    m(x, (h, torch.zeros_like(h)))
    # logits 5, -10, 15 against the null's 0: RIM 2 attends least to the null
    assert m.last_active[0, 0].tolist() == [False, False, True]
    null_prob = torch.sigmoid(-torch.tensor([5.0, -10.0, 15.0]))
    softmax_null = torch.softmax(torch.tensor([[0.0, 5.0], [0.0, -10.0], [0.0, 15.0]]), -1)[:, 0]
    assert torch.allclose(null_prob, softmax_null)


def test_no_gradient_into_inactive_update_but_through_carried_state():
    m = small()
    h = torch.randn(1, 1, 12, requires_grad=True)
    c = torch.randn(1, 1, 12)
    out, _ = m(torch.randn(1, 1, 5), (h, c))
    out.sum().backward()
    active = m.last_active[0, 0]
    cell = m.cell
    for name in ("weight_ih", "weight_hh", "bias_ih", "input_query"):
        grad = getattr(cell, name).grad
        per_unit = grad.flatten(1).abs().sum(1)
        assert (per_unit[~active] == 0).all(), name
        assert (per_unit[active] > 0).all(), name
    # the carried state of an inactive RIM still passes gradient (identity path)
    gh = h.grad[0, 0].view(4, 3)
    assert (gh[~active].abs().sum(-1) > 0).all()


def test_per_unit_parameters_are_independent():
    m = small()
    with torch.no_grad():
        m.cell.comm_out.zero_()  # silence communication: each RIM is then on its own
        m.cell.input_query.zero_()  # equal scores: the same RIMs win before and after
    x, h = torch.randn(1, 2, 5), torch.randn(1, 2, 12)
    state = (h, torch.zeros_like(h))
    out_a, _ = m(x, state)
    unit = int(m.last_active[0, 0].nonzero()[0])
    with torch.no_grad():
        m.cell.weight_hh[unit] += 0.5
    out_b, _ = m(x, state)
    changed = (out_a - out_b)[0, 0].view(4, 3).abs().sum(-1) > 0
    assert changed.tolist() == [k == unit for k in range(4)]


def test_episode_starts_reset_state():
    m = small()
    x = torch.randn(6, 2, 5)
    h = torch.randn(1, 2, 12)
    state = (h, torch.randn(1, 2, 12))
    starts = torch.zeros(6, 2)
    starts[3, 1] = 1
    out, _ = m(x, state, episode_starts=starts)
    fresh, _ = m(x[3:, 1:2])  # zero state from t=3 for sequence 1
    assert torch.allclose(out[3:, 1], fresh[:, 0], atol=1e-6)
    plain, _ = m(x, state)
    assert torch.allclose(out[:, 0], plain[:, 0])
    assert not torch.allclose(out[3:, 1], plain[3:, 1])


def test_sequence_equals_stepping_the_cell():
    m = small("gru")
    x = torch.randn(5, 3, 5)
    out, (h, c) = m(x)
    hs, cs = torch.zeros(3, 12), torch.zeros(3, 12)
    for t in range(5):
        step_out, (hs, cs) = m.cell(x[t], (hs, cs))
    assert torch.allclose(out[-1], step_out, atol=1e-6)
    assert torch.allclose(h[0], hs, atol=1e-6)


@pytest.mark.parametrize("dynamics", ["lstm", "gru"])
@pytest.mark.parametrize("spatial", [False, True])
def test_sequence_gradients_equal_per_step_autograd(dynamics, spatial):
    """The sequence path sums each weight's gradient once (SharedWeight); stepping the cell
    one call at a time uses plain autograd: the gradients must agree."""
    torch.manual_seed(0)
    m = RIMs(5 * (4 if spatial else 1), 12, num_units=3, k_active=2, dynamics=dynamics,
             elements=4 if spatial else 1, input_key_size=4, comm_key_size=4,
             comm_value_size=4)
    x = torch.randn(6, 3, 5 * (4 if spatial else 1))
    h0 = torch.randn(1, 3, 12)
    out, (h, c) = m(x, (h0, h0))
    params = list(m.parameters())
    seq = torch.autograd.grad(out.square().sum() + c.sum(), params, allow_unused=True)
    hs, cs = h0[0], h0[0]
    total = 0
    for t in range(6):
        xt = x[t].unflatten(-1, (4, 5)) if spatial else x[t]
        hs, (hs, cs) = m.cell(xt, (hs, cs))
        total = total + hs.square().sum()
    stepped = torch.autograd.grad(total + cs.sum(), params, allow_unused=True)
    for name, a, b in zip([n for n, _ in m.named_parameters()], seq, stepped):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name


def test_shared_weight_hand_values():
    from rimrl.nn.shared_weight import SharedWeight

    w = torch.tensor([[[2.0]]], requires_grad=True)  # K=1, in=1, out=1
    b = torch.tensor([[[1.0]]], requires_grad=True)
    shared = SharedWeight(w, b)
    h1 = torch.tensor([[[3.0]]])
    y1 = shared(h1)  # 1 + 3 * 2 = 7
    y2 = shared(y1)  # 1 + 7 * 2 = 15
    assert y1.item() == 7.0 and y2.item() == 15.0
    y2.backward()
    # d y2/d w = y1 + w * d y1/d w = 7 + 2 * 3 = 13; d y2/d b = 1 + w * 1 = 3
    assert w.grad.item() == 13.0 and b.grad.item() == 3.0
    with torch.no_grad():
        assert not SharedWeight(w, b).deferred
    # the shared tensors used directly as well: their own gradient is added to the steps'
    w.grad = b.grad = None
    shared = SharedWeight(w, b)
    y = shared(h1) + 5 * shared.weight + shared.bias ** 2  # 7 + 10 + 1 = 18
    y.backward()
    # d/dw = 3 + 5 = 8; d/db = 1 + 2 * 1 = 3
    assert y.item() == 18.0 and w.grad.item() == 8.0 and b.grad.item() == 3.0


@pytest.mark.parametrize("topk", [1, 2])
def test_comm_topk_matches_literal_reference(topk):
    """Sparse communication: the step equals the literal reference that keeps each RIM's
    ``comm_topk`` largest scores, and differs from dense communication (the switch acts)."""
    m = small(comm_topk=topk)
    x = torch.randn(3, 5)
    h, c = torch.randn(3, 12), torch.randn(3, 12)
    _, (h1, _) = m(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
    rh, _, _ = reference_step(m.cell, x, h, c)
    assert torch.allclose(h1[0], rh, atol=1e-5)
    m.cell.comm_topk = None
    _, (dense, _) = m(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
    assert not torch.allclose(dense[0], h1[0], atol=1e-4)


def test_unit_layout_round_trip():
    s = torch.arange(24.0).view(2, 12)
    u = to_units(s, 4)
    assert u.shape == (4, 2, 3)
    assert torch.equal(u[1, 0], torch.tensor([3.0, 4.0, 5.0]))
    assert torch.equal(from_units(u), s)


def test_topk_mask_hand_values():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.3, 0.2]])
    assert topk_mask(scores, 2, dim=1).tolist() == [[False, True, True], [True, True, False]]
    assert topk_mask(scores, 3, dim=1).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(k_active=5), "k_active"),
    (dict(hidden_size=13), "not a positive multiple of num_units"),
    (dict(dynamics="rnn"), "dynamics"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_gradients_are_finite_over_long_sequences():
    m = small()
    out, _ = m(torch.randn(60, 2, 5))
    out.pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_compile_switch_routes_every_step_through_torch_compile(monkeypatch):
    """compile=True steps through torch.compile's function (a counting stand-in here, so the
    default suite pays no compilation), with the eager path's outputs; a compilation failure
    falls back to the eager step once, with a warning."""
    import rimrl.nn.rims as rims_module

    calls = []

    def fake_compile(fn, **kwargs):
        def compiled(*args):
            calls.append(kwargs)
            return fn(*args)
        return compiled

    monkeypatch.setattr(rims_module.torch, "compile", fake_compile)
    x = torch.randn(4, 3, 5)
    eager, (h_e, _) = small()(x)
    compiled = small(compile=True)
    out, (h, _) = compiled(x)
    assert len(calls) == 4 and calls[0]["dynamic"] is False
    assert torch.allclose(out, eager, atol=1e-6) and torch.allclose(h, h_e, atol=1e-6)

    def failing_compile(fn, **kwargs):
        def compiled(*args):
            raise RuntimeError("inductor could not lower this graph")
        return compiled

    monkeypatch.setattr(rims_module.torch, "compile", failing_compile)
    broken = small(compile=True)
    with pytest.warns(UserWarning, match="continuing without compilation"):
        out, _ = broken(x)
    assert broken.compile is False and torch.allclose(out, eager, atol=1e-6)


@pytest.mark.slow
def test_compiled_step_matches_eager_outputs_and_gradients():
    """The real torch.compile of the step (~30 s on 2 cores): same outputs and gradients."""
    x = torch.randn(6, 3, 5)
    results = []
    for compile in (False, True):
        m = small(compile=compile)
        out, (h, c) = m(x)
        grads = torch.autograd.grad(out.square().sum() + c.sum(), list(m.parameters()),
                                    allow_unused=True)
        results.append((out, grads))
    (out_e, grads_e), (out_c, grads_c) = results
    assert torch.allclose(out_e, out_c, atol=1e-5)
    for a, b in zip(grads_e, grads_c):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spatial", [False, True])
def test_cell_step_without_a_state_starts_from_zeros(spatial):
    """RIMCell's one-step API: no state means zeros; it records the (B, K) activity mask."""
    m = small(elements=2, input_size=10) if spatial else small()
    x = torch.randn(3, 2, 5) if spatial else torch.randn(3, 5)
    zeros = torch.zeros(3, 12)
    out, (h, c) = m.cell(x)
    out0, (h0, c0) = m.cell(x, (zeros, zeros))
    assert torch.equal(out, out0) and torch.equal(h, h0) and torch.equal(c, c0)
    assert out.shape == (3, 12) and m.cell.last_active.shape == (3, 4)
    assert m.cell.last_active.sum(1).tolist() == [2, 2, 2]  # k_A of K RIMs per example


def test_build_core_passes_every_rims_setting_on():
    """Each CoreConfig field reaches the module (a dropped one would fall back to RIMs' own
    default silently): non-default values everywhere, checked on the attributes and on the
    parameter shapes against a RIMs built directly with the same settings."""
    from dataclasses import fields

    from rimrl.nn.cores import CoreConfig, build_core

    settings = dict(hidden_size=24, num_units=3, k_active=1, dynamics="gru", input_heads=2,
                    input_key_size=5, input_value_size=7, input_value_scale=3,
                    input_dropout=0.2, comm_heads=3, comm_key_size=6, comm_value_size=9,
                    comm_topk=2, comm_output="gated", comm_dropout=0.3, comm_reads="fresh",
                    spatial_competition=False, attention_init_std=0.05, forget_bias=2.0,
                    query_bias=False, compile=True)
    defaults = CoreConfig()
    assert {f.name for f in fields(CoreConfig)} == set(settings) | {"name", "variant"}
    assert all(getattr(defaults, key) != value for key, value in settings.items())
    core = build_core(16, CoreConfig(name="rims", **settings), elements=2)
    direct = RIMs(16, elements=2, **settings)
    assert core.cell.settings == direct.cell.settings
    for key in settings:
        if key not in ("hidden_size", "compile"):
            assert getattr(core.cell, key) == settings[key], key
    assert (core.elements, core.compile, core.cell.input_query_bias) == (2, True, None)
    assert {k: v.shape for k, v in core.state_dict().items()} == {
        k: v.shape for k, v in direct.state_dict().items()}


@pytest.mark.parametrize("T", [1, 2])
def test_short_sequences_equal_single_steps(T):
    """A sequence of T steps equals T chained one-step calls (T = 1 returns the state itself,
    T >= 2 stacks the outputs): outputs, final state and the active set per step."""
    torch.manual_seed(0)
    rims = RIMs(5, 12, num_units=3, k_active=2)
    x = torch.randn(T, 4, 5)
    out, (h, c) = rims(x)
    active = rims.last_active
    assert out.shape == (T, 4, 12) and active.shape == (T, 4, 3)
    state = None
    for t in range(T):
        step_out, state = rims(x[t:t + 1], state)
        assert torch.allclose(out[t], step_out[0], atol=1e-6)
        assert torch.equal(active[t], rims.last_active[0])
    assert torch.allclose(h, state[0], atol=1e-6) and torch.allclose(c, state[1], atol=1e-6)


def test_input_shape_is_checked_with_the_sizes_it_takes():
    rims = RIMs(6, 12, num_units=3, k_active=2, elements=2)  # two elements of 3
    rims(torch.zeros(2, 1, 6))
    rims(torch.zeros(2, 1, 2, 3))
    for bad in (torch.zeros(2, 1, 5), torch.zeros(2, 1, 2, 4), torch.zeros(2, 6)):
        with pytest.raises(ValueError, match=r"RIMs expects input \(T, B, 6\) or \(T, B, N, 3\), "
                                             rf"got \({', '.join(map(str, bad.shape))}\)"):
            rims(bad)


def test_spatial_selection_ranks_rims_by_attention_off_the_null_element():
    """Spatial mode, thesis 8.2.2: a RIM's claim is 1 - (its attention on the null element),
    summed over all elements, not its attention to any one element. Crafted logits (null
    first, fixed at 0): RIM 0 (0, 0) -> 1 - 1/3; RIM 1 (5, -5) -> 0.993; RIM 2 (-5, 4) ->
    0.982, but RIM 2 puts the most on element 2 and the least on element 1."""
    from functools import partial

    from rimrl.nn.grouped import grouped_linear

    cell = RIMCell(4, 12, num_units=3, k_active=1, input_key_size=2)
    _, values = cell.precompute_spatial(torch.randn(1, 2, 4))  # B = 1, N = 2 elements
    keys = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # (B, N, heads, dk): one-hot
    query = torch.tensor([[0.0, 0.0], [5.0, -5.0], [-5.0, 4.0]]).view(3, 1, 2)

    def recurrent(h):  # zero gates, the crafted queries
        return torch.cat([h.new_zeros(3, 1, cell.gate_size), query], dim=2)

    h = torch.zeros(3, 1, 4)
    _, _, active = cell.step_with(keys, values, h, h.clone(), True, recurrent=recurrent,
                                  comm_qkv=partial(grouped_linear, weight=cell.comm_qkv),
                                  comm_out=partial(grouped_linear, weight=cell.comm_out))
    assert active[:, 0].tolist() == [False, True, False]


@pytest.mark.parametrize("settings, message", [
    (dict(num_units=1, k_active=1, hidden_size=1), None),  # one RIM of one unit: allowed
    (dict(k_active=6), None),                              # all active: allowed
    (dict(hidden_size=6), None),                           # one unit per RIM
    (dict(comm_topk=6), None),                             # read every RIM
    (dict(num_units=0, k_active=0, hidden_size=6), "num_units must be positive, got 0"),
    (dict(k_active=0), r"k_active \(0\) must be between 1 and num_units \(6\); lower k_active"),
    (dict(k_active=7), r"k_active \(7\) must be between 1 and num_units \(6\)"),
    (dict(hidden_size=0), "hidden_size 0 is not a positive multiple of num_units 6; use e.g. 6"),
    (dict(hidden_size=40), "hidden_size 40 is not a positive multiple of num_units 6; use e.g. 42"),
    (dict(comm_topk=0), r"comm_topk must be between 1 and num_units \(6\), got 0"),
    (dict(comm_topk=7), r"comm_topk must be between 1 and num_units \(6\), got 7"),
    (dict(dynamics="rnn"), "dynamics 'rnn' is unknown; choose lstm or gru"),
    (dict(comm_key_size=0), "comm_key_size must be positive, got 0"),
    (dict(input_value_scale=0), "input_value_scale must be positive, got 0"),
    (dict(input_dropout=0.0, comm_dropout=0.99), None),
    (dict(input_dropout=1.0), r"input_dropout must be in \[0, 1\), got 1.0"),
    (dict(comm_dropout=-0.1), r"comm_dropout must be in \[0, 1\), got -0.1"),
    (dict(comm_output="tanh"), "comm_output 'tanh' is unknown; choose linear or gated"),
    (dict(comm_reads="new"), "comm_reads 'new' is unknown; choose stored or fresh"),
    (dict(attention_init_std=10.0, forget_bias=-100.0), None),
    (dict(attention_init_std=0.0), r"attention_init_std must be in \(0, 10\]"),
    (dict(attention_init_std=float("nan")), r"attention_init_std must be in \(0, 10\]"),
    (dict(forget_bias=101.0), r"forget_bias must be in \[-100, 100\]"),
])
def test_rims_settings_boundaries_and_messages(settings, message):
    """The one check of RIMs settings (CoreConfig's and RIMCell's): each limit's last valid
    value passes, the first invalid one is refused with its message."""
    from rimrl.nn.rims_settings import RIMsSettings, check_rims_settings

    hidden_size = settings.pop("hidden_size", 12)
    args = RIMsSettings(**dict(num_units=6, k_active=4, dynamics="lstm") | settings)
    if message is None:
        check_rims_settings(hidden_size, args)
    else:
        with pytest.raises(ValueError, match=f"^{message}"):
            check_rims_settings(hidden_size, args)


def test_rims_defaults_are_the_thesis_settings():
    """RIMCell's own defaults, the one home of each (CoreConfig and RIMs read them): K = 6,
    k_A = 4, LSTM dynamics; input attention 1 head, key 64, value the per-RIM size;
    communication 4 heads, key and value 32, dense; the spatial competition and the query
    bias on (rimrl's additions, see RIMCell)."""
    import dataclasses

    from rimrl.nn.cores import CoreConfig
    from rimrl.nn.rims_settings import RIMsSettings

    cell = dataclasses.asdict(RIMsSettings())
    assert cell == dict(num_units=6, k_active=4, dynamics="lstm", input_heads=1,
                        input_key_size=64, input_value_size=None, input_value_scale=1,
                        input_dropout=0.0, comm_heads=4, comm_key_size=32,
                        comm_value_size=32, comm_topk=None, comm_output="linear",
                        comm_dropout=0.0, comm_reads="stored", spatial_competition=True,
                        attention_init_std=None, forget_bias=1.0, query_bias=True)
    assert RIMCell(8, 12).settings == RIMsSettings()
    config = CoreConfig()
    assert {k: getattr(config, k) for k in cell} == cell and config.compile is False
    rims = RIMs(8, 12)
    assert (rims.num_units, rims.k_active, rims.compile, rims.cell.dynamics) == (6, 4, False,
                                                                                 "lstm")


@pytest.mark.parametrize("dynamics, params", [
    ("lstm", {"bias_ih": (3, 1, 16), "weight_ih": (3, 4, 16), "weight_hh": (3, 4, 16)}),
    ("gru", {"bias_ih": (3, 1, 12), "bias_hh": (3, 1, 12), "weight_ih": (3, 4, 12),
             "weight_hh": (3, 4, 12)}),
])
def test_cell_parameters_by_hand(dynamics, params):
    """K = 3 RIMs of 4 units on 1-unit inputs (input_size 1 is allowed): bias-free input key
    and value maps, per-RIM query (with its bias), gates and communication (4 heads x 32 for
    q, k, v; out back to 4 units); an LSTM keeps one gate bias with the forget gate's at 1,
    a GRU an input and a hidden bias."""
    cell = RIMCell(1, 12, num_units=3, k_active=2, dynamics=dynamics)
    shapes = {k: tuple(v.shape) for k, v in cell.state_dict().items()}
    assert shapes == params | {"input_key.weight": (64, 1), "input_value.weight": (4, 1),
                               "input_query": (3, 4, 64), "input_query_bias": (3, 1, 64),
                               "comm_qkv": (3, 4, 384), "comm_out": (3, 128, 4)}
    assert cell.spatial_competition is True
    if dynamics == "lstm":
        assert torch.all(cell.bias_ih[:, :, 4:8] == 1.0)  # gates i, f, g, o: f starts open
        assert not torch.any(cell.bias_ih[:, :, 8:12] == 1.0)


@pytest.mark.parametrize("bad", [dict(comm_topk=4), dict(input_heads=0), dict(input_key_size=0),
                                 dict(input_value_size=0), dict(comm_heads=0),
                                 dict(comm_key_size=0), dict(comm_value_size=0)])
def test_cell_checks_every_setting(bad):
    with pytest.raises(ValueError, match=f"{next(iter(bad))} must be"):
        RIMCell(4, 12, num_units=3, k_active=2, **bad)


@pytest.mark.parametrize("bad, message", [
    (dict(name="rimz"), "unknown core 'rimz'"),
    (dict(hidden_size=0), "core hidden_size must be positive, got 0"),
    (dict(k_active=7), r"core.k_active \(7\) must be between 1 and num_units \(6\)"),
    (dict(dynamics="rnn"), "core.dynamics 'rnn' is unknown"),
    (dict(hidden_size=601), "core.hidden_size 601 is not a positive multiple of num_units 6"),
    (dict(comm_topk=7), r"core.comm_topk must be between 1 and num_units \(6\), got 7"),
    (dict(input_heads=0), "core.input_heads must be positive, got 0"),
    (dict(input_key_size=0), "core.input_key_size must be positive, got 0"),
    (dict(input_value_size=0), "core.input_value_size must be positive, got 0"),
    (dict(comm_heads=0), "core.comm_heads must be positive, got 0"),
    (dict(comm_key_size=0), "core.comm_key_size must be positive, got 0"),
    (dict(comm_value_size=0), "core.comm_value_size must be positive, got 0"),
])
def test_core_config_refuses_each_bad_setting_in_its_own_words(bad, message):
    """CoreConfig hands every RIMs setting to the one check and names it core.<setting>
    (a UserError: one line from the CLI); LSTM and GRU configs skip the RIMs checks."""
    from rimrl.errors import UserError
    from rimrl.nn.cores import CoreConfig

    CoreConfig(name="gru", hidden_size=1)  # the smallest core is fine
    with pytest.raises(UserError, match=message):
        CoreConfig(**bad)
    if "name" not in bad and "hidden_size" not in bad:
        CoreConfig(name="lstm", **bad)
