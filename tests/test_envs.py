"""Environment suites: Atari naming and preprocessing, fake envs, subprocess workers."""

import numpy as np
import pytest

from rimrl.envs.atari import UnknownEnvError, atari_id, make_atari_vec_env
from rimrl.envs.testing import CueImageEnv, CueVectorEnv


def test_atari_names():
    assert atari_id("DemonAttack") == "ALE/DemonAttack-v5"
    assert atari_id("mspacman") == "ALE/MsPacman-v5"
    assert atari_id("ALE/Pong-v5") == "ALE/Pong-v5"
    assert atari_id("BreakoutNoFrameskip-v4") == "ALE/Breakout-v5"
    with pytest.raises(UnknownEnvError, match="closest: DemonAttack"):
        atari_id("DemonAtack")


def test_atari_preprocessing_and_raw_score():
    env = make_atari_vec_env("DemonAttack", n_envs=2, seed=0)
    obs = env.reset()
    assert obs.shape == (2, 84, 84, 4) and obs.dtype == np.uint8
    rewards = []
    for _ in range(300):
        obs, reward, done, infos = env.step(np.array([1, 1]))  # FIRE
        rewards.extend(reward.tolist())
    assert set(rewards) <= {-1.0, 0.0, 1.0}  # clipped for learning
    assert max(rewards) == 1.0  # DemonAttack scores when firing; raw points are 10+ each
    env.close()


@pytest.mark.parametrize("sticky, probability", [(True, 0.25), (False, 0.0)])
def test_sticky_actions_option(sticky, probability):
    env = make_atari_vec_env("Pong", n_envs=1, seed=0, sticky_actions=sticky)
    ale = env.venv.envs[0].unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(probability)
    env.close()


def test_cue_envs_reward_only_the_right_answer():
    env = CueVectorEnv(delay=2)
    obs, _ = env.reset(seed=1)
    cue = int(np.argmax(obs[:2]))
    assert obs[cue] == 1.0
    for _ in range(2):
        obs, r, term, _, _ = env.step(0)
        assert r == 0 and not term and obs[:2].sum() == 0
    assert obs[2] == 1.0
    _, r, term, _, _ = env.step(cue)
    assert term and r == 1.0
    img = CueImageEnv(delay=1)
    frame, _ = img.reset(seed=0)
    assert frame.shape == (36, 36, 1) and frame.max() == 255


def test_subprocess_workers_build_rimrl_envs(tmp_path):
    """``env.subprocess=true`` on rimrl's own envs: worker processes register the suites
    themselves (they once failed with NamespaceNotFound: rimrl)."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from rimrl.cli import main
    from rimrl.sb3.environments import make_env
    from tests.conftest import TINY, only_run

    class Cfg:
        seed = 0

        class env:
            id, n_envs, distractors, subprocess = "rimrl/Pickup-v0", 2, "novel", True

    env = make_env(Cfg)
    try:
        assert isinstance(env, SubprocVecEnv)
        obs = env.reset()
        assert all(len(v) == 2 for v in obs.values())  # a dict observation per worker
        assert env.get_attr("split") == ["novel", "novel"]
    finally:
        env.close()
    assert main(["train", "ppo", "--env", "rimrl/CueVector-v0", "--core", "lstm", "--timesteps",
                 "64", "--set", "env.subprocess=true", "--runs-dir", str(tmp_path)] + TINY) == 0
    assert (only_run(tmp_path) / "model.zip").is_file()


def test_env_kwargs_reach_the_constructor():
    """``env.kwargs`` (RL Zoo's env_kwargs) is passed to gym.make: a 9x9 pickup room."""
    from rimrl.sb3.environments import make_env

    class Cfg:
        seed = 0

        class env:
            id, n_envs, distractors, subprocess = "rimrl/Pickup-v0", 1, None, False
            kwargs = {"room_size": 9}

    env = make_env(Cfg)
    try:
        assert env.get_attr("width") == [9] and env.get_attr("height") == [9]
    finally:
        env.close()
    Cfg.env.kwargs = {}
    env = make_env(Cfg)
    try:
        assert env.get_attr("width") == [7]
    finally:
        env.close()
