"""Frame-sharing prioritized replay: exact sampling proportions, weights, n-step returns,
stack reconstruction across episode ends and wrap-around, memory per transition."""

import io

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

from rimrl.agents.iqn.replay import FrameReplayBuffer
from rimrl.agents.iqn.sum_tree import SumTree


def test_sum_tree_find_and_skip_zero():
    tree = SumTree(5)
    tree.set([0, 1, 2, 3, 4], [1.0, 0.0, 2.0, 3.0, 4.0])
    assert tree.total == 10.0 and tree.nonzero == 4
    assert list(tree.find([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99])) == [0, 0, 2, 2, 3, 3, 4, 4]
    tree.set([2, 2], [5.0, 0.5])  # repeated slot: the last value wins
    assert tree.get([2])[0] == 0.5 and tree.total == 8.5


def test_stratified_sampling_proportions_are_exact():
    tree = SumTree(4)
    tree.set([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])
    # total 10, 10 strata of width 1: slot i is drawn exactly p_i times
    counts = np.bincount(tree.sample(10, np.random.default_rng(0)), minlength=4)
    assert list(counts) == [1, 2, 3, 4]


def _buffer(n_steps=1, size=16, frame_stack=1, n_envs=1, gamma=0.5, **kw):
    space = spaces.Box(0, 255, (frame_stack, 2, 2), np.uint8)
    return FrameReplayBuffer(size, space, spaces.Discrete(3), device="cpu", n_envs=n_envs,
                             frame_stack=frame_stack, n_steps=n_steps, gamma=gamma, **kw)


def _fill(buf, rewards, dones, truncated=()):
    """``truncated``: steps whose info says so; None: infos without the key."""
    for t, (r, d) in enumerate(zip(rewards, dones)):
        obs = np.full((1, 1, 2, 2), t, dtype=np.uint8)
        info = {} if truncated is None else {"TimeLimit.truncated": t in truncated}
        buf.add(obs, obs, np.array([t % 3]), np.array([r], dtype=np.float32),
                np.array([d]), [info])


def test_importance_weights_against_exact_numbers():
    buf = _buffer(n_steps=1, alpha=1.0)
    _fill(buf, [0.0] * 5, [False] * 5)  # slots 0..3 are complete (slot 4 waits for its next)
    buf.update_priorities(np.array([0, 1, 2, 3]), np.array([1.0, 2.0, 3.0, 4.0]) - buf.epsilon)
    batch = buf.sample(10, beta=0.5)
    slots = batch.indices
    assert list(np.bincount(slots, minlength=4)) == [1, 2, 3, 4]
    # P(i) = p_i / 10, N = 4: w_i = (4 p_i / 10) ** -0.5, divided by the largest (p = 1)
    expected = (0.4 * np.array([1.0, 2.0, 3.0, 4.0])) ** -0.5 / 0.4 ** -0.5
    assert np.allclose(batch.weights.numpy(), expected[slots], atol=1e-6)


def test_uniform_replay_has_unit_weights_and_ignores_updates():
    buf = _buffer(n_steps=1, prioritized=False)
    _fill(buf, [0.0] * 5, [False] * 5)
    buf.update_priorities(np.array([0]), np.array([100.0]))
    batch = buf.sample(8)
    assert torch.all(batch.weights == 1)
    assert list(np.bincount(batch.indices, minlength=4)) == [2, 2, 2, 2]


def test_n_step_returns_across_episode_ends():
    buf = _buffer(n_steps=3, gamma=0.5)
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    dones = [False, False, True, False, False, False, False, False]
    _fill(buf, rewards, dones)
    s = buf._get_samples(np.array([0, 1, 2, 3]))
    # slot 0: 1 + .5*2 + .25*3, episode terminates inside: no bootstrap
    assert np.allclose(s.returns.numpy(), [2.75, 3.5, 3.0, 4 + 2.5 + 1.5])
    assert list(s.dones.numpy()) == [1, 1, 1, 0]
    assert np.allclose(s.discounts.numpy(), [0.125, 0.25, 0.5, 0.125])
    assert s.next_observations[3, 0, 0, 0] == 6  # bootstraps from the observation 3 steps on
    assert list(s.actions.numpy()) == [0, 1, 2, 0]


def test_windows_into_a_truncation_are_never_sampled():
    buf = _buffer(n_steps=2)
    _fill(buf, [1.0] * 8, [False, False, True, False, False, False, False, False],
          truncated={2})
    valid = set(np.flatnonzero(buf.tree.get(np.arange(8)) > 0))
    # slot 1 and 2 need the (unstored) observation after the truncation
    assert valid == {0, 3, 4, 5}


class Frames(gym.Env):
    """Random 6x6 frames, reward = step count, episodes end with probability 0.15."""

    observation_space = spaces.Box(0, 255, (6, 6, 1), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(1, 255, (6, 6, 1), dtype=np.uint8), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.integers(1, 255, (6, 6, 1), dtype=np.uint8)
        return obs, float(self.t), self.np_random.random() < 0.15, False, {}


def frame_env(n_envs: int):
    env = VecTransposeImage(VecFrameStack(DummyVecEnv([Frames] * n_envs), 4))
    env.seed(1)
    return env


@pytest.mark.parametrize("n_envs", [1, 3])
def test_stacks_rebuilt_exactly_with_frame_stack_and_wraparound(n_envs):
    """Real VecFrameStack observations, episode ends and a buffer that wraps three times:
    every sampleable slot rebuilds its observation and n-step next observation exactly."""
    env = frame_env(n_envs)
    buf = FrameReplayBuffer(40 * n_envs, env.observation_space, env.action_space, "cpu",
                            n_envs=n_envs, frame_stack=4, n_steps=3, gamma=0.9)
    history, dones_log = [], []
    obs = env.reset()
    for _ in range(130):
        action = np.zeros(n_envs, dtype=np.int64)
        new_obs, reward, done, infos = env.step(action)
        buf.add(obs, new_obs, action, reward, done, infos)
        history.append(obs.copy())
        dones_log.append(done.copy())
        obs = new_obs
    history.append(obs.copy())
    steps = len(history) - 1
    flat = np.flatnonzero(buf.tree.get(np.arange(buf.buffer_size * n_envs)) > 0)
    assert len(flat) > 20 * n_envs
    sample = buf._get_samples(flat)
    for row, f in enumerate(flat):
        t, e = divmod(int(f), n_envs)
        step = steps - 1 - ((buf.pos - 1 - t) % buf.buffer_size)  # global step of slot t
        assert np.array_equal(sample.observations[row].numpy(), history[step][e])
        m = int(round(np.log(sample.discounts[row].item()) / np.log(0.9)))
        if not sample.dones[row]:
            assert np.array_equal(sample.next_observations[row].numpy(), history[step + m][e])
        else:
            assert dones_log[step + m - 1][e]


def test_atari_memory_per_transition_under_target():
    space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buf = FrameReplayBuffer(1_000_000, space, spaces.Discrete(18), "cpu", frame_stack=4)
    assert buf.bytes_per_transition() <= 7200  # one 7,056-byte frame plus bookkeeping
    # the same capacity spread over 4 envs costs the same per transition
    four = FrameReplayBuffer(250_000, space, spaces.Discrete(18), "cpu", n_envs=4,
                             frame_stack=4)
    assert four.bytes_per_transition() == pytest.approx(buf.bytes_per_transition(), rel=0.01)


def test_saved_memory_restores_samples_priorities_and_generator():
    """state_arrays -> np.savez -> load_state_arrays: a fresh memory then samples exactly
    what the original samples (same slots, weights, generator stream); a memory of another
    size refuses the arrays."""
    env = frame_env(2)

    def memory(size=30):
        return FrameReplayBuffer(size, env.observation_space, env.action_space, "cpu",
                                 n_envs=2, frame_stack=4, n_steps=2, gamma=0.9,
                                 prioritized=True, seed=3)

    buf = memory()
    obs = env.reset()
    for _ in range(45):  # wraps once
        action = np.zeros(2, dtype=np.int64)
        new_obs, reward, done, infos = env.step(action)
        buf.add(obs, new_obs, action, reward, done, infos)
        obs = new_obs
    buf.update_priorities(np.arange(10), np.linspace(0.5, 3.0, 10))
    buf.sample(4)  # moves the generator away from its seed: the saved state must carry it
    saved = io.BytesIO()
    np.savez(saved, **buf.state_arrays())
    saved.seek(0)
    restored = memory()
    restored.load_state_arrays(dict(np.load(saved)))
    assert (restored.pos, restored.full, restored.max_priority) == (
        buf.pos, buf.full, buf.max_priority)
    for _ in range(2):  # the second draw checks the generator state too
        a, b = buf.sample(8, beta=0.5), restored.sample(8, beta=0.5)
        for x, y in zip(a, b):
            assert np.array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(ValueError, match=r"is uint8\[.*\], expected uint8\["):
        memory(size=20).load_state_arrays(dict(np.load(io.BytesIO(saved.getvalue()))))


def _tamper(state, name, value):
    state = {k: np.array(v, copy=True) for k, v in state.items()}
    if callable(value):
        value(state[name])
    else:
        state[name] = value
    return state


@pytest.mark.parametrize("name,change,message", [
    ("tree_nodes", lambda a: a.__setitem__(5, np.nan), "priorities .* not finite"),
    ("tree_nodes", lambda a: a.__setitem__(5, -1.0), "non-negative"),
    ("actions", lambda a: a.__setitem__((0, 0), 7), "actions reach 7, beyond the 3 actions"),
    ("rewards", lambda a: a.__setitem__((0, 0), np.inf), "rewards are not all finite"),
    ("counters", np.array([99, 0, 3]), r"position 99, full 0, 3 priorities\) do not fit"),
    ("counters", np.array([0, 2, 3]), "do not fit"),
    ("counters", np.array([0, 1, 10 ** 6]), "do not fit"),
    ("max_priority", np.array(np.nan), "max priority nan is not a positive number"),
    ("frames", lambda a: None, None),  # untouched: loads
    ("rewards", np.zeros((15, 2), np.float64), r"is float64\[15, 2\], expected float32"),
])
def test_a_memory_out_of_range_is_refused_and_nothing_is_loaded(name, change, message):
    """Range checks on load (issue #25): each refusal leaves the memory as it was."""
    env = frame_env(2)

    def memory():
        return FrameReplayBuffer(30, env.observation_space, gym.spaces.Discrete(3), "cpu",
                                 n_envs=2, frame_stack=4, seed=3)

    buf = memory()
    obs = env.reset()
    for _ in range(10):
        action = np.ones(2, dtype=np.int64)
        new_obs, reward, done, infos = env.step(action)
        buf.add(obs, new_obs, action, reward, done, infos)
        obs = new_obs
    state = _tamper(buf.state_arrays(), name, change)
    target = memory()
    if message is None:
        target.load_state_arrays(state)
        assert target.pos == buf.pos
        return
    with pytest.raises(ValueError, match=message):
        target.load_state_arrays(state)
    assert target.pos == 0 and not target.actions.any() and target.tree.nodes.sum() == 0


def test_windows_through_a_termination_are_sampled():
    """Unlike a truncation, a termination inside the window is a complete n-step return: every
    window is valid. With n = 3, a termination at slot 0 makes the truncation at slot 2
    irrelevant to slot 0's window (the episode ended first)."""
    buf = _buffer(n_steps=2)  # infos without "TimeLimit.truncated": a termination
    _fill(buf, [1.0] * 8, [False, False, True, False, False, False, False, False],
          truncated=None)
    assert set(np.flatnonzero(buf.tree.get(np.arange(8)) > 0)) == {0, 1, 2, 3, 4, 5}
    buf = _buffer(n_steps=3)
    _fill(buf, [1.0] * 8, [True, False, True, False, False, False, False, False],
          truncated={2})
    assert set(np.flatnonzero(buf.tree.get(np.arange(8)) > 0)) == {0, 3, 4}


def test_new_transitions_get_the_largest_priority_so_far():
    buf = _buffer(n_steps=1, alpha=0.5, epsilon=0.5)
    _fill(buf, [0.0] * 3, [False] * 3)  # slots 0, 1 complete, at (max priority 1) ** alpha
    assert list(buf.tree.get([0, 1])) == [1.0, 1.0]
    buf.update_priorities(np.array([0]), np.array([-8.5]))  # (|-8.5| + 0.5) ** 0.5
    assert buf.tree.get([0])[0] == pytest.approx(3.0) and buf.max_priority == 9.0
    buf.add(*[np.full((1, 1, 2, 2), 3, np.uint8)] * 2, np.array([0]), np.array([0.0]),
            np.array([False]), [{}])  # completes slot 2
    assert buf.tree.get([2])[0] == pytest.approx(9.0 ** 0.5)


def test_end_all_episodes_cuts_the_streams_at_the_last_step():
    """A reset without a done (resuming): the last stored step becomes a truncation, so the
    windows running through it are never sampled, and the next step starts an episode."""
    buf = _buffer(n_steps=2, size=8)
    buf.end_all_episodes()  # empty: nothing to mark
    assert not buf.ends.any() and buf._next_start.all()
    _fill(buf, [1.0] * 4, [False] * 4)  # slots 0, 1 complete (slot 2 waits for step 4)
    buf.end_all_episodes()
    assert list(buf.ends[:, 0]) == [False] * 3 + [True] + [False] * 4
    assert not buf.terminal.any() and buf._next_start.all()
    _fill(buf, [1.0] * 3, [False] * 3)  # steps 4-6 into slots 4-6
    assert buf.starts[4, 0] and not buf.starts[5, 0]
    assert set(np.flatnonzero(buf.tree.get(np.arange(8)) > 0)) == {0, 1, 4}


def test_memory_wraps_around_and_stays_full():
    buf = _buffer(n_steps=1, size=4)
    _fill(buf, [0.0] * 6, [False] * 6)
    assert buf.full and buf.size() == 4 and buf.pos == 2


def test_sum_tree_sampling_draws_one_offset_per_stratum():
    """Stratified: slot of (i + U_i) / B * total for independent U_i from the generator;
    priorities below 1 in total are fine; an empty tree refuses with a message."""
    tree = SumTree(8)
    tree.set(np.arange(8), np.full(8, 0.1))  # two strata of four slots each
    u = np.random.default_rng(0).random(2)  # 0.637, 0.270: slots 2 and 4 + 1
    assert list(tree.sample(2, np.random.default_rng(0))) == [2, 5]
    assert list(np.floor((np.arange(2) + u) / 2 * 8).astype(int)) == [2, 5]
    with pytest.raises(ValueError, match="cannot sample: no slot has a positive priority"):
        SumTree(4).sample(2, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_sum_tree_refuses_bad_priorities(bad):
    tree = SumTree(4)
    tree.set([0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="priorities must be finite and non-negative"):
        tree.set([2], [bad])
    tree.set([1], [0.0])  # overwriting with zero leaves one nonzero slot
    assert tree.nonzero == 1 and tree.total == 1.0


def test_seed_makes_sampling_repeat():
    batches = []
    for seed in (3, 3, 4):
        buf = _buffer(n_steps=1, size=16, seed=seed)
        _fill(buf, [0.0] * 12, [False] * 12)
        batches.append(buf.sample(8).indices.tolist())
    assert batches[0] == batches[1] != batches[2]


def test_every_env_stream_gets_its_own_slot():
    """Slot t of env e is leaf t * n_envs + e: a completed step makes both envs' leaves
    sampleable."""
    buf = _buffer(n_steps=1, n_envs=2)
    for t in range(3):
        obs = np.full((2, 1, 2, 2), t, dtype=np.uint8)
        buf.add(obs, obs, np.array([0, 1]), np.zeros(2, np.float32), np.array([False, False]),
                [{}, {}])
    assert list(buf.tree.get(np.arange(6)) > 0) == [True, True, True, True, False, False]
