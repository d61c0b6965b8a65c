"""PPO with recurrent cores: sb3-contrib compatibility, chunked training, buffers."""

import numpy as np
import pytest
import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentRolloutBuffer
from stable_baselines3.common.env_util import make_vec_env

import rimrl.envs.testing  # noqa: F401  (registers rimrl/Cue*-v0)
from rimrl.agents.ppo import ChunkedRecurrentPPO, CnnRIMsPolicy, MlpCorePolicy
from rimrl.agents.ppo.policies import RecurrentCorePolicy
from rimrl.nn.cores import LSTMCore
from rimrl.nn.rims import RIMs

TINY_RIMS = dict(name="rims", hidden_size=12, num_units=3, k_active=2, dynamics="gru",
                 input_key_size=8, comm_key_size=4, comm_value_size=4, comm_heads=2)


def vec_env(env_id="rimrl/CueVector-v0", n_envs=2, **kwargs):
    return make_vec_env(env_id, n_envs=n_envs, seed=0, env_kwargs=kwargs or None)


def test_rims_policy_with_sb3_contrib_recurrent_ppo(tmp_path):
    env = vec_env("rimrl/CueImage-v0")
    model = RecurrentPPO(CnnRIMsPolicy, env, n_steps=16, batch_size=16, n_epochs=1, seed=0,
                         policy_kwargs=dict(core=TINY_RIMS, features_extractor_kwargs=dict(
                             features_dim=16)))
    assert isinstance(model.policy.core_actor, RIMs)
    before = [p.detach().clone() for p in model.policy.core_actor.parameters()]
    model.learn(64)
    after = list(model.policy.core_actor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # the core trained
    model.save(tmp_path / "m.zip")
    loaded = RecurrentPPO.load(tmp_path / "m.zip")
    assert isinstance(loaded.policy.core_actor, RIMs)
    obs = env.reset()
    a1, s1 = model.predict(obs, deterministic=True)
    a2, s2 = loaded.predict(obs, deterministic=True)
    assert np.array_equal(a1, a2) and np.allclose(s1[0], s2[0])


def test_process_sequence_matches_sb3_contrib_loop():
    """Our one-call _process_sequence equals sb3-contrib's per-step loop."""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy as Base

    torch.manual_seed(0)
    core = LSTMCore(5, 7)
    feats = torch.randn(3 * 6, 5)  # 3 sequences of 6 steps, sequence-major
    starts = torch.zeros(18)
    starts[[2, 9, 10, 15]] = 1
    state = (torch.randn(1, 3, 7), torch.randn(1, 3, 7))
    ours, (h1, c1) = RecurrentCorePolicy._process_sequence(feats, state, starts, core)
    ref, (h2, c2) = Base._process_sequence(feats, state, starts, core)
    assert torch.allclose(ours, ref, atol=1e-6) and torch.allclose(h1, h2, atol=1e-6)


def ppo_loss(policy, samples, clip=0.2, ent_coef=0.01, vf_coef=0.5):
    """The loss of sb3-contrib's RecurrentPPO.train for one minibatch."""
    actions = samples.actions.long().flatten()
    mask = samples.mask > 1e-8
    values, log_prob, entropy = policy.evaluate_actions(
        samples.observations, actions, samples.lstm_states, samples.episode_starts)
    adv = samples.advantages
    adv = (adv - adv[mask].mean()) / (adv[mask].std() + 1e-8)
    ratio = torch.exp(log_prob - samples.old_log_prob)
    pg = -torch.mean(torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - clip, 1 + clip))[mask])
    vf = torch.mean(((samples.returns - values.flatten()) ** 2)[mask])
    ent = -torch.mean(entropy[mask])
    return pg + ent_coef * ent + vf_coef * vf, int(mask.sum())


@pytest.mark.parametrize("core", [TINY_RIMS, dict(name="lstm", hidden_size=8)])
def test_chunked_loss_equals_reference_for_whole_rollouts(core):
    env = vec_env(n_envs=3, delay=3)  # episodes of 4 steps: many starts inside a rollout
    model = ChunkedRecurrentPPO(MlpCorePolicy, env, n_steps=16, batch_size=48, chunk_length=16,
                                seed=0, policy_kwargs=dict(core=core, enable_critic_lstm=True))
    _, callback = model._setup_learn(48, None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    buf = model.rollout_buffer
    ref = RecurrentRolloutBuffer(16, env.observation_space, env.action_space,
                                 buf.hidden_state_shape, "cpu", n_envs=3)
    for name in ("observations", "actions", "rewards", "returns", "episode_starts", "values",
                 "log_probs", "advantages", "hidden_states_pi", "cell_states_pi",
                 "hidden_states_vf", "cell_states_vf"):
        setattr(ref, name, getattr(buf, name).copy())
    ref.full = True
    assert buf.episode_starts[1:].sum() > 3  # the reference really splits sequences
    (ours,) = list(buf.get(48))
    (theirs,) = list(ref.get(48))
    loss_ours, n_ours = ppo_loss(model.policy, ours)
    loss_ref, n_ref = ppo_loss(model.policy, theirs)
    assert n_ours == n_ref == 48
    assert torch.allclose(loss_ours, loss_ref, atol=1e-5)


def test_chunks_gather_the_right_steps_and_states():
    env = vec_env(n_envs=2)
    model = ChunkedRecurrentPPO(MlpCorePolicy, env, n_steps=8, batch_size=8, chunk_length=4,
                                policy_kwargs=dict(core=dict(name="lstm", hidden_size=4)))
    buf = model.rollout_buffer
    buf.reset()
    steps, n_envs = 8, 2
    # tag every entry with 10 * step + env so the gathered order can be read back
    tag = (10 * np.arange(steps)[:, None] + np.arange(n_envs)[None, :]).astype(np.float32)
    buf.values[:] = tag
    buf.observations[:] = tag[..., None]
    buf.hidden_states_pi[:] = tag[:, None, :, None]
    buf.full = True
    batches = list(buf.get(8))  # 2 chunks of 4 per minibatch, 4 chunks in all
    assert len(batches) == 2
    seen = set()
    for b in batches:
        values = b.old_values.numpy().reshape(2, 4)
        for chunk, h in zip(values, b.lstm_states.pi[0][0, :, 0].numpy()):
            step0, env_i = divmod(int(chunk[0]), 10)
            assert chunk.tolist() == [10 * (step0 + i) + env_i for i in range(4)]
            assert step0 % 4 == 0 and h == chunk[0]  # state stored at the chunk's first step
            seen.add((step0, env_i))
        assert torch.equal(b.observations[:, 0], b.old_values)
    assert seen == {(0, 0), (4, 0), (0, 1), (4, 1)}


def test_chunk_length_must_divide_n_steps():
    with pytest.raises(ValueError, match="multiple of chunk_length"):
        ChunkedRecurrentPPO(MlpCorePolicy, vec_env(), n_steps=10, batch_size=10, chunk_length=4)


@pytest.mark.slow
@pytest.mark.parametrize("core", ["lstm", "rims"])
def test_recurrent_cores_solve_the_cue_memory_task(core):
    env = vec_env(n_envs=8)
    kwargs = dict(TINY_RIMS, name=core) if core == "rims" else dict(name=core, hidden_size=16)
    model = ChunkedRecurrentPPO(MlpCorePolicy, env, n_steps=32, batch_size=64, chunk_length=8,
                                learning_rate=3e-3, seed=0,
                                policy_kwargs=dict(core=kwargs, enable_critic_lstm=False))
    model.learn(30_000)
    assert np.mean([e["r"] for e in model.ep_info_buffer]) > 0.9


@pytest.mark.parametrize("core_cls", ["lstm", "gru"])
@pytest.mark.parametrize("with_starts", [False, True])
def test_cores_without_a_state_start_from_zeros(core_cls, with_starts):
    """No state given: the cores start from zeros, as torch's kernels do (on both paths)."""
    from rimrl.nn.cores import GRUCore

    torch.manual_seed(3)
    core = LSTMCore(5, 7) if core_cls == "lstm" else GRUCore(5, 7)
    kernel = core if core_cls == "lstm" else core.gru
    x = torch.randn(6, 2, 5)
    starts = torch.zeros(6, 2) if with_starts else None
    if with_starts:
        starts[[1, 2, 4], 0] = 1  # three cuts: the step loop; episode starts of env 0 only
    out, (h, c) = core(x, episode_starts=starts)
    assert out.shape == (6, 2, 7) and h.shape == c.shape == (1, 2, 7)
    assert (core.input_size, core.hidden_size) == (5, 7)
    # env 1 never restarts: its outputs are the kernel's from a zero state
    expected, _ = torch.nn.Module.__call__(kernel, x[:, 1:2]) if core_cls == "gru" else \
        torch.nn.LSTM.forward(kernel, x[:, 1:2])
    assert torch.allclose(out[:, 1:2], expected, atol=1e-6)
    if core_cls == "gru":
        assert torch.equal(c, torch.zeros_like(c))  # the GRU's passive second state
        # a given state: h0 is the first tensor; the second (any values) is passive
        h0 = torch.randn(1, 2, 7)
        out, (h, _) = core(x, (h0, torch.randn(1, 2, 7)), episode_starts=starts)
        expected, _ = kernel(x[:, 1:2], h0[:, 1:2])
        assert torch.allclose(out[:, 1:2], expected, atol=1e-6)


@pytest.mark.parametrize("core_cls", ["lstm", "gru"])
def test_stepwise_cores_equal_torch_with_resets(core_cls):
    """With episode starts, the step-by-step recurrence equals torch's fused kernel run on
    each piece between starts with the state zeroed at the start."""
    from rimrl.nn.cores import GRUCore

    torch.manual_seed(1)
    core = LSTMCore(5, 7) if core_cls == "lstm" else GRUCore(5, 7)
    x = torch.randn(9, 3, 5)
    state = (torch.randn(1, 3, 7), torch.randn(1, 3, 7))
    starts = torch.zeros(9, 3)
    starts[0, 1] = starts[4, 0] = starts[6, 2] = 1
    out, (h, c) = core(x, state, episode_starts=starts)
    for b in range(3):
        hb, cb = state[0][:, b:b + 1], state[1][:, b:b + 1]
        cuts = [0] + [t for t in range(1, 9) if starts[t, b]] + [9]
        pieces = []
        for begin, end in zip(cuts[:-1], cuts[1:]):
            if starts[begin, b]:
                hb, cb = torch.zeros_like(hb), torch.zeros_like(cb)
            o, (hb, cb) = core(x[begin:end, b:b + 1], (hb, cb))
            pieces.append(o)
        assert torch.allclose(out[:, b:b + 1], torch.cat(pieces), atol=1e-5)
        assert torch.allclose(h[:, b:b + 1], hb, atol=1e-5)


@pytest.mark.parametrize("core_cls", ["lstm", "gru"])
@pytest.mark.parametrize("cut_steps", [[3], [0, 5], [1, 4, 6], [0, 2, 4, 6, 8]])
def test_fused_pieces_equal_the_step_loop_outputs_and_gradients(monkeypatch, core_cls,
                                                                 cut_steps):
    """Few starts: the fused kernel runs on the pieces between them; many: the step loop.
    Both paths give the same outputs, state and gradients."""
    import rimrl.nn.cores as cores

    torch.manual_seed(2)
    core = LSTMCore(5, 7) if core_cls == "lstm" else cores.GRUCore(5, 7)
    x0 = torch.randn(9, 3, 5)
    state = (torch.randn(1, 3, 7), torch.randn(1, 3, 7) if core_cls == "lstm"
             else torch.zeros(1, 3, 7))
    starts = torch.zeros(9, 3)
    for i, t in enumerate(cut_steps):
        starts[t, i % 3] = 1
    results = []
    for fused_cuts in (100, -1):  # always fused pieces, never
        monkeypatch.setattr(cores, "FUSED_CUTS", fused_cuts)
        core.zero_grad()
        x = x0.clone().requires_grad_(True)
        out, (h, c) = core(x, state, episode_starts=starts)
        (out.square().sum() + h.sum()).backward()
        results.append((out, h, c, x.grad, [p.grad.clone() for p in core.parameters()]))
    (o1, h1, c1, g1, p1), (o2, h2, c2, g2, p2) = results
    assert torch.allclose(o1, o2, atol=1e-6) and torch.allclose(h1, h2, atol=1e-6)
    assert torch.allclose(c1, c2, atol=1e-6) and torch.allclose(g1, g2, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(p1, p2))


@pytest.mark.parametrize("core_cls", ["lstm", "gru"])
def test_few_starts_take_the_fused_kernel(monkeypatch, core_cls):
    from rimrl.nn.cores import GRUCore

    calls = []
    kernel = torch.nn.LSTM if core_cls == "lstm" else torch.nn.GRU
    original = kernel.forward
    monkeypatch.setattr(kernel, "forward",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    core = LSTMCore(5, 7) if core_cls == "lstm" else GRUCore(5, 7)
    starts = torch.zeros(9, 3)
    starts[0, 2] = starts[4, 1] = 1  # FUSED_CUTS (2) cuts: still fused
    core(torch.randn(9, 3, 5), episode_starts=starts)
    assert len(calls) == 2  # two pieces: steps 0-3 and 4-8
    calls.clear()
    starts[[1, 3, 6], 0] = 1
    core(torch.randn(9, 3, 5), episode_starts=starts)
    assert calls == []  # four cuts: the step loop


def test_partial_core_dict_updates_the_policy_class_defaults():
    """The README's example: core=dict(k_active=5) keeps CnnRIMsPolicy's 510 units and GRU."""
    model = RecurrentPPO(CnnRIMsPolicy, vec_env("rimrl/CueImage-v0"), n_steps=8, batch_size=8,
                         policy_kwargs=dict(core=dict(k_active=5),
                                            features_extractor_kwargs=dict(features_dim=16)))
    cfg = model.policy.core_config
    assert (cfg.name, cfg.hidden_size, cfg.num_units, cfg.k_active, cfg.dynamics) == \
        ("rims", 510, 6, 5, "gru")
    assert model.policy.core_actor.hidden_size == 510


def test_mlp_core_policy_defaults_to_an_lstm_as_documented():
    env = vec_env()
    default = RecurrentPPO(MlpCorePolicy, env, n_steps=8, batch_size=8)
    assert isinstance(default.policy.core_actor, LSTMCore)
    assert default.policy.core_config.hidden_size == 256
    sized = RecurrentPPO(MlpCorePolicy, env, n_steps=8, batch_size=8,
                         policy_kwargs=dict(core=dict(hidden_size=64)))
    assert isinstance(sized.policy.core_actor, LSTMCore)
    assert sized.policy.core_config.hidden_size == 64


def test_models_saved_under_the_old_top_level_package_names_still_load(tmp_path, monkeypatch):
    """Round 1 saved class paths such as agents.ppo.policies.MlpCorePolicy; the CLI's loader
    still reads them (plain SB3 loading cannot: the name is gone)."""
    import sys
    from pathlib import Path

    import cloudpickle
    from sb3_files import replace_serialized

    from rimrl.sb3.training import load_sb3_model

    # as installed: the repository root (where agents/ also sits) is not on the path
    root = Path(__file__).resolve().parents[1]
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != root])

    model = ChunkedRecurrentPPO(MlpCorePolicy, vec_env(), n_steps=8, batch_size=8,
                                chunk_length=8, policy_kwargs=dict(core=dict(hidden_size=8)))
    path = tmp_path / "old.zip"
    model.save(path)
    parts = ["agents", "agents.ppo", "agents.ppo.policies"]
    for name in parts:
        sys.modules[name] = sys.modules["rimrl." + name]
    MlpCorePolicy.__module__ = "agents.ppo.policies"
    try:
        blob = cloudpickle.dumps(MlpCorePolicy)
    finally:
        MlpCorePolicy.__module__ = "rimrl.agents.ppo.policies"
        for name in parts:
            del sys.modules[name]
    assert b"agents.ppo.policies" in blob and b"rimrl.agents" not in blob
    replace_serialized(path, "policy_class", blob)
    with pytest.raises(ModuleNotFoundError):
        ChunkedRecurrentPPO.load(path)
    loaded = load_sb3_model(ChunkedRecurrentPPO, "PPO", path)
    assert type(loaded.policy) is MlpCorePolicy and "agents" not in sys.modules


@pytest.mark.parametrize("rollout_threads, during", [(1, 1), (0, 2)])
def test_rollouts_collect_on_their_own_thread_count(monkeypatch, rollout_threads, during):
    """``rollout_threads`` sets torch's threads while a rollout is collected (the policy's
    forward passes see it) and puts the update's count back afterwards; 0 leaves it."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = ChunkedRecurrentPPO(MlpCorePolicy, vec_env(), n_steps=8, batch_size=16,
                                    chunk_length=8, n_epochs=1, seed=0,
                                    rollout_threads=rollout_threads,
                                    policy_kwargs=dict(core=dict(name="lstm", hidden_size=8)))
        seen = []
        forward = model.policy.forward
        monkeypatch.setattr(model.policy, "forward",
                            lambda *a, **k: (seen.append(torch.get_num_threads()),
                                             forward(*a, **k))[1])
        model.learn(16)
        assert seen and set(seen) == {during}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_rollout_threads_from_the_config_reach_the_model(tmp_path):
    from rimrl.cli import main
    from rimrl.learners.ppo import load_model

    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm",
                 "--timesteps", "32", "--n-envs", "2", "--set", "ppo.n_steps=16",
                 "--set", "ppo.batch_size=32", "--set", "ppo.chunk_length=8",
                 "--set", "core.hidden_size=8", "--set", "ppo.rollout_threads=2",
                 "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    (run,) = list(tmp_path.iterdir())
    assert load_model(run / "model.zip").rollout_threads == 2
    # a compute setting: a resume may change it
    assert main(["train", "ppo", "--resume", str(run), "--timesteps", "64",
                 "--set", "ppo.rollout_threads=0", "--no-progress"]) == 0
    assert load_model(run / "model.zip").rollout_threads == 0


def test_rollouts_collect_on_one_thread_by_default():
    from rimrl.learners import get

    assert get("ppo").load_config([]).ppo.rollout_threads == 1
