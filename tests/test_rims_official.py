"""The official RIMs variant (anirudh9119/RIMs, event_based/): a literal reference step, the
bounded state it promises, and each of its settings as its own switch."""

import dataclasses

import pytest
import torch

from rimrl.nn import RIMs
from rimrl.nn.rims_settings import VARIANTS, RIMsSettings
from tests.test_rims import reference_step

OFFICIAL = VARIANTS["official"]


def official(dynamics="lstm", **changes):
    torch.manual_seed(0)
    settings = dataclasses.replace(RIMsSettings(**OFFICIAL), num_units=4, k_active=2,
                                   dynamics=dynamics, **changes)
    return RIMs(5, 12, settings=settings)


@pytest.mark.parametrize("dynamics", ["lstm", "gru"])
@pytest.mark.parametrize("spatial", [False, True])
def test_official_step_matches_literal_reference(dynamics, spatial):
    """Gated write from every RIM's fresh state, input values 4x the per-RIM size (eval
    mode: the dropouts are off, as in a rollout)."""
    m = official(dynamics).eval()
    assert m.cell.input_value_size == 4 * 3 and m.cell.comm_out is None
    x = torch.randn(3, 7, 5) if spatial else torch.randn(3, 5)
    h, c = torch.randn(3, 12), torch.randn(3, 12)
    out, (h1, c1) = m(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
    rh, rc, ractive = reference_step(m.cell, x, h, c)
    assert torch.allclose(h1[0], rh, atol=1e-5)
    assert torch.allclose(c1[0], rc, atol=1e-5)
    assert torch.equal(m.last_active[0], ractive)


def test_state_stays_bounded_over_2000_steps_of_large_inputs():
    """LSTM dynamics: a fresh h is o * tanh(c) in (-1, 1) and the gated write adds at most 1,
    so |h| < 2 whatever the input; in training mode (dropout on), every RIM active at some
    point. The thesis variant's linear write on the same inputs is not bounded by 2."""
    torch.manual_seed(1)
    x = 100 * torch.randn(2000, 4, 5)
    m = official().train()
    with torch.no_grad():
        out, _ = m(x)
    assert out.abs().max() < 2.0
    assert m.last_active.any(0).any(0).all()  # every RIM was active for some sequence
    torch.manual_seed(1)
    thesis = RIMs(5, 12, num_units=4, k_active=2)
    with torch.no_grad():
        for p in thesis.cell.comm_out, thesis.cell.comm_qkv:
            p.mul_(3)  # a trained communication map can be this large
        out, _ = thesis(x)
    assert not (out.abs() < 2.0).all()


def test_fresh_reads_see_inactive_rims_new_state_but_send_no_gradient_into_it():
    """``comm_reads='fresh'``: an inactive RIM's new state (its own recurrent weights) moves
    what active RIMs read, yet its weights get exactly zero gradient on a single step;
    ``stored``: its recurrent weights change nothing."""
    def run(reads, scale):
        m = official(comm_reads=reads, input_dropout=0.0, comm_dropout=0.0)
        x, h = torch.randn(1, 1, 5), torch.randn(1, 1, 12)
        with torch.no_grad():
            m(x, (h, h))
        inactive = int(torch.nonzero(~m.last_active[0, 0])[0])
        with torch.no_grad():
            m.cell.weight_hh[inactive].mul_(scale)
        out, _ = m(x, (h, h))
        out.sum().backward()
        return out.detach(), m.cell.weight_hh.grad[inactive]

    fresh, grad = run("fresh", 1.0)
    fresh_scaled, _ = run("fresh", 3.0)
    assert not torch.allclose(fresh, fresh_scaled)  # the inactive RIM's fresh state is read
    assert torch.count_nonzero(grad) == 0           # ... through a blocked gradient
    stored, grad = run("stored", 1.0)
    stored_scaled, _ = run("stored", 3.0)
    assert torch.equal(stored, stored_scaled) and torch.count_nonzero(grad) == 0


@pytest.mark.parametrize("switch", ["input_dropout", "comm_dropout"])
def test_each_dropout_acts_in_training_only(switch):
    other = "comm_dropout" if switch == "input_dropout" else "input_dropout"
    m = official(**{switch: 0.5, other: 0.0})
    x, h = torch.randn(6, 3, 5), torch.randn(1, 3, 12)
    m.eval()
    assert torch.equal(m(x, (h, h))[0], m(x, (h, h))[0])
    m.train()
    assert not torch.equal(m(x, (h, h))[0], m(x, (h, h))[0])
    m_off = official(**{switch: 0.0, other: 0.0}).train()
    assert torch.equal(m_off(x, (h, h))[0], m_off(x, (h, h))[0])


def test_gated_write_parameters_are_shared_by_all_rims():
    cell = official().cell
    shapes = {k: tuple(v.shape) for k, v in cell.state_dict().items() if "comm" in k}
    assert shapes == {"comm_qkv": (4, 3, 3 * 4 * 16), "comm_fc.weight": (3, 64),
                      "comm_fc.bias": (3,), "comm_gate.weight": (3, 64),
                      "comm_gate.bias": (3,)}
    assert cell.input_query_bias is None


def test_ppo_defaults_are_the_official_variant_and_the_thesis_one_is_a_set_away():
    """PPO's RIMs are the official code's by default (issue #22 item 7), on Atari and on
    pickup (where the grid section keeps its size and LSTM dynamics); ``--set
    core.variant=thesis`` gives the thesis' settings over the defaults and files; an explicit
    ``--set core.<setting>`` still wins over a variant; the copy task keeps the thesis
    variant its Table 1 rows were measured with."""
    from rimrl.errors import UserError
    from rimrl.learners import get
    from rimrl.tasks.copying import CopyConfig

    ppo = get("ppo")
    grid = ["env.id=rimrl/Pickup-v0"]
    no_dropout = OFFICIAL | {"input_dropout": 0.0, "comm_dropout": 0.0}
    for env in ([], grid):
        core = ppo.load_config(env).core
        assert core.variant == "official"
        assert {k: getattr(core, k) for k in OFFICIAL} == no_dropout
    assert (core.hidden_size, core.dynamics) == (192, "lstm")  # the grid section's
    with pytest.raises(UserError, match="core.input_dropout=0.1: PPO acts with the policy in "
                                        "eval mode and learns in train mode"):
        ppo.load_config(grid + ["core.variant=official"])
    explicit = ppo.load_config(grid + ["core.variant=official", "core.input_dropout=0",
                                       "core.comm_dropout=0"]).core
    assert {k: getattr(explicit, k) for k in OFFICIAL} == no_dropout
    thesis = ppo.load_config(grid + ["core.variant=thesis"]).core
    assert {k: getattr(thesis, k) for k in OFFICIAL} == VARIANTS["thesis"]
    assert (thesis.hidden_size, thesis.dynamics, thesis.comm_output) == (192, "lstm", "linear")
    core = ppo.load_config(grid + ["core.variant=thesis", "core.comm_key_size=8"]).core
    assert (core.comm_key_size, core.comm_output) == (8, "linear")
    assert CopyConfig().core.variant == "thesis"
    assert CopyConfig().core.comm_output == "linear"


def test_variant_reaches_policies_built_in_python_and_unknown_variants_are_refused():
    from rimrl.errors import UserError
    from rimrl.nn.cores import CoreConfig

    values = CoreConfig.with_variant({"name": "rims", "hidden_size": 12}, {"variant": "official"})
    assert CoreConfig(**values).comm_reads == "fresh"
    with pytest.raises(UserError, match="core.variant 'paper' is unknown; choose thesis or "
                                        "official"):
        CoreConfig(variant="paper")
    with pytest.raises(UserError, match="core.variant 'paper' is unknown"):
        CoreConfig.with_variant({}, {"variant": "paper"})


def test_runs_saved_before_variants_existed_keep_the_thesis_settings(tmp_path):
    """A run whose config.yaml predates ``core.variant`` (round 7) lacks the settings that came
    with it; it was trained with the thesis' values, so a resume rebuilds and records those,
    not today's PPO defaults (the official variant), and an evaluation reads the same."""
    import yaml

    from rimrl.cli import main
    from rimrl.learners import get
    from rimrl.learners.base import saved_config
    from rimrl.learners.ppo import load_model
    from tests.conftest import TINY, only_run

    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "rims",
                 "--timesteps", "128", "--runs-dir", str(tmp_path), "--set",
                 "core.variant=thesis"] + TINY) == 0
    run = only_run(tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    for key in ("variant", "comm_output", "comm_reads", "comm_dropout", "input_dropout",
                "input_value_scale"):
        del config["core"][key]  # as an older rimrl wrote it
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    core = saved_config(get("ppo").config_class(), run).core
    assert (core.variant, core.comm_output, core.comm_reads, core.input_value_scale) == (
        "thesis", "linear", "stored", 1)
    assert core.input_key_size == 8  # the saved values still win
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "256",
                 "--no-progress"]) == 0
    resumed = yaml.safe_load((run / "config.yaml").read_text())["core"]
    assert (resumed["variant"], resumed["comm_output"], resumed["comm_dropout"]) == (
        "thesis", "linear", 0.0)
    assert load_model(run / "model.zip").policy.core_config.comm_output == "linear"


def test_attention_init_std_draws_the_attention_maps_alone_from_a_small_normal():
    """``attention_init_std`` (official: 0.01, the authors' ``0.01 * randn``): the input key,
    value and query maps and the communication q/k/v start at that scale, and every other
    parameter draws exactly what it draws without the setting."""
    torch.manual_seed(0)
    plain = RIMs(40, 60, num_units=6, k_active=4)
    torch.manual_seed(0)
    small = RIMs(40, 60, num_units=6, k_active=4, attention_init_std=0.01)
    attention = {"cell.input_key.weight", "cell.input_value.weight", "cell.input_query",
                 "cell.comm_qkv"}
    for name, value in small.state_dict().items():
        if name in attention:
            assert abs(value.std().item() - 0.01) < 0.002, name
            assert plain.state_dict()[name].std().item() > 0.05, name
        else:
            assert torch.equal(value, plain.state_dict()[name]), name
    assert OFFICIAL["attention_init_std"] == 0.01 and VARIANTS["thesis"][
        "attention_init_std"] is None


def test_forget_bias_is_one_setting_for_rims_and_the_lstm_baseline():
    """``forget_bias`` fills the forget-gate slice of RIMs' LSTM dynamics and of the ``lstm``
    core (input bias = the value, hidden bias 0); ``None`` leaves each layer's own init
    (official), so a baseline LSTM starts like the RIMs it is compared with."""
    from rimrl.nn.cores import CoreConfig, build_core

    H = 12
    for value in (1.0, 2.5):
        torch.manual_seed(0)
        rims = RIMs(5, H, num_units=3, k_active=2, forget_bias=value)
        assert torch.all(rims.cell.bias_ih[:, :, 4:8] == value)  # per-RIM size 4
        lstm = build_core(5, CoreConfig(name="lstm", hidden_size=H, forget_bias=value))
        assert torch.all(lstm.bias_ih_l0[H:2 * H] == value)
        assert torch.all(lstm.bias_hh_l0[H:2 * H] == 0)
    torch.manual_seed(0)
    rims = RIMs(5, H, num_units=3, k_active=2, forget_bias=None)
    lstm = build_core(5, CoreConfig(name="lstm", hidden_size=H, forget_bias=None))
    for forget in (rims.cell.bias_ih[:, :, 4:8], lstm.bias_ih_l0[H:2 * H]):
        assert forget.abs().max() < 0.6 and forget.std() > 0.05  # the layer's uniform init
    assert OFFICIAL["forget_bias"] is None and VARIANTS["thesis"]["forget_bias"] == 1.0
