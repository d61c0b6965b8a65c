"""IQN maths against hand-computed numbers, Rainbow switches, a short run and a round trip."""

import json

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

import rimrl.envs.testing  # noqa: F401  (registers rimrl/CueImage-v0)
from rimrl.agents.iqn import IQN, IQNPolicy, NoisyLinear, iqn_target, quantile_huber_loss
from rimrl.agents.iqn.policies import cosine_embedding


def test_quantile_huber_loss_hand_computed():
    current = torch.tensor([[0.0, 1.0]])
    taus = torch.tensor([[0.25, 0.75]])
    target = torch.tensor([[0.5, 2.0]])
    # i=0 (z=0, tau=.25): u = .5, 2 -> huber .125, 1.5 -> weights .25, .25 -> mean .203125
    # i=1 (z=1, tau=.75): u = -.5, 1 -> huber .125, .5 -> weights .25, .75 -> mean .203125
    loss = quantile_huber_loss(current, target, taus, kappa=1.0)
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx(0.40625)
    # kappa = 2: every |u| <= 2 is quadratic, divided by kappa
    # i=0: (.25 * .0625 + .25 * 1) / 2 = .1328125; i=1: (.25 * .0625 + .75 * .25) / 2 = .1015625
    assert quantile_huber_loss(current, target, taus, kappa=2.0).item() == pytest.approx(0.234375)


def test_quantile_loss_gradient_pushes_towards_tau_quantile():
    current = torch.zeros(1, 1, requires_grad=True)
    target = torch.tensor([[10.0, -10.0, 10.0, 10.0]])  # 75% of samples above
    loss = quantile_huber_loss(current, target, torch.tensor([[0.5]]))
    loss.backward()
    assert current.grad.item() < 0  # gradient descent moves the median estimate up


def test_iqn_target_hand_computed():
    next_q = torch.tensor([[1.0, 3.0], [5.0, 0.0]])  # chooses action 1, then action 0
    next_z = torch.tensor([[[9.0, 2.0], [9.0, 4.0]], [[6.0, 7.0], [8.0, 7.0]]])  # (B, N', A)
    returns = torch.tensor([1.0, 2.0])
    discounts = torch.tensor([0.729, 0.5])
    dones = torch.tensor([0.0, 1.0])
    target = iqn_target(next_z, next_q, returns, discounts, dones)
    assert torch.allclose(target, torch.tensor([[1 + 0.729 * 2, 1 + 0.729 * 4], [2.0, 2.0]]))


def test_cosine_embedding_values():
    emb = cosine_embedding(torch.tensor([[0.0, 0.5]]), 3)
    expected = torch.tensor([[[1.0, 1.0, 1.0], [0.0, -1.0, 0.0]]])
    assert torch.allclose(emb, expected, atol=1e-6)


def test_noisy_linear_noise_and_mean():
    torch.manual_seed(0)
    layer = NoisyLinear(4, 3, std_init=0.5)
    x = torch.randn(2, 4)
    a = layer(x)
    layer.reset_noise()
    assert not torch.allclose(a, layer(x))
    layer.use_noise = False
    assert torch.allclose(layer(x), x @ layer.weight_mu.T + layer.bias_mu)


def _env(n_envs=2):
    return make_vec_env("rimrl/CueImage-v0", n_envs=n_envs, seed=0)


@pytest.mark.parametrize("switches", [
    dict(),
    dict(prioritized=False, double_q=False, n_steps=1),
    dict(policy_kwargs=dict(dueling=True, noisy=True)),
])
def test_short_run_trains_and_round_trips(tmp_path, switches):
    env = _env()
    model = IQN(IQNPolicy, env, learning_starts=40, buffer_size=500, batch_size=8,
                n_quantiles=8, n_target_quantiles=8, target_update_interval=50, seed=0,
                policy_kwargs=dict(switches.pop("policy_kwargs", {}),
                                   features_extractor_kwargs=dict(features_dim=32)),
                **switches)
    before = [p.detach().clone() for p in model.policy.q_net.parameters()]
    model.learn(200)
    assert model._n_updates > 0
    after = list(model.policy.q_net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    if model.replay_buffer.prioritized:
        assert model.replay_buffer.max_priority != 1.0  # losses became priorities
    model.save(tmp_path / "iqn.zip")
    loaded = IQN.load(tmp_path / "iqn.zip", env=env)
    obs = env.reset()
    torch.manual_seed(1)
    a = model.predict(obs, deterministic=True)[0]
    torch.manual_seed(1)
    b = loaded.predict(obs, deterministic=True)[0]
    assert np.array_equal(a, b)
    for p, q in zip(model.policy.parameters(), loaded.policy.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("double_q", [True, False])
def test_double_q_picks_the_next_action_with_the_online_network(double_q):
    """On a crafted batch where the online and target networks disagree about the best next
    action, the target uses the online network's choice exactly when double_q is on."""
    model = IQN(IQNPolicy, _env(1), buffer_size=100, seed=0, double_q=double_q,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    policy = model.policy
    with torch.no_grad():  # target head: action 1 best everywhere; online head: action 0
        for net, best in ((policy.q_net_target, 1), (policy.q_net, 0)):
            last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.zero_()
            last.bias.copy_(torch.arange(last.bias.numel(), dtype=torch.float32) == best)
    obs = torch.as_tensor(np.stack([_env(1).reset()[0]] * 4)).permute(0, 3, 1, 2).float()
    target_features = policy.features(policy.q_net_target, obs)
    with torch.no_grad():
        next_q = model.next_action_values(obs, target_features)
    assert next_q.argmax(1).tolist() == [0 if double_q else 1] * 4
    # and the target samples follow that choice: Z_target(s', a*) with a* from next_q
    next_z = torch.stack([torch.zeros(4, 3), torch.ones(4, 3)], dim=2)  # (B, N', A=2)
    target = iqn_target(next_z, next_q, torch.zeros(4), torch.ones(4), torch.zeros(4))
    assert torch.equal(target, torch.full((4, 3), 0.0 if double_q else 1.0))


def test_noisy_nets_turn_off_epsilon():
    model = IQN(IQNPolicy, _env(1), learning_starts=10, buffer_size=100, seed=0,
                policy_kwargs=dict(noisy=True, features_extractor_kwargs=dict(features_dim=16)))
    model.learn(20)
    assert model.exploration_rate == 0.0


def test_exploration_decays_over_steps():
    model = IQN(IQNPolicy, _env(1), learning_starts=1000, buffer_size=100, seed=0,
                exploration_steps=100, exploration_initial_eps=1.0, exploration_final_eps=0.1,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    model.learn(50)
    steps = model.num_timesteps  # learn() finishes its train_freq block: 52
    assert steps >= 50
    assert model.exploration_rate == pytest.approx(1.0 - 0.9 * steps / 100)


def test_target_network_hard_update():
    model = IQN(IQNPolicy, _env(1), learning_starts=5, buffer_size=100, seed=0, batch_size=4,
                n_quantiles=4, n_target_quantiles=4, target_update_interval=30, train_freq=1,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    model.learn(29)
    online, target = model.policy.q_net.state_dict(), model.policy.q_net_target.state_dict()
    assert any(not torch.equal(online[k], target[k]) for k in online)
    model.learning_starts = 10**9  # no gradient step after the copy
    model.learn(1, reset_num_timesteps=False)  # step 30: copied
    online, target = model.policy.q_net.state_dict(), model.policy.q_net_target.state_dict()
    assert all(torch.equal(online[k], target[k]) for k in online)


def test_resume_without_replay_refills_before_learning(tmp_path):
    model = IQN(IQNPolicy, _env(1), learning_starts=20, buffer_size=200, seed=0, batch_size=4,
                n_quantiles=4, n_target_quantiles=4, train_freq=1,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    model.learn(40)
    updates = model._n_updates
    assert updates > 0
    model.save(tmp_path / "m.zip")
    loaded = IQN.load(tmp_path / "m.zip", env=_env(1))  # a fresh, empty replay memory
    loaded.learn(15, reset_num_timesteps=False)
    assert loaded._n_updates == updates  # still refilling: 15 < learning_starts
    loaded.learn(15, reset_num_timesteps=False)
    assert loaded._n_updates > updates


@pytest.mark.slow
def test_iqn_learns_cartpole(tmp_path):
    """Rainbow-IQN (PER, 3-step, dueling, double Q) with configs/iqn.yaml's 'gym' section:
    the mean return of the last 100 episodes passes 100 within 20k steps (random play: ~22;
    measured here: 164 at 18.5k steps, about 2.5 minutes)."""
    from rimrl.cli import main

    assert main(["train", "iqn", "--env", "CartPole-v1", "--encoder", "mlp", "--timesteps",
                 "20000", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    (run,) = list(tmp_path.iterdir())
    scores = json.loads((run / "train_summary.json").read_text())["recent_episode_scores"]
    assert np.mean(scores) > 100


class _FakeReplay:
    """Hands ``train`` one crafted batch and records what it is asked and told."""

    def __init__(self, batch, total, policy):
        self.tree = type("Tree", (), {"total": total})()
        self.batch, self.policy = batch, policy
        self.sampled, self.priorities = [], []

    def sample(self, batch_size, beta=None):
        self.sampled.append((batch_size, beta, self.policy.q_net.training))
        return self.batch

    def update_priorities(self, indices, priorities):
        self.priorities.append((indices, priorities))


def _crafted_update(monkeypatch, total=1.0, timesteps=0, refill_until=0, max_grad_norm=None,
                    double_q=True):
    """IQN whose heads ignore tau (last layer zeroed: Z(s, a, tau) = bias[a]; online (3, 1),
    target (0.5, 2)), every tau 0.5 (the sizes drawn are kept in ``model.tau_sizes``), and a
    fixed batch of two transitions."""
    from stable_baselines3.common.logger import configure

    model = IQN(IQNPolicy, _env(1), buffer_size=100, seed=0, batch_size=2, n_quantiles=3,
                n_target_quantiles=5, kappa=2.0, beta=0.4, max_grad_norm=max_grad_norm,
                double_q=double_q, policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    policy = model.policy
    with torch.no_grad():
        for net, bias in ((policy.q_net, (3.0, 1.0)), (policy.q_net_target, (0.5, 2.0))):
            last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.zero_()
            last.bias.copy_(torch.tensor(bias))
    obs = torch.as_tensor(np.stack([_env(1).reset()[0]] * 2)).permute(0, 3, 1, 2).float()
    from rimrl.agents.iqn.replay import ReplaySamples
    batch = ReplaySamples(obs, torch.tensor([0, 1]), obs, torch.tensor([1.0, -1.0]),
                          torch.tensor([0.9, 0.5]), torch.tensor([0.0, 1.0]),
                          torch.tensor([1.0, 0.25]), np.array([7, 3]))
    model.replay_buffer = _FakeReplay(batch, total, policy)
    model.set_logger(configure(None, []))
    model.num_timesteps, model._refill_until = timesteps, refill_until
    model._current_progress_remaining = 0.25
    model._n_updates = 5
    policy.set_training_mode(False)
    model.tau_sizes = []

    def rand(*size, **kwargs):
        model.tau_sizes.append(size)
        return torch.full(size, 0.5)

    monkeypatch.setattr(torch, "rand", rand)
    return model


@pytest.mark.parametrize("double_q, first, loss", [(True, 0.9009375, 0.63796875),
                                                   (False, 0.015, 0.195)])
def test_one_update_against_hand_computed_loss_beta_and_priorities(monkeypatch, double_q, first,
                                                                   loss):
    """Dopamine-style: one gradient step on a crafted batch. Double Q picks a* = 0 (online
    bias 3 > 1), so the targets are 1 + 0.9 * 0.5 = 1.45 and -1 (terminal); the chosen
    quantiles are 3 and 1, u = -1.55 and -2. Every |u| <= kappa = 2: the per-sample loss is
    N * |tau - 1| * (u^2 / 2) / kappa = 3 * 0.5 * u^2 / 4 = 0.9009375 and 1.5, weighted by the
    importance weights (1, 0.25) and averaged: 0.63796875. Without double Q the target network
    picks a* = 1 (bias 2 > 0.5): target 1 + 0.9 * 2 = 2.8, u = -0.2, loss 0.015."""
    model = _crafted_update(monkeypatch, double_q=double_q)
    model.train(gradient_steps=1, batch_size=2)
    replay, logged = model.replay_buffer, model.logger.name_to_value
    assert replay.sampled == [(2, pytest.approx(0.4 + 0.6 * 0.75), True)]  # beta annealed
    # K = 32 samples for the Q(s', .) that picks a*, N' = 5 target samples, N = 3 online ones
    assert model.tau_sizes == [(2, 32), (2, 5), (2, 3)]
    (indices, priorities), = replay.priorities
    assert indices.tolist() == [7, 3]
    assert priorities == pytest.approx([first, 1.5])
    assert logged["train/loss"] == pytest.approx(loss)
    assert logged["train/beta"] == pytest.approx(0.85)
    assert logged["train/n_updates"] == 6 and model._n_updates == 6
    assert "tensorboard" in model.logger.name_to_excluded["train/n_updates"]


def test_update_clips_the_gradient_norm(monkeypatch):
    """Unclipped, the crafted batch's gradient has norm ~0.6 (biases alone: 3 * 0.5 * 1.55 /
    2 / 2 and 3 * 0.5 * 2 / 2 * 0.25 / 2); max_grad_norm 0.1 scales it to 0.1 before Adam."""
    norms = []
    for clip in (None, 0.1):
        model = _crafted_update(monkeypatch, max_grad_norm=clip)
        step = model.policy.optimizer.step

        def spy(*args, _step=step, _model=model, **kwargs):
            grads = [p.grad for p in _model.policy.q_net.parameters() if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads])).item())
            return _step(*args, **kwargs)

        model.policy.optimizer.step = spy
        model.train(gradient_steps=1, batch_size=2)
    assert norms[0] > 0.5 and norms[1] == pytest.approx(0.1, rel=1e-4)


@pytest.mark.parametrize("total, timesteps, refill_until, trains", [
    (1.0, 0, 0, True),
    (0.0, 10, 0, False),     # no complete n-step window stored yet
    (1.0, 9, 10, False),     # refilling after a resume without the replay memory
    (1.0, 10, 10, True),     # refilled
])
def test_update_waits_for_a_window_and_the_refill(monkeypatch, total, timesteps, refill_until,
                                                  trains):
    model = _crafted_update(monkeypatch, total=total, timesteps=timesteps,
                            refill_until=refill_until)
    model.train(gradient_steps=1, batch_size=2)
    assert bool(model.replay_buffer.sampled) == trains
    assert model._n_updates == (6 if trains else 5)


def test_quantile_huber_loss_linear_branch_beyond_kappa():
    """|u| > kappa: kappa * (|u| - kappa / 2) / kappa. u = 3, kappa = 2: 2 * 2 / 2 = 2, tau
    weight 0.25 (u > 0): 0.5."""
    loss = quantile_huber_loss(torch.tensor([[0.0]]), torch.tensor([[3.0]]),
                               torch.tensor([[0.25]]), kappa=2.0)
    assert loss.item() == pytest.approx(0.5)


def test_dueling_head_is_value_plus_centred_advantage():
    """Q = V + A - mean_a(A) per quantile (Wang et al., 2016), on a crafted head: the tau
    embedding is all ones, A is the identity on the features, V their sum. Features
    (1, 2, 6): A = (1, 2, 6), mean 3, V = 9, so Q = (7, 8, 12) at every tau."""
    from rimrl.agents.iqn.policies import IQNNetwork

    class Features(torch.nn.Module):
        features_dim = 3

    class Ones(torch.nn.Module):
        def forward(self, e):
            return torch.ones(*e.shape[:-1], 3)

    net = IQNNetwork(Features(), n_actions=3, embedding_dim=4, hidden_size=5, dueling=True)
    net.tau_embedding, net.advantage = Ones(), torch.nn.Identity()
    net.value = torch.nn.Linear(3, 1)
    with torch.no_grad():
        net.value.weight.fill_(1.0)
        net.value.bias.zero_()
    q = net(torch.tensor([[1.0, 2.0, 6.0]]), torch.tensor([[0.1, 0.7]]))
    assert torch.equal(q, torch.tensor([[[7.0, 8.0, 12.0], [7.0, 8.0, 12.0]]]))


def test_noisy_linear_starts_as_rainbow_says():
    """mu ~ U(-1/sqrt(p), 1/sqrt(p)) for weights and biases, every sigma std_init / sqrt(p)
    (Fortunato et al., 2018, factorised noise), p = in_features = 16."""
    torch.manual_seed(0)
    layer = NoisyLinear(16, 200, std_init=0.3)
    for mu in (layer.weight_mu, layer.bias_mu):
        assert mu.abs().max() <= 0.25 and mu.min() < -0.2 and mu.max() > 0.2
    assert torch.all(layer.weight_sigma == 0.3 / 4) and torch.all(layer.bias_sigma == 0.3 / 4)


def test_iqn_defaults_are_dopamine_iqn_with_rainbow_replay():
    """The IQN class's own defaults (the one home of each value; the run config reads them):
    Dopamine's IQN (N = N' = 64, K = 32, kappa 1, 64 cosines) with Rainbow's replay and
    schedule (3-step, prioritized alpha 0.5 / beta 0.4, double Q, lr 6.25e-5, 20k steps
    before learning, updates every 4 steps, target copy every 8k, epsilon 1 -> 0.01 over
    250k); gradient clipping at 10 is SB3 DQN's."""
    import inspect

    from rimrl.learners.iqn_config import IQNRunConfig

    def defaults(cls):
        return {n: p.default for n, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}

    assert defaults(IQN) == dict(
        learning_rate=6.25e-5, buffer_size=1_000_000, learning_starts=20_000, batch_size=32,
        gamma=0.99, train_freq=4, gradient_steps=1, target_update_interval=8_000,
        n_quantiles=64, n_target_quantiles=64, kappa=1.0, n_steps=3, prioritized=True,
        alpha=0.5, beta=0.4, double_q=True, frame_stack=None, exploration_initial_eps=1.0,
        exploration_final_eps=0.01, exploration_steps=250_000, max_grad_norm=10.0,
        policy_kwargs=None, tensorboard_log=None, verbose=0, seed=None, device="auto",
        _init_setup_model=True)
    policy = defaults(IQNPolicy)
    assert {k: policy[k] for k in ("embedding_dim", "hidden_size", "dueling", "noisy",
                                   "noisy_std", "n_policy_quantiles")} == dict(
        embedding_dim=64, hidden_size=512, dueling=False, noisy=False, noisy_std=0.1,
        n_policy_quantiles=32)
    config = IQNRunConfig()  # reads them; adds Rainbow's dueling head and Adam epsilon
    assert config.iqn.gamma == 0.99 and config.iqn.max_grad_norm == 10.0
    assert config.policy.n_policy_quantiles == 32 and config.policy.dueling is True
    assert config.iqn.adam_eps == 1.5e-4


def test_constructor_arguments_reach_sb3_and_the_replay_memory():
    """Every IQN argument lands where it acts (distinct non-default values, so a dropped or
    shifted argument shows): SB3's attributes, the replay memory's settings, the target
    network copied whole (tau 1)."""
    model = IQN(IQNPolicy, _env(2), learning_rate=3e-4, buffer_size=300, learning_starts=7,
                batch_size=5, gamma=0.9, train_freq=3, gradient_steps=2,
                target_update_interval=11, n_steps=2, prioritized=False, alpha=0.7, seed=4,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    assert (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size,
            model.gamma, model.train_freq.frequency, model.gradient_steps, model.tau,
            model.seed, model.target_update_interval) == (3e-4, 300, 7, 5, 0.9, 3, 2, 1.0, 4,
                                                          11)
    replay = model.replay_buffer
    assert (replay.n_steps, replay.gamma, replay.prioritized, replay.alpha, replay.n_envs,
            replay.buffer_size) == (2, 0.9, False, 0.7, 2, 150)
    again = IQN(IQNPolicy, _env(2), buffer_size=300, n_steps=2, seed=4,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    assert np.array_equal(replay.rng.random(3), again.replay_buffer.rng.random(3))


def test_noisy_linear_forward_and_noise_by_hand():
    """w = mu_w + sigma_w * outer(f(eps_out), f(eps_in)), b = mu_b + sigma_b * f(eps_out), with
    f(x) = sign(x) sqrt(|x|) of standard normals drawn for the inputs, then the outputs."""
    layer = NoisyLinear(3, 2, std_init=0.5)
    torch.manual_seed(7)
    layer.reset_noise()
    torch.manual_seed(7)
    raw_in, raw_out = torch.randn(3), torch.randn(2)
    f = lambda v: v.sign() * v.abs().sqrt()  # noqa: E731
    assert torch.allclose(layer.eps_in, f(raw_in)) and torch.allclose(layer.eps_out, f(raw_out))
    x = torch.randn(4, 3)
    w = layer.weight_mu + layer.weight_sigma * torch.outer(f(raw_out), f(raw_in))
    b = layer.bias_mu + layer.bias_sigma * f(raw_out)
    assert torch.allclose(layer(x), x @ w.T + b, atol=1e-6)


def test_iqn_network_layers_by_hand():
    """IQN (Dabney et al., 2018): phi(tau) = ReLU(Linear(cosines)); heads Linear-ReLU-Linear,
    the value stream ending in one output."""
    from rimrl.agents.iqn.policies import IQNNetwork

    class Features(torch.nn.Module):
        features_dim = 6

    net = IQNNetwork(Features(), n_actions=3, embedding_dim=5, hidden_size=7, dueling=True,
                     noisy=True, noisy_std=0.4)
    kinds = lambda seq: [type(m).__name__ for m in seq]  # noqa: E731
    assert kinds(net.tau_embedding) == ["Linear", "ReLU"]
    assert net.tau_embedding[0].in_features == 5 and net.tau_embedding[0].out_features == 6
    for head, out in ((net.advantage, 3), (net.value, 1)):
        assert kinds(head) == ["NoisyLinear", "ReLU", "NoisyLinear"]
        assert (head[0].in_features, head[0].out_features, head[2].out_features) == (6, 7, out)
        assert torch.all(head[2].weight_sigma == 0.4 / 7 ** 0.5)


def test_iqn_policy_passes_its_settings_on(monkeypatch):
    """The network settings, the optimizer's settings and learning rate (lr_schedule(1)), the
    encoder's kwargs and image scaling reach what they set; the target network is in eval
    mode; greedy acting averages K sampled quantiles per state, without parameter noise."""
    from stable_baselines3.common.vec_env import VecTransposeImage

    env = VecTransposeImage(_env(1))  # channel-first, as IQN wraps it
    policy = IQNPolicy(env.observation_space, env.action_space, lambda progress: 0.1 * progress,
                       features_extractor_kwargs=dict(features_dim=16), normalize_images=False,
                       optimizer_kwargs=dict(eps=0.25), embedding_dim=5, hidden_size=7,
                       dueling=True, noisy=True, noisy_std=0.3, n_policy_quantiles=9)
    net = policy.q_net
    assert net.features_extractor.features_dim == 16 and not policy.normalize_images
    assert net.embedding_dim == 5 and net.advantage[0].out_features == 7
    assert net.value is not None and torch.all(net.value[2].weight_sigma == 0.3 / 7 ** 0.5)
    group = policy.optimizer.param_groups[0]
    assert group["lr"] == 0.1 and group["eps"] == 0.25
    assert not policy.q_net_target.training
    assert IQNPolicy(env.observation_space, env.action_space, lambda _: 0.1,
                     features_extractor_kwargs=dict(features_dim=16)).normalize_images is True
    sizes, noise = [], []
    real_rand = torch.rand

    def rand(*size, **kwargs):
        sizes.append(size)
        noise.append([layer.use_noise for layer in net.noisy_layers()])
        return real_rand(*size, **kwargs)

    monkeypatch.setattr(torch, "rand", rand)
    obs = torch.as_tensor(np.concatenate([env.reset()] * 2))
    assert policy._predict(obs, deterministic=True).shape == (2,)
    policy._predict(obs, deterministic=False)
    assert sizes == [(2, 9), (2, 9)]
    assert noise == [[False] * 4, [True] * 4]
    assert all(layer.use_noise for layer in net.noisy_layers())  # restored after acting


def test_frame_stack_is_read_from_the_env_wrappers():
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

    from rimrl.agents.iqn.iqn import stacked_frames

    plain = _env(1)
    assert stacked_frames(plain) == 1
    stacked = VecTransposeImage(VecFrameStack(DummyVecEnv([lambda: plain.envs[0]]), 3))
    assert stacked_frames(stacked) == 3
    assert IQN(IQNPolicy, stacked, buffer_size=50,
               policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16))
               ).replay_buffer.frame_stack == 3


def test_epsilon_schedule_and_target_copies_step_by_step():
    """_on_step after each env step: epsilon falls linearly from 1 to 0.1 over 10 steps and
    stays there (logged as rollout/exploration_rate); the target network is copied when
    target_update_interval (4) steps have passed since the last copy, and only then."""
    from stable_baselines3.common.logger import configure

    model = IQN(IQNPolicy, _env(1), buffer_size=50, exploration_steps=10,
                exploration_initial_eps=1.0, exploration_final_eps=0.1, target_update_interval=4,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    model.set_logger(configure(None, []))
    copies, eps = [], []
    for t in range(1, 15):
        with torch.no_grad():
            for p in model.policy.q_net.parameters():
                p.add_(1.0)  # the online network moves every step
        model.num_timesteps = t
        model._on_step()
        eps.append(model.exploration_rate)
        online = model.policy.q_net.state_dict()
        copies.append(all(torch.equal(v, model.policy.q_net_target.state_dict()[k])
                          for k, v in online.items()))
    assert eps == pytest.approx([1.0 - 0.09 * t for t in range(1, 11)] + [0.1] * 4)
    assert model.logger.name_to_value["rollout/exploration_rate"] == pytest.approx(0.1)
    assert [t for t, copied in zip(range(1, 15), copies) if copied] == [4, 8, 12]
    one = IQN(IQNPolicy, _env(1), buffer_size=50, exploration_steps=1,
              exploration_final_eps=0.2,
              policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    one.set_logger(configure(None, []))
    one.num_timesteps = 1
    one._on_step()
    assert one.exploration_rate == pytest.approx(0.2)


def test_predict_is_epsilon_greedy_unless_deterministic():
    model = IQN(IQNPolicy, _env(2), buffer_size=50, seed=0,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    obs = model.env.reset()  # (2, 1, 36, 36): vectorized
    greedy = model.policy.predict(obs, deterministic=True)[0]
    model.exploration_rate = 0.0
    assert np.array_equal(model.predict(obs)[0], greedy)  # eps 0: greedy even when sampling
    model.exploration_rate = 1.0
    assert np.array_equal(model.predict(obs, deterministic=True)[0], greedy)
    actions = np.stack([model.predict(obs)[0] for _ in range(30)])  # default: sampled
    assert actions.shape == (30, 2) and set(actions.ravel()) == {0, 1}
    single = model.predict(obs[0])[0]
    assert single.shape == () and int(single) in (0, 1)
